"""SQL for the publish history and the publisher's fencing epoch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update

from aami.common.repository import Repository
from aami.db.base import utcnow
from aami.publishing.models import Publish, PublisherEpoch

__all__ = ["EpochRepository", "PublishRepository"]

_SIGNATURE = (  # what makes two failures "the same" (not when, not what triggered them)
    "result",
    "error",
    "files_rejected",
    "files_written",
    "files_removed",
    "validation",
    "reload",
)


class PublishRepository(Repository[Publish]):
    model = Publish

    def latest(self, target: str) -> Publish | None:
        return self.session.scalar(
            select(Publish).where(Publish.target == target).order_by(Publish.id.desc()).limit(1)
        )

    def latest_by_target(self) -> dict[str, Publish]:
        newest = (
            select(func.max(Publish.id)).group_by(Publish.target).scalar_subquery().correlate(None)
        )
        rows = self.session.scalars(select(Publish).where(Publish.id.in_(newest))).all()
        return {row.target: row for row in rows}

    def record(self, row: Publish, *, collapse: bool) -> Publish:
        """Add the row; when ``collapse`` and the target's latest row says the same thing,
        count it there instead (a failure repeated by every retry is one row)."""
        if collapse:
            latest = self.latest(row.target)
            if latest is not None and all(
                getattr(latest, name) == getattr(row, name) for name in _SIGNATURE
            ):
                latest.count += 1
                latest.finished_at = row.finished_at
                latest.timings = row.timings
                latest.epoch = row.epoch
                latest.holder = row.holder
                self.session.flush()
                return latest
        self.add(row)
        return row

    def prune(self, target: str, *, keep: int, older_than: datetime) -> int:
        """Delete the target's rows beyond the newest ``keep`` and those older than the
        cut-off; return how many went."""
        cutoff_id = self.session.scalar(
            select(Publish.id)
            .where(Publish.target == target)
            .order_by(Publish.id.desc())
            .offset(keep)
            .limit(1)
        )
        statements = [
            delete(Publish).where(Publish.target == target, Publish.started_at < older_than)
        ]
        if cutoff_id is not None:
            statements.append(
                delete(Publish).where(Publish.target == target, Publish.id <= cutoff_id)
            )
        removed = 0
        for statement in statements:
            outcome: CursorResult[Any] = self.session.execute(statement)  # type: ignore[assignment]
            removed += outcome.rowcount
        return removed

    def find(self, *, target: str | None, offset: int, limit: int) -> tuple[Sequence[Publish], int]:
        query = select(Publish)
        if target is not None:
            query = query.where(Publish.target == target)
        return self.page(query, Publish.id.desc(), offset=offset, limit=limit)


class EpochRepository(Repository[PublisherEpoch]):
    model = PublisherEpoch

    def current(self, name: str) -> PublisherEpoch | None:
        return self.get(name)

    def advance(self, name: str, *, holder: str) -> int:
        """Take the next epoch for ``holder``; every earlier holder is fenced off by it."""
        bumped = self.session.execute(
            update(PublisherEpoch)
            .where(PublisherEpoch.name == name)
            .values(epoch=PublisherEpoch.epoch + 1, holder=holder, acquired_at=utcnow())
            .returning(PublisherEpoch.epoch)
        ).scalar_one_or_none()
        if bumped is not None:
            return int(bumped)
        self.add(PublisherEpoch(name=name, epoch=1, holder=holder, acquired_at=utcnow()))
        return 1
