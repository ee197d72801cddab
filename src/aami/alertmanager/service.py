"""Alerts and silences through Alertmanager's API, and the managed notification config."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aami.alertmanager.client import AlertmanagerClient, AlertmanagerError, AlertmanagerUnreachable
from aami.alertmanager.models import NotificationChannel, NotificationRoute, SilenceWatch
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alertmanager.repository import (
    ChannelRepository,
    RouteRepository,
    SilenceWatchRepository,
)
from aami.alertmanager.schemas import (
    AlertRead,
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    Matcher,
    RouteCreate,
    RouteRead,
    RouteUpdate,
    SilenceCreate,
    SilenceRead,
)
from aami.audit import service as audit
from aami.common.ids import new_id
from aami.config import Settings, parse_duration_seconds
from aami.db.locking import lock_for_update
from aami.db.session import session_scope
from aami.errors import Conflict, Invalid, NotFound, Unavailable
from aami.groups.repository import GroupRepository
from aami.targets.repository import TargetRepository

log = logging.getLogger(__name__)


def _unavailable(exc: AlertmanagerError) -> Unavailable:
    return Unavailable(f"{exc}; alerts and silences cannot be read or changed until it answers")


# ---- alerts ----------------------------------------------------------------------------


def _alert(raw: dict[str, Any]) -> AlertRead:
    status = raw.get("status") or {}
    return AlertRead(
        fingerprint=raw.get("fingerprint", ""),
        labels=raw.get("labels") or {},
        annotations=raw.get("annotations") or {},
        starts_at=raw["startsAt"],
        ends_at=raw.get("endsAt"),
        state=status.get("state", "unprocessed"),
        silenced=bool(status.get("silencedBy")),
        inhibited=bool(status.get("inhibitedBy")),
        silenced_by=status.get("silencedBy") or [],
        inhibited_by=status.get("inhibitedBy") or [],
        receivers=[r.get("name", "") for r in raw.get("receivers") or []],
        generator_url=raw.get("generatorURL"),
    )


def _filters(
    *, group: str | None, severity: str | None, target: str | None, session: Session | None
) -> list[str]:
    filters = []
    if group:
        group_id = group
        if session is not None:
            found = GroupRepository(session).get_by_ref(group)
            group_id = found.id if found else group
        filters.append(Matcher(name="group_id", value=group_id).promql())
    if severity:
        filters.append(Matcher(name="severity", value=severity).promql())
    if target:
        hostname = target
        if session is not None:
            found_target = TargetRepository(session).get_by_ref(target)
            hostname = found_target.hostname if found_target else target
        filters.append(Matcher(name="instance", value=hostname).promql())
    return filters


def list_alerts(
    client: AlertmanagerClient,
    *,
    group: str | None = None,
    severity: str | None = None,
    target: str | None = None,
    receiver: str | None = None,
    session: Session | None = None,
) -> list[AlertRead]:
    """Alerts Alertmanager holds (active, silenced and inhibited), newest first."""
    try:
        raw = client.alerts(
            filters=_filters(group=group, severity=severity, target=target, session=session),
            receiver=receiver,
        )
    except AlertmanagerError as exc:
        raise _unavailable(exc) from None
    alerts = [_alert(a) for a in raw]
    return sorted(alerts, key=lambda a: a.starts_at, reverse=True)


def alert_groups(client: AlertmanagerClient) -> list[dict[str, Any]]:
    try:
        groups = client.alert_groups()
    except AlertmanagerError as exc:
        raise _unavailable(exc) from None
    return [
        {
            "labels": g.get("labels") or {},
            "receiver": (g.get("receiver") or {}).get("name"),
            "alerts": [_alert(a).model_dump(mode="json") for a in g.get("alerts") or []],
        }
        for g in groups
    ]


# ---- silences --------------------------------------------------------------------------


def _silence(raw: dict[str, Any], watched: set[str]) -> SilenceRead:
    return SilenceRead(
        id=raw["id"],
        matchers=[
            Matcher(
                name=m["name"],
                value=m["value"],
                is_regex=m.get("isRegex", False),
                is_equal=m.get("isEqual", True),
            )
            for m in raw.get("matchers", [])
        ],
        starts_at=raw["startsAt"],
        ends_at=raw["endsAt"],
        created_by=raw.get("createdBy", ""),
        comment=raw.get("comment", ""),
        state=(raw.get("status") or {}).get("state", ""),
        expire_on_resolve=raw["id"] in watched,
    )


def list_silences(client: AlertmanagerClient, session: Session | None = None) -> list[SilenceRead]:
    try:
        raw = client.silences()
    except AlertmanagerError as exc:
        raise _unavailable(exc) from None
    watched = SilenceWatchRepository(session).ids() if session is not None else set()
    return sorted((_silence(s, watched) for s in raw), key=lambda s: s.ends_at, reverse=True)


def get_silence(client: AlertmanagerClient, session: Session, silence_id: str) -> SilenceRead:
    try:
        raw = client.silence(silence_id)
    except AlertmanagerError as exc:
        raise _unavailable(exc) from None
    if raw is None:
        raise NotFound.of("silence", silence_id)
    return _silence(raw, SilenceWatchRepository(session).ids())


def create_silence(
    session: Session,
    client: AlertmanagerClient,
    settings: Settings,
    *,
    actor: str,
    data: SilenceCreate,
) -> SilenceRead:
    """Create a silence within the guardrails; refuse with the reason otherwise."""
    if not any(m.is_equal and not m.is_regex for m in data.matchers):
        raise Invalid(
            'matchers: a silence needs at least one equality matcher (name="value") '
            "so it cannot mute more than intended"
        )
    now = datetime.now(UTC)
    starts = data.starts_at or now
    if data.ends_at is not None and data.duration is not None:
        raise Invalid("give ends_at or duration, not both")
    if data.duration is not None:
        try:
            ends = starts + timedelta(seconds=parse_duration_seconds(data.duration))
        except ValueError as exc:
            raise Invalid(f"duration: {exc}") from None
    elif data.ends_at is not None:
        ends = data.ends_at
    else:
        raise Invalid("give ends_at or duration")
    if ends <= starts:
        raise Invalid("ends_at must be after starts_at")
    longest = timedelta(seconds=settings.silence_max_duration)
    if ends - starts > longest:
        raise Invalid(
            f"a silence may last at most {longest} (AAMI_SILENCE_MAX_DURATION); "
            f"this one lasts {ends - starts}"
        )
    filters = [m.promql() for m in data.matchers]
    try:
        firing = client.alerts(silenced=False, inhibited=False)
        muted = client.alerts(filters=filters, silenced=False, inhibited=False)
    except AlertmanagerError as exc:
        raise _unavailable(exc) from None
    if len(muted) >= settings.silence_max_share_min_alerts and len(
        muted
    ) > settings.silence_max_share * len(firing):
        raise Invalid(
            f"this silence would mute {len(muted)} of the {len(firing)} firing alerts, more than "
            f"{settings.silence_max_share:.0%} (AAMI_SILENCE_MAX_SHARE); narrow its matchers"
        )
    body = {
        "matchers": [
            {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
            for m in data.matchers
        ],
        "startsAt": starts.isoformat(),
        "endsAt": ends.isoformat(),
        "createdBy": data.created_by,
        "comment": data.comment,
    }
    try:
        silence_id = client.create_silence(body)
    except AlertmanagerUnreachable as exc:
        raise _unavailable(exc) from None
    except AlertmanagerError as exc:
        raise Invalid(str(exc)) from None
    if data.expire_on_resolve:
        SilenceWatchRepository(session).add(
            SilenceWatch(
                silence_id=silence_id,
                matchers=[m.model_dump() for m in data.matchers],
                armed=bool(muted),
            )
        )
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="silence",
        entity_id=silence_id,
        after={**body, "expire_on_resolve": data.expire_on_resolve},
    )
    return SilenceRead(
        id=silence_id,
        matchers=data.matchers,
        starts_at=starts,
        ends_at=ends,
        created_by=data.created_by,
        comment=data.comment,
        state="active" if starts <= now else "pending",
        expire_on_resolve=data.expire_on_resolve,
    )


def _maintenance(
    session: Session,
    client: AlertmanagerClient,
    settings: Settings,
    *,
    actor: str,
    matcher: Matcher,
    hours: float,
    comment: str,
    created_by: str | None = None,
    expire_on_resolve: bool = False,
) -> SilenceRead:
    return create_silence(
        session,
        client,
        settings,
        actor=actor,
        data=SilenceCreate(
            matchers=[matcher],
            duration=f"{int(hours * 3600)}s",
            created_by=created_by or actor,
            comment=comment,
            expire_on_resolve=expire_on_resolve,
        ),
    )


def silence_target(
    session: Session,
    client: AlertmanagerClient,
    settings: Settings,
    *,
    target: str,
    **window: Any,
) -> SilenceRead:
    """Silence every alert of one node (``instance``) for a maintenance window."""
    found = TargetRepository(session).get_by_ref(target)
    if found is None:
        raise NotFound.of("target", target)
    matcher = Matcher(name="instance", value=found.hostname)
    return _maintenance(session, client, settings, matcher=matcher, **window)


def silence_group(
    session: Session,
    client: AlertmanagerClient,
    settings: Settings,
    *,
    group: str,
    **window: Any,
) -> SilenceRead:
    """Silence every alert of one group (``group_id``) for a maintenance window."""
    found = GroupRepository(session).get_by_ref(group)
    if found is None:
        raise NotFound.of("group", group)
    matcher = Matcher(name="group_id", value=found.id)
    return _maintenance(session, client, settings, matcher=matcher, **window)


def expire_silence(
    session: Session, client: AlertmanagerClient, silence_id: str, actor: str = "admin"
) -> None:
    """Expire a silence now."""
    try:
        if client.silence(silence_id) is None:
            raise NotFound.of("silence", silence_id)
        client.expire_silence(silence_id)
    except AlertmanagerError as exc:
        raise _unavailable(exc) from None
    watch = SilenceWatchRepository(session).get(silence_id)
    if watch is not None:
        SilenceWatchRepository(session).delete(watch)
    audit.record(session, actor=actor, action="delete", entity_type="silence", entity_id=silence_id)


class SilenceWatcher:
    """Expires ``expire_on_resolve`` silences once nothing they match is firing."""

    def __init__(
        self, factory: sessionmaker[Session], client: AlertmanagerClient, interval: float
    ) -> None:
        self.factory = factory
        self.client = client
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aami-silence-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except AlertmanagerError as exc:
                log.info("silence watch: %s", exc)
            except Exception:
                log.exception("silence watch failed")

    def check(self) -> list[str]:
        """One pass; returns the silences it expired."""
        expired = []
        with session_scope(self.factory) as session:
            repo = SilenceWatchRepository(session)
            for watch in repo.all():
                silence = self.client.silence(watch.silence_id)
                state = ((silence or {}).get("status") or {}).get("state")
                if silence is None or state == "expired":
                    repo.delete(watch)
                    continue
                filters = [Matcher.model_validate(m).promql() for m in watch.matchers]
                firing = self.client.alerts(filters=filters, silenced=True, inhibited=True)
                if firing:
                    watch.armed = True
                    continue
                if watch.armed:
                    self.client.expire_silence(watch.silence_id)
                    repo.delete(watch)
                    audit.record(
                        session,
                        actor="silence-watch",
                        action="delete",
                        entity_type="silence",
                        entity_id=watch.silence_id,
                        before={"reason": "expire_on_resolve: its alerts resolved"},
                    )
                    expired.append(watch.silence_id)
        return expired


# ---- managed notification config -------------------------------------------------------


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


def status(client: AlertmanagerClient, am: AlertmanagerPublisher) -> dict[str, Any]:
    """Reachability, cluster peers, the running config's origin and the last publish."""
    try:
        raw = client.status()
        reachable = True
    except AlertmanagerError as exc:
        return {
            "url": client.base_url,
            "reachable": False,
            "error": str(exc),
            "managed": am.managed,
        }
    cluster = raw.get("cluster") or {}
    return {
        "url": client.base_url,
        "reachable": reachable,
        "ready": client.ready(),
        "version": (raw.get("versionInfo") or {}).get("version"),
        "uptime": raw.get("uptime"),
        "cluster": {
            "status": cluster.get("status"),
            "peers": [p.get("name") for p in cluster.get("peers") or []],
        },
        "managed": am.managed,
        "config_path": str(am.settings.alertmanager_config_path or ""),
    }
