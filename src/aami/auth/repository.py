"""SQL for web UI sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from aami.auth.models import UiSession

__all__ = ["UiSessionRepository"]


class UiSessionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, id_hash: str) -> UiSession | None:
        return self.session.get(UiSession, id_hash)

    def add(self, row: UiSession) -> None:
        self.session.add(row)
        self.session.flush()

    def revoke(self, id_hash: str, now: datetime) -> None:
        self.session.execute(
            update(UiSession)
            .where(UiSession.id_hash == id_hash, UiSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )

    def delete_expired(self, now: datetime) -> None:
        self.session.execute(
            delete(UiSession)
            .where(UiSession.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
