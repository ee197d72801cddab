"""Readiness: the database answers and accepts writes (a full disk still answers reads)."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from aami.db.revisions import HeartbeatRepository
from aami.db.session import session_scope

__all__ = ["READY_RESPONSES", "NotReady", "Readiness", "Ready", "database_error"]

_PUBLISHING = "by publishing target (prometheus, alertmanager): ok, or failing: <error>"


class Ready(BaseModel):
    """``GET /health/ready`` when the database takes writes (200)."""

    status: Literal["ok"]
    database: Literal["ok"]
    publishing: dict[str, str] = Field(description=_PUBLISHING)


class NotReady(BaseModel):
    """``GET /health/ready`` when the database does not take writes (503)."""

    status: Literal["unavailable"]
    detail: str = Field(description="why the database cannot write")
    publishing: dict[str, str] = Field(description=_PUBLISHING)


READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Ready, "description": "ready: the database takes writes"},
    503: {"model": NotReady, "description": "not ready: the database cannot write"},
}


def database_error(exc: SQLAlchemyError) -> str:
    """The database's own words (first line), without the statement or its parameters."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Readiness:
    """Writes this replica's heartbeat at most every ``ttl`` seconds; remembers the answer."""

    def __init__(self, factory: sessionmaker[Session], name: str, ttl: float = 2.0) -> None:
        self.factory = factory
        self.name = name
        self.ttl = ttl
        self._lock = threading.Lock()
        self._checked = -1e9
        self._error: str | None = None

    def check(self) -> str | None:
        """None when the database takes a write, else why not."""
        with self._lock:
            if time.monotonic() - self._checked < self.ttl:
                return self._error
            try:
                with session_scope(self.factory) as session:
                    HeartbeatRepository(session).beat(self.name)
                self._error = None
            except SQLAlchemyError as exc:
                self._error = database_error(exc)
            self._checked = time.monotonic()
            return self._error
