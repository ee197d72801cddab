"""Rule files on disk, the publish history, and regenerating the files now."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from aami.alertmanager import status as am_status
from aami.api.state import services
from aami.errors import AamiError
from aami.evaluators import service as evaluators
from aami.prometheus import service as prometheus
from aami.publishing import service as publishing
from aami.publishing.types import PassResult, Target
from aami.web.common import ACTOR, DbDep, FormDep, LoginDep, UiRoute, page
from aami.web.paging import PAGE_SIZE, Pager, page_number

router = APIRouter(route_class=UiRoute)

WAIT = 10.0  # seconds the regenerate button waits for the publisher before saying "scheduled"


def sync_summary(request: Request, session: Session) -> dict[str, Any]:
    """Desired, written and loaded, measured now, for the rule files and (when AAMI
    manages it) the Alertmanager config."""
    app = services(request)
    reconciler, rules, notifications = (
        app.reconciler,
        app.rule_publisher,
        app.alertmanager_publisher,
    )
    summary: dict[str, Any] = {}
    try:
        summary["prometheus"] = prometheus.sync_report(session, reconciler, rules)
    except OSError as exc:
        summary["prometheus"] = {"in_sync": False, "last_error": str(exc), "scopes": {}}
    if notifications.managed:
        summary["alertmanager"] = am_status.sync_report(session, reconciler, notifications)
    return summary


def _publishing_page(
    request: Request,
    session: Session,
    *,
    result: PassResult | None = None,
    scheduled: bool = False,
    error: str = "",
    status_code: int = 200,
) -> Response:
    rules, reconciler = services(request).rule_publisher, services(request).reconciler
    store = rules.store
    number = page_number(request)
    history, total = publishing.history(
        session, target=None, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    try:
        files = prometheus.rule_files(rules)
        files_error = ""
    except OSError as exc:
        files, files_error = [], f"the rule directory {store.root} cannot be read: {exc}"
    return page(
        request,
        "publishing.html",
        status_code=status_code,
        nav="publishing",
        title="Rule files & publishing",
        files=files,
        files_error=files_error,
        rule_path=str(store.root),
        history=history,
        pager=Pager(request, number, total),
        result=result.as_dict() if result else None,
        scheduled=scheduled,
        error=error,
        sync=sync_summary(request, session),
        prometheus_url=rules.client.base_url,
        reload_enabled=rules.reload_enabled,
        validate=rules.validate,
        pending_scopes=reconciler.states[Target.PROMETHEUS].pending_scopes,
        evaluators=evaluator_rows(request, session),
    )


def evaluator_rows(request: Request, session: Session) -> list[dict[str, Any]]:
    """The remote evaluators (what each should run, what its sync confirmed it runs)."""
    app = services(request)
    rows, _ = evaluators.list_evaluators(session, offset=0, limit=1000)
    stale_after = app.settings.evaluator_stale_after
    return [
        evaluators.read(session, app.rule_sets, row, stale_after=stale_after).model_dump()
        for row in rows
    ]


@router.get("/publishing")
def publishing_page(request: Request, _: LoginDep, session: DbDep) -> Response:
    return _publishing_page(request, session)


@router.post("/publishing/regenerate")
def regenerate(request: Request, _: FormDep, session: DbDep) -> Response:
    """Ask the publisher to render every rule file, write what changed, validate, reload
    and confirm; show the result if it is done within a few seconds."""
    reconciler = services(request).reconciler
    try:
        result = prometheus.regenerate(reconciler, actor=ACTOR, wait=WAIT)
    except AamiError as exc:
        return _publishing_page(request, session, error=exc.detail, status_code=409)
    return _publishing_page(request, session, result=result, scheduled=result is None)


@router.get("/publishing/files/{name}")
def rule_file(request: Request, name: str, _: LoginDep) -> Response:
    """One generated rule file as it is on disk."""
    rules = services(request).rule_publisher
    content, found = prometheus.read_rule_file(rules, name)
    info: dict[str, Any] = asdict(found) if found is not None else {}
    return page(
        request,
        "rule_file.html",
        nav="publishing",
        title=name,
        name=name,
        content=content,
        info=info,
    )
