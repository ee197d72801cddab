"""lock_for_update on SQLite and a real PostgreSQL: it waits, reloads and reports deletes."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.db.locking import lock_for_update
from aami.db.session import make_engine, make_sessionmaker
from aami.errors import Conflict, NotFound
from aami.groups.models import Group
from aami.targets.models import Exporter, Target, TargetGroup


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    factory = make_sessionmaker(engine)
    with factory() as session:
        session.add_all([Group(id="g1", name="one"), Group(id="g2", name="two")])
        session.add(ScriptTemplate(id="t", name="mount", script_content="true", hash="0"))
        session.flush()
        session.add(ScriptPolicy(id="p", template_id="t", scope="global"))
        session.add(
            Target(
                id="n",
                hostname="n",
                ip_address="10.0.0.1",
                memberships=[
                    TargetGroup(group_id="g1", position=0),
                    TargetGroup(group_id="g2", position=1),
                ],
                exporters=[Exporter(id="e", type="node_exporter", port=9100)],
            )
        )
        session.commit()
    return factory


def test_waits_for_the_writer_then_reads_what_it_committed(
    factory: sessionmaker[Session],
) -> None:
    writer = factory()
    group = writer.get(Group, "g1")
    assert group is not None
    lock_for_update(writer, group)
    group.description = "first"
    writer.flush()

    seen: dict[str, Any] = {}
    locked = threading.Event()

    def second_writer() -> None:
        with factory() as session:
            stale = session.get(Group, "g1")
            assert stale is not None
            seen["before"] = stale.description
            lock_for_update(session, stale)
            locked.set()
            seen["after"] = stale.description
            session.rollback()

    thread = threading.Thread(target=second_writer)
    thread.start()
    try:
        assert not locked.wait(0.5), "the second writer did not wait for the first"
        assert seen["before"] == ""
    finally:
        writer.commit()
        writer.close()
        thread.join(timeout=30)
    assert locked.is_set()
    assert seen["after"] == "first"


def test_a_transaction_changing_two_objects_does_not_deadlock_with_a_writer_of_the_second(
    factory: sessionmaker[Session],
) -> None:
    # The first flush takes the area's revision counter (``track_revisions``); a writer
    # that locked a row first and then flushed would wait for it while holding the row.
    first = factory()
    group = first.get(Group, "g1")
    assert group is not None
    lock_for_update(first, group)
    group.description = "changed with the target"
    first.flush()

    started = threading.Event()
    errors: list[BaseException] = []
    seen: dict[str, Any] = {}

    def second_writer() -> None:
        try:
            with factory() as session:
                target = session.get(Target, "n")
                assert target is not None
                started.set()
                lock_for_update(session, target)
                seen["labels"] = dict(target.labels)
                target.labels = {**target.labels, "second": "yes"}
                session.flush()
                session.commit()
        except BaseException as exc:
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    try:
        assert started.wait(10)
        # The second writer is queued (on the counter, or on its flush after locking the
        # row) before the first one asks for the row.
        _until_someone_waits(factory)
        target = first.get(Target, "n")
        assert target is not None
        lock_for_update(first, target)
        target.labels = {"first": "yes"}
        first.flush()
        first.commit()
    finally:
        first.close()
        thread.join(timeout=30)
    assert not errors, errors
    assert seen["labels"] == {"first": "yes"}
    with factory() as session:
        final = session.get(Target, "n")
        assert final is not None
        assert final.labels == {"first": "yes", "second": "yes"}


def _until_someone_waits(factory: sessionmaker[Session]) -> None:
    """Return once a transaction waits for a lock (PostgreSQL); SQLite cannot tell."""
    with factory() as session:
        if session.get_bind().dialect.name == "sqlite":
            time.sleep(0.3)
            return
        deadline = time.monotonic() + 10
        while not session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
            assert time.monotonic() < deadline, "nobody waits for a lock"
            time.sleep(0.02)
            session.rollback()


def test_reloads_columns_and_eager_relationships(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        target = session.get(Target, "n")
        policy = session.get(ScriptPolicy, "p")
        assert target is not None
        assert policy is not None
        assert (target.group_ids, target.exporters[0].enabled) == (["g1", "g2"], True)
        assert policy.template.name == "mount"

        with factory() as other:
            changed = other.get(Target, "n")
            assert changed is not None
            changed.labels = {"rack": "r1"}
            changed.memberships[0].position, changed.memberships[1].position = 1, 0
            changed.exporters[0].enabled = False
            other_policy = other.get(ScriptPolicy, "p")
            assert other_policy is not None
            other_policy.priority = 7
            other_policy.template.name = "mounts"
            other.commit()

        lock_for_update(session, target)
        # A joined eager load (the template) next to the lock: PostgreSQL refuses
        # FOR UPDATE on the nullable side of an outer join, unless OF names the table.
        lock_for_update(session, policy)

        assert target.labels == {"rack": "r1"}
        assert target.group_ids == ["g2", "g1"]
        assert target.exporters[0].enabled is False
        assert (policy.priority, policy.template.name) == (7, "mounts")


def test_a_row_deleted_meanwhile_is_not_found(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        policy = session.get(ScriptPolicy, "p")
        assert policy is not None
        with factory() as other:
            other.delete(other.get(ScriptPolicy, "p"))
            other.commit()
        with pytest.raises(NotFound, match="script policy 'p' does not exist"):
            lock_for_update(session, policy)


@pytest.mark.parametrize("opened_by", ["savepoint", "begin"])
def test_sqlite_transaction_opened_by_a_read_gets_a_conflict_not_stale_data(
    sqlite_template: Path, tmp_path: Path, opened_by: str
) -> None:
    """A SAVEPOINT, or a real BEGIN, opens a transaction whose reads share one snapshot
    (SQLite's WAL snapshots; PostgreSQL has no such case)."""
    path = tmp_path / "aami.db"
    shutil.copyfile(sqlite_template, path)
    database_url = f"sqlite:///{path}"
    engine = make_engine(database_url)
    if opened_by == "begin":  # SQLAlchemy's recipe for real BEGINs on pysqlite

        @event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

    factory = make_sessionmaker(engine)

    def open_session() -> Session:
        session = factory()
        if opened_by == "savepoint":
            session.begin_nested()
        return session

    try:
        with factory() as session:
            session.add(Group(id="g", name="g"))
            session.commit()

        with open_session() as session:
            group = session.get(Group, "g")
            assert group is not None
            lock_for_update(session, group)  # nobody wrote since the read: it may write
            group.description = "mine"
            session.commit()

        with open_session() as session:
            group = session.get(Group, "g")
            assert group is not None
            with factory() as other:
                changed = other.get(Group, "g")
                assert changed is not None
                changed.description = "theirs"
                other.commit()
            with pytest.raises(Conflict, match="concurrent request"):
                lock_for_update(session, group)
    finally:
        engine.dispose()
