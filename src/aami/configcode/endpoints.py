"""/api/v1/config/export, /plan and /apply: the whole configuration as one document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from aami.api.deps import AdminDep, AlertmanagerPublisherDep, ReconcilerDep, SessionDep
from aami.configcode import service
from aami.errors import AamiError
from aami.publishing import service as publishing
from aami.publishing.reconciler import Job
from aami.publishing.types import PassResult, Target, Trigger

__all__ = ["router"]

router = APIRouter(tags=["configuration as code"])

DocumentBody = Annotated[
    dict[str, Any],
    Body(description="the document, as `GET /config/export` returns it (JSON of the YAML)"),
]
PruneQuery = Annotated[
    bool, Query(description="delete what the document does not list (default: keep it)")
]


@router.get("/config/export")
def export_config(session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """The whole configuration as one document (no secrets, no timestamps), sorted by id."""
    return service.export_document(session)


@router.post("/config/plan")
def plan_config(
    session: SessionDep,
    notifications: AlertmanagerPublisherDep,
    _: AdminDep,
    document: DocumentBody,
    prune: PruneQuery = False,
) -> dict[str, Any]:
    """What applying the document would change, entity by entity, and which rule files."""
    with service.plan(session, document, prune=prune, am=notifications) as result:
        return result.as_dict()


@router.post("/config/apply")
def apply_config(
    session: SessionDep,
    reconciler: ReconcilerDep,
    notifications: AlertmanagerPublisherDep,
    principal: AdminDep,
    document: DocumentBody,
    prune: PruneQuery = False,
    wait: Annotated[
        float,
        Query(ge=0, le=publishing.MAX_WAIT, description="seconds to wait for the publish"),
    ] = 0,
) -> dict[str, Any]:
    """Make the configuration match the document, all or nothing; the publisher then
    publishes the rule files and the Alertmanager config once (``wait`` for it)."""
    try:
        result = service.apply(
            session, document, prune=prune, actor=principal.name, am=notifications
        )
        session.commit()
    except AamiError:
        session.rollback()
        raise
    answer = result.as_dict()
    published: PassResult | None = None
    if reconciler.is_leader:
        job = Job(trigger=Trigger.APPLY, actor=principal.name)
        published = publishing.request_pass(reconciler, Target.PROMETHEUS, job, wait=wait)
    answer["publish"] = (
        {
            "id": published.id,
            "result": published.result.value,
            "files_written": published.files_written,
            "files_removed": published.files_removed,
            "validation": published.validation.value,
            "reload": published.reload.value,
            "error": published.error,
        }
        if published is not None
        else {"result": "scheduled"}
    )
    return answer
