"""SQL for notification channels, routes, silence watches and the alert history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aami.alertmanager.models import (
    AlertTransition,
    NotificationChannel,
    NotificationRoute,
    SilenceWatch,
)
from aami.common.repository import Repository

__all__ = [
    "AlertHistoryRepository",
    "ChannelRepository",
    "RouteRepository",
    "SilenceWatchRepository",
]


class ChannelRepository(Repository[NotificationChannel]):
    model = NotificationChannel

    def get_by_ref(self, ref: str) -> NotificationChannel | None:
        return self.session.get(NotificationChannel, ref) or self.session.scalar(
            select(NotificationChannel).where(NotificationChannel.name == ref)
        )

    def name_taken(self, name: str) -> bool:
        return (
            self.session.scalar(
                select(NotificationChannel.id).where(NotificationChannel.name == name)
            )
            is not None
        )

    def all(self) -> Sequence[NotificationChannel]:
        return self.session.scalars(
            select(NotificationChannel).order_by(NotificationChannel.name)
        ).all()


class RouteRepository(Repository[NotificationRoute]):
    model = NotificationRoute

    def name_taken(self, name: str, *, excluding: str | None = None) -> bool:
        query = select(NotificationRoute.id).where(NotificationRoute.name == name)
        if excluding is not None:
            query = query.where(NotificationRoute.id != excluding)
        return self.session.scalar(query) is not None

    def all(self) -> Sequence[NotificationRoute]:
        return self.session.scalars(
            select(NotificationRoute).order_by(NotificationRoute.position, NotificationRoute.name)
        ).all()

    def using(self, channel_id: str) -> Sequence[NotificationRoute]:
        return self.session.scalars(
            select(NotificationRoute).where(NotificationRoute.receiver_id == channel_id)
        ).all()


class SilenceWatchRepository(Repository[SilenceWatch]):
    model = SilenceWatch
    # Watches are bookkeeping beside Alertmanager's silences: the commit writes them.
    flush_writes = False

    def all(self) -> Sequence[SilenceWatch]:
        return self.session.scalars(select(SilenceWatch)).all()

    def ids(self) -> set[str]:
        return set(self.session.scalars(select(SilenceWatch.silence_id)))


class AlertHistoryRepository(Repository[AlertTransition]):
    model = AlertTransition

    def insert_new(self, row: dict[str, Any]) -> bool:
        """Store a transition unless that episode already has it; True when stored."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stored = self.session.scalar(
            insert(AlertTransition)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["fingerprint", "starts_at", "status"])
            .returning(AlertTransition.id)
        )
        return stored is not None

    def prune(self, *, received_before: datetime, keep: int) -> None:
        """Delete transitions received before the cut-off; past ``keep`` rows, the oldest
        down to 90 % of it (so the next writes find room without counting)."""
        self.session.execute(
            delete(AlertTransition)
            .where(AlertTransition.received_at < received_before)
            .execution_options(synchronize_session=False)
        )
        # Ids only grow, so max - min + 1 bounds the row count: no count while it is small.
        low, high = self.session.execute(
            select(func.min(AlertTransition.id), func.max(AlertTransition.id))
        ).one()
        if low is None or high - low + 1 <= keep:
            return
        cut = self.session.scalar(
            select(AlertTransition.id)
            .order_by(AlertTransition.id.desc())
            .offset(keep * 9 // 10)
            .limit(1)
        )
        if cut is not None:
            self.session.execute(
                delete(AlertTransition)
                .where(AlertTransition.id <= cut)
                .execution_options(synchronize_session=False)
            )

    @staticmethod
    def _where(
        *,
        instance: str | None,
        group_id: str | None,
        alertname: str | None,
        status: str | None = None,
        since: datetime | None = None,
    ) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if instance is not None:
            where.append(AlertTransition.instance == instance)
        if group_id is not None:
            where.append(AlertTransition.group_id == group_id)
        if alertname is not None:
            where.append(AlertTransition.alertname == alertname)
        if status is not None:
            where.append(AlertTransition.status == status)
        if since is not None:
            where.append(AlertTransition.at >= since)
        return where

    def timeline(
        self,
        *,
        instance: str | None,
        group_id: str | None,
        alertname: str | None,
        status: str | None,
        since: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[AlertTransition], int]:
        """One page of transitions, newest first, and how many match."""
        where = self._where(
            instance=instance, group_id=group_id, alertname=alertname, status=status, since=since
        )
        return self.page(
            select(AlertTransition).where(*where),
            AlertTransition.at.desc(),
            AlertTransition.id.desc(),
            offset=offset,
            limit=limit,
        )

    def window(
        self,
        *,
        instance: str | None,
        group_id: str | None,
        alertname: str | None,
        since: datetime,
    ) -> Sequence[Any]:
        """The transitions within the window, oldest first: only what counting needs."""
        where = self._where(instance=instance, group_id=group_id, alertname=alertname, since=since)
        return self.session.execute(
            select(
                AlertTransition.fingerprint,
                AlertTransition.starts_at,
                AlertTransition.status,
                AlertTransition.at,
                AlertTransition.alertname,
                AlertTransition.instance,
                AlertTransition.group_id,
                AlertTransition.severity,
            )
            .where(*where)
            .order_by(AlertTransition.at, AlertTransition.id)
        ).all()
