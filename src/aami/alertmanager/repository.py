"""SQL for notification channels, routes and silence watches."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from aami.alertmanager.models import NotificationChannel, NotificationRoute, SilenceWatch


class ChannelRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

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

    def add(self, channel: NotificationChannel) -> None:
        self.session.add(channel)
        self.session.flush()

    def delete(self, channel: NotificationChannel) -> None:
        self.session.delete(channel)
        self.session.flush()


class RouteRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, route_id: str) -> NotificationRoute | None:
        return self.session.get(NotificationRoute, route_id)

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

    def add(self, route: NotificationRoute) -> None:
        self.session.add(route)
        self.session.flush()

    def delete(self, route: NotificationRoute) -> None:
        self.session.delete(route)
        self.session.flush()


class SilenceWatchRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, watch: SilenceWatch) -> None:
        self.session.add(watch)

    def get(self, silence_id: str) -> SilenceWatch | None:
        return self.session.get(SilenceWatch, silence_id)

    def all(self) -> Sequence[SilenceWatch]:
        return self.session.scalars(select(SilenceWatch)).all()

    def delete(self, watch: SilenceWatch) -> None:
        self.session.delete(watch)

    def ids(self) -> set[str]:
        return set(self.session.scalars(select(SilenceWatch.silence_id)))
