"""Rule files on disk, the publish history, and regenerating the files now."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from aami.errors import NotFound
from aami.prometheus.publisher import Publisher, PublishResult
from aami.prometheus.rule_files import RuleFileStore
from aami.web import queries
from aami.web.common import ACTOR, DbDep, FormDep, LoginDep, UiRoute, page
from aami.web.paging import PAGE_SIZE, Pager, page_number

router = APIRouter(route_class=UiRoute)


def _publishing_page(
    request: Request,
    session: Session,
    *,
    result: PublishResult | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    publisher: Publisher = request.app.state.publisher
    store: RuleFileStore = request.app.state.rule_store
    number = page_number(request)
    history, total = queries.publish_history(
        session, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    try:
        files = store.info()
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
        error=error,
        prometheus_url=publisher.client.base_url,
        reload_enabled=publisher.reload_enabled,
        validate=publisher.validate,
        reload_pending=publisher.reload_pending,
        pending_scopes=publisher.pending_scopes,
    )


@router.get("/publishing")
def publishing(request: Request, _: LoginDep, session: DbDep) -> Response:
    return _publishing_page(request, session)


@router.post("/publishing/regenerate")
def regenerate(request: Request, _: FormDep, session: DbDep) -> Response:
    """Render every rule file now, write what changed, validate, reload; show the result."""
    publisher: Publisher = request.app.state.publisher
    result = publisher.publish(None, actor=ACTOR, trigger="regenerate")
    return _publishing_page(request, session, result=result)


@router.get("/publishing/files/{name}")
def rule_file(request: Request, name: str, _: LoginDep) -> Response:
    """One generated rule file as it is on disk."""
    store: RuleFileStore = request.app.state.rule_store
    if name not in store.managed():
        raise NotFound(f"there is no generated rule file {name!r} in {store.root}")
    content = store.read(name)
    if content is None:
        raise NotFound(f"{name} was removed while it was being read")
    info: dict[str, Any] = next((asdict(f) for f in store.info() if f.name == name), {})
    return page(
        request,
        "rule_file.html",
        nav="publishing",
        title=name,
        name=name,
        content=content,
        info=info,
    )
