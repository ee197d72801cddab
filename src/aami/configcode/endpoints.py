"""/api/v1/config/export, /plan and /apply: the whole configuration as one document."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from aami.alertmanager.service import AlertmanagerConfig
from aami.api.deps import AdminDep, SessionDep
from aami.configcode import service
from aami.db.session import session_scope
from aami.errors import AamiError

__all__ = ["router"]

log = logging.getLogger(__name__)

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
    request: Request,
    session: SessionDep,
    _: AdminDep,
    document: DocumentBody,
    prune: PruneQuery = False,
) -> dict[str, Any]:
    """What applying the document would change, entity by entity, and which rule files."""
    am: AlertmanagerConfig = request.app.state.alertmanager_config
    result = service.plan(session, document, prune=prune, am=am)
    # The plan applied the document to find out what it changes: discard all of it.
    session.rollback()
    return result.as_dict()


@router.post("/config/apply")
def apply_config(
    request: Request,
    session: SessionDep,
    principal: AdminDep,
    document: DocumentBody,
    prune: PruneQuery = False,
) -> dict[str, Any]:
    """Make the configuration match the document, all or nothing; then publish the rules."""
    am: AlertmanagerConfig = request.app.state.alertmanager_config
    try:
        result = service.apply(session, document, prune=prune, actor=principal.name, am=am)
        session.commit()
    except AamiError:
        session.rollback()
        if am.managed:
            _restore_alertmanager(request, am)
        raise
    published = request.app.state.publisher.publish(None, actor=principal.name, trigger="apply")
    return {
        **result.as_dict(),
        "publish": {
            "id": published.id,
            "result": published.result,
            "files_written": published.files_written,
            "files_removed": published.files_removed,
            "validation": published.validation,
            "reload": published.reload,
            "error": published.error,
        },
    }


def _restore_alertmanager(request: Request, am: AlertmanagerConfig) -> None:
    """A failed apply may have published channel changes before failing: publish the
    config of the rolled-back (unchanged) database again."""
    try:
        with session_scope(request.app.state.sessionmaker) as session:
            am.publish(session, actor="apply-rollback")
    except Exception:
        log.exception("could not restore the Alertmanager config after a failed apply")
