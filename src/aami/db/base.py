"""Declarative base, shared column types and the change-revision counter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Integer, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "ConfigRevision",
    "Heartbeat",
    "RuleScopeRevision",
    "TimestampMixin",
    "UTCDateTime",
    "utcnow",
]


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        dict[str, str]: JSON,
        datetime: UTCDateTime,
    }


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConfigRevision(Base):
    """A counter per area of configuration, bumped in the transaction that changes it.

    Readers that cache derived documents (service discovery, rule files) compare the
    counter instead of re-reading every row.
    """

    __tablename__ = "config_revisions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class RuleScopeRevision(Base):
    """The desired revision of one rule file (a group id, or ``""`` for the global rules).

    Set, in the transaction that changes what the file must hold, to the ``rules``
    counter's new value; the file and the rule group Prometheus loads carry the revision
    they were rendered from, so any replica can tell what is published and what is not.
    """

    __tablename__ = "rule_scope_revisions"

    scope: Mapped[str] = mapped_column(String(63), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Heartbeat(Base):
    """One row per server replica, rewritten by its readiness probe: proof that the
    database still accepts writes (a full disk answers reads but not writes)."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
