"""The SQLite database (with its -wal and -shm files) is 0600, its new directory and the
stack's state directory 0700, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from aami.db.session import make_engine
from aami.stack.runner import private_state_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual umask, which on its own would make files 0644 and directories 0755."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _write(database: Path) -> None:
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    # Keep a connection open so that the -wal and -shm files are there to look at.
    held = engine.connect()
    held.execute(text("SELECT count(*) FROM t"))
    try:
        for suffix in ("", "-wal", "-shm"):
            path = database.with_name(database.name + suffix)
            assert path.exists(), path
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
    finally:
        held.close()
        engine.dispose()


def test_a_new_database_is_private(tmp_path: Path) -> None:
    database = tmp_path / "new" / "dir" / "aami.db"
    _write(database)
    assert _mode(database.parent) == 0o700


def test_an_existing_database_that_others_could_read_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "var"
    directory.mkdir(mode=0o755)
    database = directory / "aami.db"
    _write(database)
    for suffix in ("", "-wal", "-shm"):
        path = database.with_name(database.name + suffix)
        if path.exists():
            path.chmod(0o644)
    _write(database)  # asserts 0600 for all three
    # An existing directory is left as the operator made it (it may be ".").
    assert _mode(directory) == 0o755


def test_the_stack_state_directory_is_private(tmp_path: Path) -> None:
    state = tmp_path / "stack"
    private_state_dir(state)
    assert _mode(state) == 0o700
    # A directory an earlier stack made before this fix is made private too...
    old = tmp_path / "old-stack"
    old.mkdir(mode=0o755)
    (old / "admin-token").write_text("x\n")
    private_state_dir(old)
    assert _mode(old) == 0o700
    # ... but a directory that is not a stack's is not touched.
    other = tmp_path / "shared"
    other.mkdir(mode=0o755)
    private_state_dir(other)
    assert _mode(other) == 0o755
