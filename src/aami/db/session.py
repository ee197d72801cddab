"""Engines and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from aami.db.base import ConfigRevision

__all__ = [
    "RevisionCache",
    "make_engine",
    "make_sessionmaker",
    "on_areas_committed",
    "session_scope",
    "track_revisions",
]

_BUMPED = "aami.bumped_areas"
log = logging.getLogger(__name__)


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 (its directory 0700 when new) before SQLite opens it;
    SQLite gives the -wal and -shm files the database file's mode. An existing file that
    others may read is made private."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # an empty file is an empty SQLite database
        return
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
            if mode & 0o077:
                candidate.chmod(mode & 0o700)
                log.warning(
                    "%s was readable by others (mode %o): made it %o", candidate, mode, mode & 0o700
                )
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot make %s private: %s", candidate, exc)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and a 0600 file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _private_sqlite_file(Path(database).expanduser())
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_pre_ping=True,
            # As many connections as request threads (anyio's default limit is 40), so a
            # burst waits on the database, not on the pool.
            pool_size=10,
            max_overflow=40,
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
        url, pool_pre_ping=True, pool_size=10, max_overflow=40, json_deserializer=orjson.loads
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
            session.info.setdefault(_BUMPED, set()).update(areas)
            session.connection().execute(
                update(ConfigRevision)
                .where(ConfigRevision.name.in_(sorted(areas)))
                .values(revision=ConfigRevision.revision + 1)
            )


def on_areas_committed(
    factory: sessionmaker[Session], callback: Callable[[set[str]], None]
) -> None:
    """Call ``callback`` with the areas a transaction changed, once it has committed."""

    @event.listens_for(factory, "after_commit")
    def _committed(session: Session) -> None:
        areas = session.info.pop(_BUMPED, None)
        if areas:
            callback(set(areas))

    @event.listens_for(factory, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(_BUMPED, None)

    del _committed, _rolled_back


class RevisionCache:
    """The revision counters, re-read at most every ``ttl`` seconds.

    Changes made through this process clear it at once; other replicas' changes are seen
    within ``ttl``. When the time is up, one caller re-reads while the others keep using
    the previous values, so a busy server does not send every waiting request to the
    database at the same moment.
    """

    def __init__(self, factory: sessionmaker[Session], ttl: float = 1.0) -> None:
        self.factory = factory
        self.ttl = ttl
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}
        self._read_at = -1e9
        self._generation = 0  # bumped by every local commit that changes a counter
        self._values_generation = -1
        self._refreshing = False

    def invalidate(self, _areas: object = None) -> None:
        with self._lock:
            self._generation += 1
            self._read_at = -1e9

    def fresh(self) -> dict[str, int] | None:
        """Usable counters, or None when this caller should ``read`` them."""
        with self._lock:
            if time.monotonic() - self._read_at < self.ttl:
                return self._values
            if self._refreshing and self._values_generation == self._generation:
                return self._values  # only expired, not invalidated: someone is re-reading
            self._refreshing = True
            return None

    def read(self) -> dict[str, int]:
        """Read the counters from the database (blocking) and remember them."""
        with self._lock:
            generation = self._generation
        started = time.monotonic()
        try:
            with self.factory() as session:
                rows = session.execute(select(ConfigRevision.name, ConfigRevision.revision)).all()
                values: dict[str, int] = {name: revision for name, revision in rows}  # noqa: C416
        finally:
            with self._lock:
                self._refreshing = False
        with self._lock:
            # A change committed while reading invalidated the cache: keep it invalid.
            if self._generation == generation:
                self._values, self._read_at = values, started
                self._values_generation = generation
        return values


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
