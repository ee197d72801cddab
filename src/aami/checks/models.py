"""Check scripts and the policies that apply them to scopes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from aami.db.base import Base, TimestampMixin


class ScriptTemplate(TimestampMixin, Base):
    __tablename__ = "script_templates"
    __revision_area__ = "checks"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    script_type: Mapped[str] = mapped_column(String(63), default="custom")
    script_content: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16), default="bash")
    default_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[str] = mapped_column(String(63), default="1.0.0")
    description: Mapped[str] = mapped_column(Text, default="")
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=30)
    hash: Mapped[str] = mapped_column(String(64))


class ScriptPolicy(TimestampMixin, Base):
    __tablename__ = "script_policies"
    __revision_area__ = "checks"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    template_id: Mapped[str] = mapped_column(
        ForeignKey("script_templates.id", ondelete="RESTRICT"), index=True
    )
    scope: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("groups.id", ondelete="RESTRICT"), index=True, nullable=True
    )
    target_id: Mapped[str | None] = mapped_column(
        ForeignKey("targets.id", ondelete="RESTRICT"), index=True, nullable=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    template: Mapped[ScriptTemplate] = relationship(lazy="joined")
