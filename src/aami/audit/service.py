"""Recording and reading the audit trail; secrets never reach it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aami.audit.models import AuditRecord
from aami.audit.repository import AuditRepository

__all__ = ["REDACTED", "filter_values", "list_records", "record", "redact"]

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|api_key|apikey|routing_key|credential)", re.IGNORECASE
)


def redact(value: Any) -> Any:
    """Replace the values of secret-looking keys, at any depth."""
    if isinstance(value, dict):
        return {
            key: (REDACTED if _SECRET_KEY.search(str(key)) and item is not None else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an audit record to the current transaction."""
    AuditRepository(session).add(
        AuditRecord(
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=redact(before) if before is not None else None,
            after=redact(after) if after is not None else None,
        )
    )


def list_records(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[AuditRecord], int]:
    """Return one page of audit records, newest first, and the total."""
    return AuditRepository(session).find(
        entity_type=entity_type,
        entity_id=entity_id,
        actor=actor,
        action=action,
        since=since,
        offset=offset,
        limit=limit,
    )


def filter_values(session: Session) -> dict[str, list[str]]:
    """The actors, actions and entity types the trail holds, to filter it by."""
    repo = AuditRepository(session)
    return {column: repo.distinct(column) for column in ("actor", "action", "entity_type")}
