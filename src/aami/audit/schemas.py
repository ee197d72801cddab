"""Audit API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aami.common.schemas import ReadModel


class AuditRecordRead(ReadModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
