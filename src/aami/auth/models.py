"""Web UI sessions, kept on the server so that logging out ends them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from aami.db.base import Base, utcnow

__all__ = ["UiSession"]


class UiSession(Base):
    """One login. The browser holds a random id; only its keyed hash is stored, so the
    table cannot be replayed as cookies."""

    __tablename__ = "ui_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
