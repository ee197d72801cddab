"""Targets (nodes), their ordered group memberships and their exporters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from aami.db.base import Base, TimestampMixin
from aami.groups.models import Group

EXPORTER_DEFAULT_PORTS = {"node_exporter": 9100, "dcgm_exporter": 9400}


class Target(TimestampMixin, Base):
    __tablename__ = "targets"
    __revision_area__ = "inventory"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    ip_address: Mapped[str] = mapped_column(String(45))
    labels: Mapped[dict[str, str]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")
    last_seen: Mapped[datetime | None] = mapped_column(nullable=True)

    memberships: Mapped[list[TargetGroup]] = relationship(
        order_by="TargetGroup.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    exporters: Mapped[list[Exporter]] = relationship(
        back_populates="target",
        cascade="all, delete-orphan",
        order_by="Exporter.port",
        lazy="selectin",
    )

    @property
    def group_ids(self) -> list[str]:
        """Group ids in order; the first is the primary group."""
        return [m.group_id for m in self.memberships]

    @property
    def primary_group_id(self) -> str | None:
        return self.memberships[0].group_id if self.memberships else None


class TargetGroup(Base):
    """A target's membership in a group; ``position`` 0 is the primary group."""

    __tablename__ = "target_groups"
    __revision_area__ = "inventory"

    target_id: Mapped[str] = mapped_column(
        ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    group: Mapped[Group] = relationship(lazy="joined")


class Exporter(TimestampMixin, Base):
    __tablename__ = "exporters"
    __revision_area__ = "inventory"
    __table_args__ = (UniqueConstraint("target_id", "port", name="uq_exporters_target_port"),)

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    target_id: Mapped[str] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    port: Mapped[int] = mapped_column(Integer)
    metrics_path: Mapped[str] = mapped_column(String(255), default="/metrics")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    target: Mapped[Target] = relationship(back_populates="exporters")
