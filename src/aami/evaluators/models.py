"""A rule evaluator: which groups' rules it runs, its token's hash, what it last reported."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aami.db.base import Base, TimestampMixin

__all__ = ["KINDS", "LOCAL", "Evaluator"]

KINDS = ("prometheus", "vmalert")
LOCAL = "local"  # the Prometheus whose rule directory AAMI writes itself: not a row


class Evaluator(TimestampMixin, Base):
    __tablename__ = "evaluators"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(500))
    # None: every group; else the group ids whose rules (and targets) it takes.
    groups: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    loaded_revision: Mapped[str | None] = mapped_column(String(64), nullable=True)
    report_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_report_at: Mapped[datetime | None] = mapped_column(nullable=True)
