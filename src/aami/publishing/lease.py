"""Which replica publishes: a lease (PostgreSQL advisory lock, or a file lock on SQLite)
with a fencing epoch.

Every replica runs a reconciler; only the one holding the lease writes files and reloads.
Taking the lease advances the epoch in the database. Before every write and every reload
the holder checks that it still holds the lease and that the epoch is still its own: a
replica whose lock connection died (``pg_terminate_backend``, a network cut) or whose
epoch was overtaken stops before touching anything.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from aami.db.session import session_scope
from aami.publishing.repository import EpochRepository
from aami.publishing.types import Fenced

__all__ = ["PublisherLease", "default_holder"]

log = logging.getLogger(__name__)

_LOCK_KEY = 0x41414D49_5055  # "AAMI" "PU": any constant all replicas share
_EPOCH = "publisher"


def default_holder() -> str:
    """This process, as other replicas and the history name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PublisherLease:
    def __init__(
        self,
        engine: Engine,
        factory: sessionmaker[Session],
        lock_path: Path,
        *,
        holder: str | None = None,
    ) -> None:
        self.engine = engine
        self.factory = factory
        self.lock_path = lock_path
        self.holder = holder or default_holder()
        self.epoch: int | None = None
        self._connection: Connection | None = None
        self._fd: int | None = None

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def held(self) -> bool:
        """Holding the lock and an epoch (not yet re-checked: see ``check``)."""
        return self.epoch is not None and (self._connection is not None or self._fd is not None)

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this replica holds it now."""
        if self.held:
            return True
        if not self._lock():
            return False
        try:
            with session_scope(self.factory) as session:
                self.epoch = EpochRepository(session).advance(_EPOCH, holder=self.holder)
        except SQLAlchemyError as exc:
            log.warning("publisher lease: could not advance the epoch: %s", exc)
            self.release()
            return False
        log.info("publisher lease taken by %s, epoch %s", self.holder, self.epoch)
        return True

    def _lock(self) -> bool:
        if self.postgres:
            try:
                connection = self.engine.connect()
            except SQLAlchemyError:
                return False
            try:
                got = bool(
                    connection.execute(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}
                    ).scalar()
                )
                connection.commit()
            except SQLAlchemyError:
                connection.invalidate()
                connection.close()
                return False
            if got:
                self._connection = connection
            else:
                connection.close()
            return got
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _current_epoch(self) -> int | None:
        if self._connection is not None:
            # Read through the lock's own connection: if its backend is gone, so is the lock.
            try:
                value = self._connection.execute(
                    text("SELECT epoch FROM publisher_epochs WHERE name = :n"), {"n": _EPOCH}
                ).scalar()
                self._connection.commit()
            except SQLAlchemyError as exc:
                log.warning("publisher lease lost: its database connection failed: %s", exc)
                return None
            return int(value) if value is not None else None
        with session_scope(self.factory) as session:
            row = EpochRepository(session).current(_EPOCH)
            return row.epoch if row is not None else None

    def check(self) -> int:
        """Raise ``Fenced`` unless this replica still holds the lease at its epoch; return
        the epoch. Called before every write and every reload."""
        if not self.held:
            raise Fenced("this replica does not hold the publisher lease")
        try:
            current = self._current_epoch()
        except SQLAlchemyError as exc:
            current = None
            log.warning("publisher lease: the epoch cannot be read: %s", exc)
        if current is None or current != self.epoch:
            mine = self.epoch
            self.release()
            raise Fenced(
                f"the publisher lease was lost (epoch {mine}, now {current}): "
                "another replica publishes"
                if current is not None
                else f"the publisher lease was lost (epoch {mine}): its database connection failed"
            )
        return current

    def release(self) -> None:
        self.epoch = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                connection.commit()
            except SQLAlchemyError:
                connection.invalidate()
            finally:
                connection.close()
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
