"""Groups of nodes: each becomes the ``group``/``group_id`` labels of its targets' metrics."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aami.db.base import Base, TimestampMixin


class Group(TimestampMixin, Base):
    __tablename__ = "groups"
    __revision_area__ = "inventory"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, str]] = mapped_column(default=dict)
