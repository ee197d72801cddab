"""Notification channels (receivers) and routes: the part of the Alertmanager config
AAMI manages. Every change is checked by rendering the config (amtool when it is there)
before it is accepted; the publisher then writes it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from aami.alertmanager.models import NotificationChannel, NotificationRoute
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alertmanager.repository import ChannelRepository, RouteRepository
from aami.alertmanager.routing import Match, route_test
from aami.alertmanager.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    MatchedRoute,
    Matcher,
    RouteCreate,
    RouteRead,
    RouteTestRequest,
    RouteTestResult,
    RouteUpdate,
)
from aami.audit import service as audit
from aami.common.ids import new_id
from aami.db.locking import lock_for_update
from aami.errors import Conflict, Invalid, NotFound

__all__ = [
    "create_channel",
    "create_route",
    "delete_channel",
    "delete_route",
    "explain_route",
    "get_channel_or_raise",
    "get_route_or_raise",
    "list_channels",
    "list_routes",
    "read_channel",
    "read_route",
    "update_channel",
    "update_route",
]


def read_channel(channel: NotificationChannel) -> ChannelRead:
    return ChannelRead(
        id=channel.id,
        name=channel.name,
        type=channel.type,
        settings=channel.settings,
        has_secret=bool(channel.secret),
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def read_route(route: NotificationRoute) -> RouteRead:
    return RouteRead(
        id=route.id,
        name=route.name,
        matchers=[Matcher.model_validate(m) for m in route.matchers],
        receiver=route.receiver.name,
        group_by=route.group_by,
        group_wait=route.group_wait,
        group_interval=route.group_interval,
        repeat_interval=route.repeat_interval,
        continue_=route.continue_,
        position=route.position,
        created_at=route.created_at,
        updated_at=route.updated_at,
    )


def create_channel(
    session: Session, am: AlertmanagerPublisher, *, actor: str, data: ChannelCreate
) -> NotificationChannel:
    repo = ChannelRepository(session)
    if repo.name_taken(data.name):
        raise Conflict(f"a notification channel named {data.name!r} already exists")
    channel = NotificationChannel(
        id=data.id or new_id("ch"),
        name=data.name,
        type=data.type,
        settings=data.settings,
        secret=data.secret,
    )
    repo.add(channel)
    am.validate(session)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="notification_channel",
        entity_id=channel.id,
        after={**read_channel(channel).model_dump(mode="json"), "secret": data.secret},
    )
    return channel


def update_channel(
    session: Session,
    am: AlertmanagerPublisher,
    *,
    actor: str,
    channel: NotificationChannel,
    data: ChannelUpdate,
) -> NotificationChannel:
    lock_for_update(session, channel)
    before = read_channel(channel).model_dump(mode="json")
    for key, value in data.changes().items():
        setattr(channel, key, value)
    session.flush()
    am.validate(session)
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type="notification_channel",
        entity_id=channel.id,
        before=before,
        after=read_channel(channel).model_dump(mode="json"),
    )
    return channel


def delete_channel(
    session: Session, am: AlertmanagerPublisher, *, actor: str, channel: NotificationChannel
) -> None:
    lock_for_update(session, channel)
    routes = RouteRepository(session).using(channel.id)
    if routes:
        raise Conflict(
            f"channel {channel.name!r} is the receiver of route(s) "
            f"{', '.join(r.name for r in routes)}; delete them first"
        )
    before = read_channel(channel).model_dump(mode="json")
    ChannelRepository(session).delete(channel)
    am.validate(session)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="notification_channel",
        entity_id=channel.id,
        before=before,
    )


def get_channel_or_raise(session: Session, ref: str) -> NotificationChannel:
    channel = ChannelRepository(session).get_by_ref(ref)
    if channel is None:
        raise NotFound.of("notification channel", ref)
    return channel


def list_channels(session: Session) -> Sequence[NotificationChannel]:
    return ChannelRepository(session).all()


def _receiver(session: Session, ref: str) -> NotificationChannel:
    channel = ChannelRepository(session).get_by_ref(ref)
    if channel is None:
        raise Invalid(f"receiver: unknown notification channel {ref!r}")
    return channel


def create_route(
    session: Session, am: AlertmanagerPublisher, *, actor: str, data: RouteCreate
) -> NotificationRoute:
    repo = RouteRepository(session)
    if repo.name_taken(data.name):
        raise Conflict(f"a notification route named {data.name!r} already exists")
    receiver = _receiver(session, data.receiver)
    route = NotificationRoute(
        id=data.id or new_id("rt"),
        name=data.name,
        matchers=[m.model_dump() for m in data.matchers],
        receiver_id=receiver.id,
        receiver=receiver,
        group_by=data.group_by,
        group_wait=data.group_wait,
        group_interval=data.group_interval,
        repeat_interval=data.repeat_interval,
        continue_=data.continue_,
        position=data.position,
    )
    repo.add(route)
    am.validate(session)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="notification_route",
        entity_id=route.id,
        after=read_route(route).model_dump(mode="json"),
    )
    return route


def update_route(
    session: Session,
    am: AlertmanagerPublisher,
    *,
    actor: str,
    route: NotificationRoute,
    data: RouteUpdate,
) -> NotificationRoute:
    lock_for_update(session, route)
    before = read_route(route).model_dump(mode="json")
    changes = data.changes()
    if "receiver" in changes:
        receiver = _receiver(session, changes.pop("receiver"))
        route.receiver, route.receiver_id = receiver, receiver.id
    if "matchers" in changes:
        changes["matchers"] = [Matcher.model_validate(m).model_dump() for m in changes["matchers"]]
    for key, value in changes.items():
        setattr(route, key, value)
    session.flush()
    am.validate(session)
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type="notification_route",
        entity_id=route.id,
        before=before,
        after=read_route(route).model_dump(mode="json"),
    )
    return route


def delete_route(
    session: Session, am: AlertmanagerPublisher, *, actor: str, route: NotificationRoute
) -> None:
    lock_for_update(session, route)
    before = read_route(route).model_dump(mode="json")
    RouteRepository(session).delete(route)
    am.validate(session)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="notification_route",
        entity_id=route.id,
        before=before,
    )


def get_route_or_raise(session: Session, route_id: str) -> NotificationRoute:
    route = RouteRepository(session).get(route_id)
    if route is None:
        raise NotFound.of("notification route", route_id)
    return route


def list_routes(session: Session) -> Sequence[NotificationRoute]:
    return RouteRepository(session).all()


def _managed_names(session: Session, matches: Sequence[Match]) -> dict[int, str]:
    """Which of the root's matched children are AAMI's routes, by name.

    The rendered config puts the managed routes first, in (position, name) order; the
    matched children come in tree order, so each is the next managed route with its
    matchers, or, once none is, a route of the shipped config.
    """
    managed = sorted(RouteRepository(session).all(), key=lambda r: (r.position, r.name))
    texts = [
        "{" + ",".join(Matcher.model_validate(m).promql() for m in r.matchers) + "}"
        for r in managed
    ]
    branches = sorted({(m.branch, m.path[1]) for m in matches if m.branch is not None})
    names: dict[int, str] = {}
    start = 0
    for branch, text in branches:
        found = next((i for i in range(start, len(texts)) if texts[i] == text), None)
        if found is None:
            break
        names[branch] = managed[found].name
        start = found + 1
    return names


def explain_route(
    session: Session, am: AlertmanagerPublisher, data: RouteTestRequest
) -> RouteTestResult:
    """Where an alert with these labels goes under the config AAMI renders now: Alertmanager's
    own routing (``amtool config routes test``), with the path to each matched route. The
    alert-history receiver, which gets every alert, is left out."""
    rendered = am.render(session, with_history=False)
    receivers, matches = route_test(rendered.text, data.labels, timeout=am.tool_timeout)
    names = _managed_names(session, matches)
    return RouteTestResult(
        labels=data.labels,
        receivers=receivers,
        routes=[
            MatchedRoute(
                receiver=m.receiver,
                path=list(m.path),
                managed_route=names.get(m.branch) if m.branch is not None else None,
            )
            for m in matches
        ],
    )
