"""SQL for the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from aami.audit.models import AuditRecord
from aami.common.repository import Repository

__all__ = ["AuditRepository"]


class AuditRepository(Repository[AuditRecord]):
    model = AuditRecord
    # A record needs no flush of its own: it reaches the database with the change it
    # describes, at that change's flush or at the commit.
    flush_writes = False

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
        return self.page(query, AuditRecord.id.desc(), offset=offset, limit=limit)

    def distinct(self, column: str, *, limit: int = 200) -> list[str]:
        """The values of ``actor``, ``action`` or ``entity_type`` in use, sorted."""
        field = {
            "actor": AuditRecord.actor,
            "action": AuditRecord.action,
            "entity_type": AuditRecord.entity_type,
        }[column]
        return list(self.session.scalars(select(field).distinct().order_by(field).limit(limit)))
