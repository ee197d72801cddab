"""Web UI sessions: start one at login, find the live one, revoke it at logout.

Callers pass the session id's keyed hash (``aami.web.security.session_id_hash``); the id
itself never reaches the database.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from aami.auth.models import UiSession
from aami.auth.repository import UiSessionRepository
from aami.db.base import utcnow

__all__ = ["active", "revoke", "start"]


def start(
    session: Session, *, id_hash: str, lifetime: float, now: datetime | None = None
) -> UiSession:
    """Record a new login that lasts ``lifetime`` seconds; expired ones are cleared."""
    now = now or utcnow()
    repository = UiSessionRepository(session)
    repository.delete_expired(now)
    row = UiSession(id_hash=id_hash, created_at=now, expires_at=now + timedelta(seconds=lifetime))
    repository.add(row)
    return row


def active(session: Session, *, id_hash: str, now: datetime | None = None) -> UiSession | None:
    """The session if it exists, has not expired and was not revoked."""
    row = UiSessionRepository(session).get(id_hash)
    if row is None or row.revoked_at is not None or row.expires_at <= (now or utcnow()):
        return None
    return row


def revoke(session: Session, *, id_hash: str, now: datetime | None = None) -> None:
    """End a session at once, on every replica."""
    UiSessionRepository(session).revoke(id_hash, now or utcnow())
