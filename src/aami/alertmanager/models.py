"""Managed notification channels (receivers), routes, and silences to expire on resolve."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from aami.db.base import Base, TimestampMixin, utcnow
from aami.security.secrets import EncryptedText


class NotificationChannel(TimestampMixin, Base):
    __tablename__ = "notification_channels"
    __revision_area__ = "alerting"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Write-only: rendered into a file Alertmanager reads, never returned by the API.
    # Encrypted at rest with the server's key (aami.security.secrets); plaintext here.
    secret: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)


class NotificationRoute(TimestampMixin, Base):
    __tablename__ = "notification_routes"
    __revision_area__ = "alerting"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    receiver_id: Mapped[str] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="RESTRICT"), index=True
    )
    group_by: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    group_wait: Mapped[str | None] = mapped_column(String(32), nullable=True)
    group_interval: Mapped[str | None] = mapped_column(String(32), nullable=True)
    repeat_interval: Mapped[str | None] = mapped_column(String(32), nullable=True)
    continue_: Mapped[bool] = mapped_column("continue", Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=100)

    receiver: Mapped[NotificationChannel] = relationship(lazy="joined")


class SilenceWatch(Base):
    """A silence to expire once nothing it matches is firing (expire_on_resolve)."""

    __tablename__ = "silence_watches"

    silence_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    armed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
