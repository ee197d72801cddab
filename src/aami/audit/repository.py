"""SQL for the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aami.audit.models import AuditRecord


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: AuditRecord) -> None:
        self.session.add(record)

    def find(
        self,
        *,
        entity_type: str | None,
        entity_id: str | None,
        actor: str | None,
        action: str | None,
        since: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[AuditRecord], int]:
        query = select(AuditRecord)
        if entity_type:
            query = query.where(AuditRecord.entity_type == entity_type)
        if entity_id:
            query = query.where(AuditRecord.entity_id == entity_id)
        if actor:
            query = query.where(AuditRecord.actor == actor)
        if action:
            query = query.where(AuditRecord.action == action)
        if since:
            query = query.where(AuditRecord.at >= since)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(
            query.order_by(AuditRecord.id.desc()).offset(offset).limit(limit)
        ).all()
        return rows, total
