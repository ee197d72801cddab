"""SQL for web UI sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update

from aami.auth.models import UiSession
from aami.common.repository import Repository

__all__ = ["UiSessionRepository"]


class UiSessionRepository(Repository[UiSession]):
    model = UiSession

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
