"""The audit trail: every create, update and delete, newest first, filtered in SQL."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from aami.audit import service as audit
from aami.web.common import DbDep, LoginDep, UiRoute, page
from aami.web.paging import PAGE_SIZE, Pager, page_number, search_text

router = APIRouter(route_class=UiRoute)

# As long as the columns they filter (actor and entity_id are 100, entity_type 64).
_MAX = {"actor": 100, "action": 32, "entity_type": 64}


@router.get("/audit")
def audit_page(
    request: Request,
    _: LoginDep,
    session: DbDep,
    actor: str = "",
    entity_type: str = "",
    action: str = "",
) -> Response:
    """The audit trail, filtered by actor, entity type and action (exact values)."""
    number = page_number(request)
    chosen = {
        "actor": search_text(actor)[: _MAX["actor"]],
        "entity_type": search_text(entity_type)[: _MAX["entity_type"]],
        "action": search_text(action)[: _MAX["action"]],
    }
    rows, total = audit.list_records(
        session,
        actor=chosen["actor"] or None,
        entity_type=chosen["entity_type"] or None,
        action=chosen["action"] or None,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    options = audit.filter_values(session)
    # A value typed into the address that the trail does not hold still shows as chosen.
    for key, value in chosen.items():
        if value and value not in options[key]:
            options[key] = [value, *options[key]]
    return page(
        request,
        "audit.html",
        nav="audit",
        title="Audit trail",
        records=list(rows),
        values=chosen,
        options=options,
        filtered=any(chosen.values()),
        pager=Pager(request, number, total),
    )
