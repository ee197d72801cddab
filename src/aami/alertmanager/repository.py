"""SQL for notification channels, routes and silence watches."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from aami.alertmanager.models import NotificationChannel, NotificationRoute, SilenceWatch
from aami.common.repository import Repository

__all__ = ["ChannelRepository", "RouteRepository", "SilenceWatchRepository"]


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
