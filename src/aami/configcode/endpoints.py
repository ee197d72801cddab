"""/api/v1/config/export, /plan and /apply: the whole configuration as one document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from aami.api.deps import AdminDep, AlertmanagerPublisherDep, ReconcilerDep, SessionDep
from aami.configcode import service
from aami.configcode.schemas import ApplyResult, ConfigDocument, PlanResult
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


@router.get(
    "/config/export",
    response_model=ConfigDocument,
    response_model_exclude_unset=True,  # a channel without a secret has no secret key
)
def export_config(session: SessionDep, _: AdminDep) -> ConfigDocument:
    """The whole configuration as one document (no secrets, no ids, no timestamps): each
    section maps an entry's key (a name) to its fields, sorted by key."""
    return ConfigDocument.model_validate(service.export_document(session))


@router.post(
    "/config/plan",
    response_model=PlanResult,
    response_model_exclude_unset=True,  # a change lists fields and rules only when it has some
)
def plan_config(
    session: SessionDep,
    notifications: AlertmanagerPublisherDep,
    _: AdminDep,
    document: DocumentBody,
    prune: PruneQuery = False,
) -> PlanResult:
    """What applying the document would change, entry by entry: each changed field old and
    new, each alert rule whose rendered rule changes (alert, PromQL expression before and
    after, its rule file), and which rule files are written or removed."""
    with service.plan(session, document, prune=prune, am=notifications) as result:
        return PlanResult.model_validate(result.as_dict())


@router.post(
    "/config/apply",
    response_model=ApplyResult,
    response_model_exclude_unset=True,  # a change lists fields only when it has some
)
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
) -> ApplyResult:
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
    return ApplyResult.model_validate(answer)
