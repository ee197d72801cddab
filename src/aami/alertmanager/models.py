"""Managed notification channels (receivers), routes, silences to expire on resolve, and
the alert history Alertmanager's webhook reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
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


class AlertTransition(Base):
    """One transition of one alert as Alertmanager's webhook reported it: it started
    firing, or it resolved. An episode of an alert is its fingerprint and ``starts_at``;
    each episode has at most one row per status, so a notification Alertmanager repeats
    (``repeat_interval``, a retry, both peers of a cluster) is stored once."""

    __tablename__ = "alert_history"
    __table_args__ = (
        UniqueConstraint("fingerprint", "starts_at", "status", name="uq_alert_history_episode"),
        Index("ix_alert_history_instance_at", "instance", "at"),
        Index("ix_alert_history_group_at", "group_id", "at"),
        Index("ix_alert_history_alertname_at", "alertname", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    alertname: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    summary: Mapped[str] = mapped_column(String(1000), default="")
    group_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instance: Mapped[str | None] = mapped_column(String(255), nullable=True)
    severity: Mapped[str | None] = mapped_column(String(64), nullable=True)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # When the transition happened: starts_at when it fired, ends_at when it resolved.
    at: Mapped[datetime] = mapped_column(index=True)
    receiver: Mapped[str] = mapped_column(String(255), default="")
    generator_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
