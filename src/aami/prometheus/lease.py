"""Which replica publishes: a PostgreSQL advisory lock, or a file lock for SQLite.

Every replica runs a publisher; only the one holding the lease writes rule files and
reloads Prometheus. The others stand by and take over when the holder goes away.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, text

__all__ = ["PublisherLease"]

_LOCK_KEY = 0x41414D49_5055  # "AAMI" "PU": any constant all replicas share


class PublisherLease:
    def __init__(self, engine: Engine, lock_path: Path) -> None:
        self.engine = engine
        self.lock_path = lock_path
        self._connection: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this replica holds it now."""
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}
                ).scalar()
            )
            connection.commit()
            if got:
                self._connection = connection
            else:
                connection.close()
            return got
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            finally:
                self._connection.close()
                self._connection = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
