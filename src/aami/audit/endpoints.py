"""GET /api/v1/audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from aami.api.deps import AdminDep, PageDep, SessionDep
from aami.audit import service
from aami.audit.schemas import AuditRecordRead
from aami.common.schemas import Page

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=Page[AuditRecordRead])
def list_audit(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    entity_type: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Literal["create", "update", "delete"] | None = None,
    since: datetime | None = None,
) -> Page[AuditRecordRead]:
    """List audit records, newest first."""
    rows, total = service.list_records(
        session,
        entity_type=entity_type,
        entity_id=entity_id,
        actor=actor,
        action=action,
        since=since,
        offset=page.offset,
        limit=page.limit,
    )
    return Page.of(
        [AuditRecordRead.model_validate(r) for r in rows],
        page=page.page,
        limit=page.limit,
        total=total,
    )
