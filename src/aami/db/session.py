"""Engines and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from aami.db.base import ConfigRevision

__all__ = ["make_engine", "make_sessionmaker", "session_scope", "track_revisions"]


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_pre_ping=True,
            json_deserializer=orjson.loads,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_deserializer=orjson.loads
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory; objects stay readable after commit."""
    factory = sessionmaker(engine, expire_on_commit=False)
    track_revisions(factory)
    return factory


def track_revisions(factory: sessionmaker[Session]) -> None:
    """Bump ``config_revisions`` for every area whose rows a flush writes."""

    @event.listens_for(factory, "before_flush")
    def _bump(session: Session, _context: Any, _instances: Any) -> None:
        areas: set[str] = set()
        for obj in (*session.new, *session.dirty, *session.deleted):
            area = getattr(obj, "__revision_area__", None)
            if area is not None and (
                obj in session.new or session.is_modified(obj) or obj in session.deleted
            ):
                areas.add(area)
        if areas:
            session.connection().execute(
                update(ConfigRevision)
                .where(ConfigRevision.name.in_(sorted(areas)))
                .values(revision=ConfigRevision.revision + 1)
            )


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session that commits on success and rolls back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
