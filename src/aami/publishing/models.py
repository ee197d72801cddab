"""The publish history (both targets, one table) and the publisher lease's epoch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aami.db.base import Base, utcnow

__all__ = ["Publish", "PublisherEpoch"]


class Publish(Base):
    """One reconcile pass that did something or failed; identical failures in a row are
    one row with a ``count``."""

    __tablename__ = "publishes"
    __table_args__ = (Index("ix_publishes_target_id", "target", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(16), default="prometheus")
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str] = mapped_column(String(200), default="")
    epoch: Mapped[int | None] = mapped_column(nullable=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    files_written: Mapped[list[str]] = mapped_column(JSON, default=list)
    files_removed: Mapped[list[str]] = mapped_column(JSON, default=list)
    files_rejected: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rule_count: Mapped[int] = mapped_column(default=0)
    validation: Mapped[str] = mapped_column(String(32), default="skipped")
    reload: Mapped[str] = mapped_column(String(32), default="not_needed")
    result: Mapped[str] = mapped_column(String(32), default="ok")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    count: Mapped[int] = mapped_column(default=1)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PublisherEpoch(Base):
    """The fencing epoch: bumped by every replica that takes the publisher lease. A
    publisher whose epoch is not the current one must not write or reload."""

    __tablename__ = "publisher_epochs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    epoch: Mapped[int] = mapped_column(default=0)
    holder: Mapped[str] = mapped_column(String(200), default="")
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
