"""SQL for the revision counters (per area, per rule scope) and the replicas' heartbeats."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from aami.db.base import ConfigRevision, Heartbeat, RuleScopeRevision, utcnow

__all__ = ["HeartbeatRepository", "RevisionRepository"]


class RevisionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def area(self, name: str) -> int:
        return (
            self.session.scalar(select(ConfigRevision.revision).where(ConfigRevision.name == name))
            or 0
        )

    def bump_area(self, name: str) -> int:
        """Bump one area's counter in this transaction; return the new value."""
        return int(
            self.session.execute(
                update(ConfigRevision)
                .where(ConfigRevision.name == name)
                .values(revision=ConfigRevision.revision + 1)
                .returning(ConfigRevision.revision)
            ).scalar_one()
        )

    def bump_rule_scopes(self, scopes: Iterable[str]) -> int:
        """Give these scopes a new desired revision (the ``rules`` counter's next value).

        The counter's row lock (PostgreSQL) or the write lock (SQLite) orders concurrent
        transactions, so revisions only grow, in commit order.
        """
        wanted = sorted(set(scopes))
        revision = self.bump_area("rules")
        if not wanted:
            return revision
        now = utcnow()
        rows = [{"scope": scope, "revision": revision, "updated_at": now} for scope in wanted]
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(RuleScopeRevision).values(rows)
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[RuleScopeRevision.scope],
                set_={"revision": revision, "updated_at": now},
            )
        )
        return revision

    def rule_scopes(self) -> dict[str, int]:
        """The desired revision of every rule scope ever changed."""
        rows = self.session.execute(select(RuleScopeRevision.scope, RuleScopeRevision.revision))
        return {scope: revision for scope, revision in rows}  # noqa: C416


class HeartbeatRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def beat(self, name: str) -> None:
        """Write this replica's row (a real write: it fails when the database cannot)."""
        now = utcnow()
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self.session.execute(
            insert(Heartbeat)
            .values(name=name, at=now)
            .on_conflict_do_update(index_elements=[Heartbeat.name], set_={"at": now})
        )
