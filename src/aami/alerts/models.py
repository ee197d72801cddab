"""Alert templates and their per-group (or global) rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from aami.db.base import Base, TimestampMixin
from aami.groups.models import Group

GLOBAL_SCOPE = ""


class AlertTemplate(TimestampMixin, Base):
    __tablename__ = "alert_templates"
    __revision_area__ = "rules"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    query_template: Mapped[str] = mapped_column(Text)
    default_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # key -> {type, min, max, unit, description, choices} (aami.alerts.parameters)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    for_duration: Mapped[str] = mapped_column(String(32), default="5m")
    labels: Mapped[dict[str, str]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(default=dict)
    # "per_group": one rule per group; "compact": one rule joined on aami_threshold series.
    threshold_mode: Mapped[str] = mapped_column(
        String(16), default="per_group", server_default="per_group"
    )


class AlertRule(TimestampMixin, Base):
    __tablename__ = "alert_rules"
    __revision_area__ = "rules"
    __table_args__ = (UniqueConstraint("template_id", "scope_key", name="uq_alert_rules_scope"),)

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    template_id: Mapped[str] = mapped_column(
        ForeignKey("alert_templates.id", ondelete="RESTRICT"), index=True
    )
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("groups.id", ondelete="RESTRICT"), index=True, nullable=True
    )
    # group_id, or "" for a global rule: NULLs never clash in a unique constraint.
    scope_key: Mapped[str] = mapped_column(String(63), default=GLOBAL_SCOPE)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    labels: Mapped[dict[str, str]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(default=dict)

    template: Mapped[AlertTemplate] = relationship(lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")
