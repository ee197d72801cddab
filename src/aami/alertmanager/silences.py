"""Silences through Alertmanager's API v2, within AAMI's guardrails.

A silence needs at least one equality matcher, may last at most
``AAMI_SILENCE_MAX_DURATION`` and may not mute more than ``AAMI_SILENCE_MAX_SHARE`` of
what fires. ``expire_on_resolve`` records a watch that ``watcher.SilenceWatcher`` acts on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from aami.alertmanager.alerts import unavailable
from aami.alertmanager.client import AlertmanagerClient, AlertmanagerError, AlertmanagerUnreachable
from aami.alertmanager.models import SilenceWatch
from aami.alertmanager.repository import SilenceWatchRepository
from aami.alertmanager.schemas import Matcher, SilenceCreate, SilenceRead
from aami.audit import service as audit
from aami.common.durations import parse_seconds
from aami.config import Settings
from aami.errors import Invalid, NotFound
from aami.groups.repository import GroupRepository
from aami.targets.repository import TargetRepository

__all__ = [
    "create_silence",
    "expire_silence",
    "get_silence",
    "list_silences",
    "silence_group",
    "silence_target",
]


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
    """Every silence Alertmanager has, the latest to end first."""
    try:
        raw = client.silences()
    except AlertmanagerError as exc:
        raise unavailable(exc) from None
    watched = SilenceWatchRepository(session).ids() if session is not None else set()
    return sorted((_silence(s, watched) for s in raw), key=lambda s: s.ends_at, reverse=True)


def get_silence(client: AlertmanagerClient, session: Session, silence_id: str) -> SilenceRead:
    try:
        raw = client.silence(silence_id)
    except AlertmanagerError as exc:
        raise unavailable(exc) from None
    if raw is None:
        raise NotFound.of("silence", silence_id)
    return _silence(raw, SilenceWatchRepository(session).ids())


# ---- guardrails ------------------------------------------------------------------------


def _check_matchers(data: SilenceCreate) -> None:
    if not any(m.is_equal and not m.is_regex for m in data.matchers):
        raise Invalid(
            'matchers: a silence needs at least one equality matcher (name="value") '
            "so it cannot mute more than intended"
        )


def _window(data: SilenceCreate, settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """When the silence starts and ends; refuse a window that is empty or too long."""
    starts = data.starts_at or now
    if data.ends_at is not None and data.duration is not None:
        raise Invalid("give ends_at or duration, not both")
    if data.duration is not None:
        try:
            ends = starts + timedelta(seconds=parse_seconds(data.duration, plain_seconds=True))
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
    return starts, ends


def _suppressed(alert: dict[str, Any]) -> bool:
    return (alert.get("status") or {}).get("state") == "suppressed"


def _check_share(client: AlertmanagerClient, settings: Settings, data: SilenceCreate) -> bool:
    """Refuse a silence that would mute most of what fires; tell whether it matches any.

    Two shares are measured, and either refuses: of every firing alert (silenced or
    inhibited ones too, so a silence's reach is not hidden by the silences it overlaps),
    and of the alerts not yet suppressed (so muting the rest in steps is refused too).
    """
    filters = [m.promql() for m in data.matchers]
    try:
        firing = client.alerts()
        matched = client.alerts(filters=filters)
    except AlertmanagerError as exc:
        raise unavailable(exc) from None
    loud = [a for a in firing if not _suppressed(a)]
    newly = [a for a in matched if not _suppressed(a)]
    share, least = settings.silence_max_share, settings.silence_max_share_min_alerts
    for muted, among, what in (
        (matched, firing, "firing alerts"),
        (newly, loud, "alerts not yet silenced"),
    ):
        if len(muted) >= least and len(muted) > share * len(among):
            raise Invalid(
                f"this silence would mute {len(muted)} of the {len(among)} {what}, more than "
                f"{share:.0%} (AAMI_SILENCE_MAX_SHARE); narrow its matchers"
            )
    return bool(matched)


# ---- changes ---------------------------------------------------------------------------


def create_silence(
    session: Session,
    client: AlertmanagerClient,
    settings: Settings,
    *,
    actor: str,
    data: SilenceCreate,
) -> SilenceRead:
    """Create a silence within the guardrails; refuse with the reason otherwise."""
    _check_matchers(data)
    now = datetime.now(UTC)
    starts, ends = _window(data, settings, now)
    mutes_now = _check_share(client, settings, data)
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
        raise unavailable(exc) from None
    except AlertmanagerError as exc:
        raise Invalid(str(exc)) from None
    if data.expire_on_resolve:
        SilenceWatchRepository(session).add(
            SilenceWatch(
                silence_id=silence_id,
                matchers=[m.model_dump() for m in data.matchers],
                armed=mutes_now,
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
    matcher: Matcher,
    actor: str,
    hours: float,
    comment: str,
    created_by: str | None,
    expire_on_resolve: bool,
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
    actor: str,
    hours: float,
    comment: str,
    created_by: str | None = None,
    expire_on_resolve: bool = False,
) -> SilenceRead:
    """Silence every alert of one node (``instance``) for a maintenance window."""
    found = TargetRepository(session).get_by_ref(target)
    if found is None:
        raise NotFound.of("target", target)
    return _maintenance(
        session,
        client,
        settings,
        matcher=Matcher(name="instance", value=found.hostname),
        actor=actor,
        hours=hours,
        comment=comment,
        created_by=created_by,
        expire_on_resolve=expire_on_resolve,
    )


def silence_group(
    session: Session,
    client: AlertmanagerClient,
    settings: Settings,
    *,
    group: str,
    actor: str,
    hours: float,
    comment: str,
    created_by: str | None = None,
    expire_on_resolve: bool = False,
) -> SilenceRead:
    """Silence every alert of one group (``group_id``) for a maintenance window."""
    found = GroupRepository(session).get_by_ref(group)
    if found is None:
        raise NotFound.of("group", group)
    return _maintenance(
        session,
        client,
        settings,
        matcher=Matcher(name="group_id", value=found.id),
        actor=actor,
        hours=hours,
        comment=comment,
        created_by=created_by,
        expire_on_resolve=expire_on_resolve,
    )


def expire_silence(
    session: Session, client: AlertmanagerClient, silence_id: str, actor: str = "admin"
) -> None:
    """Expire a silence now."""
    try:
        if client.silence(silence_id) is None:
            raise NotFound.of("silence", silence_id)
        client.expire_silence(silence_id)
    except AlertmanagerError as exc:
        raise unavailable(exc) from None
    repo = SilenceWatchRepository(session)
    watch = repo.get(silence_id)
    if watch is not None:
        repo.delete(watch)
    audit.record(session, actor=actor, action="delete", entity_type="silence", entity_id=silence_id)
