"""SQL for the secrets at rest: one stored secret, to prove the key reads them."""

from __future__ import annotations

from sqlalchemy import select

from aami.alertmanager.models import NotificationChannel
from aami.common.repository import SessionRepository

__all__ = ["SecretRepository"]


class SecretRepository(SessionRepository):
    def sample(self) -> str | None:
        """One stored secret, decrypted (``SecretUnreadable`` when the key is not its)."""
        return self.session.scalar(
            select(NotificationChannel.secret)
            .where(NotificationChannel.secret.is_not(None))
            .limit(1)
        )
