"""The history of rule publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aami.db.base import Base, utcnow


class RulePublish(Base):
    __tablename__ = "rule_publishes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    files_written: Mapped[list[str]] = mapped_column(JSON, default=list)
    files_removed: Mapped[list[str]] = mapped_column(JSON, default=list)
    files_rejected: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rule_count: Mapped[int] = mapped_column(default=0)
    validation: Mapped[str] = mapped_column(String(32), default="skipped")
    reload: Mapped[str] = mapped_column(String(32), default="skipped")
    result: Mapped[str] = mapped_column(String(32), default="ok")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
