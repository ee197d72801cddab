"""Row locks for read-modify-write: snapshot, change and audit an object under one lock.

An object an endpoint loaded earlier in the request was read without a lock, so two
concurrent writers would both start from the same state. ``lock_for_update`` makes the
rest of the transaction the only writer of that row and reloads it, so what a service
reads from the object (its audit ``before``, a check) is what the write replaces.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import false, inspect, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.sql.expression import TableClause

from aami.db.base import ConfigRevision
from aami.errors import Conflict, NotFound

__all__ = ["lock_for_update"]

_SQLITE_BUSY = 5  # primary code; SQLITE_BUSY_SNAPSHOT (517) is one of its extended codes


def lock_for_update(session: Session, entity: object) -> None:
    """Lock a loaded object's row until the transaction ends and reload it from the database.

    Call it before changing the object: the reload replaces unflushed changes. Columns and
    the relationships the object loads eagerly (joined, selectin) get the latest committed
    values. Raises NotFound when a concurrent transaction deleted the row meanwhile.
    """
    state: InstanceState[Any] = inspect(entity)
    mapper = state.mapper
    if state.identity is None:
        raise ValueError(f"{entity!r} is not persistent: there is no row to lock")
    if session.get_bind(mapper).dialect.name == "sqlite":
        _take_sqlite_write_lock(session, mapper)
    else:
        _lock_revision_area(session, mapper)
    # FOR NO KEY UPDATE, the lock a plain UPDATE takes: it queues the row's other writers
    # but not inserts that reference it (their foreign key check takes FOR KEY SHARE). OF
    # leaves joined eager loads unlocked (PostgreSQL cannot lock an outer join's nullable
    # side). Under READ COMMITTED the row is re-read once the lock is granted. SQLite
    # ignores the clause.
    fresh = session.get(
        mapper.class_,
        state.identity,
        populate_existing=True,
        with_for_update={"of": mapper.class_, "key_share": True},
    )
    if fresh is None:
        name = re.sub(r"(?<!^)(?=[A-Z])", " ", mapper.class_.__name__).lower()
        ref = ",".join(map(str, state.identity))
        raise NotFound(f"{name} {ref!r} does not exist (deleted by a concurrent request)")


def _lock_revision_area(session: Session, mapper: Mapper[Any]) -> None:
    """Lock the counter of the object's revision area before its row (PostgreSQL).

    Every flush that writes the area bumps that counter first (``track_revisions``), so a
    transaction holds it from its first flush and may lock more rows after it (changing
    several objects). A writer that held one of those rows while waiting for the counter
    would deadlock with it: taking the counter first keeps one order, counter then rows.
    """
    area = getattr(mapper.class_, "__revision_area__", None)
    if area is not None:
        session.execute(
            select(ConfigRevision.name)
            .where(ConfigRevision.name == area)
            .with_for_update(key_share=True)
        )


def _take_sqlite_write_lock(session: Session, mapper: Mapper[Any]) -> None:
    """Make this transaction SQLite's (only) writer now, so later reads in it are current.

    pysqlite runs SELECTs outside a transaction and opens one (deferred) at the first
    INSERT/UPDATE/DELETE; an UPDATE that matches no row still takes the database's write
    lock, waiting up to the busy timeout for the current writer to commit. Nothing can
    commit between that and the reload, which then reads under the lock.
    """
    connection = session.connection(bind_arguments={"mapper": mapper})
    already_open = bool(getattr(connection.connection.dbapi_connection, "in_transaction", False))
    table = mapper.local_table
    assert isinstance(table, TableClause), f"{mapper} is not mapped to a table"
    column = next(iter(table.primary_key))
    try:
        connection.execute(update(table).where(false()).values({column: column}))
    except OperationalError as exc:
        code = getattr(exc.orig, "sqlite_errorcode", None)
        # Only a transaction that a read opened (a SAVEPOINT or an explicit BEGIN; the
        # ones pysqlite opens start with a write, so they hold the lock already) keeps a
        # WAL snapshot: SQLite refuses at once, without waiting, to make it the writer
        # while another one is (SQLITE_BUSY) or once one committed after the snapshot
        # (SQLITE_BUSY_SNAPSHOT). Only a new transaction can go on.
        if already_open and code is not None and code & 0xFF == _SQLITE_BUSY:
            raise Conflict(
                "the object was changed by a concurrent request; send the request again"
            ) from exc
        raise
