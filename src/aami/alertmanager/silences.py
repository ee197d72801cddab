"""Silences through Alertmanager's API v2, within AAMI's guardrails.

A silence needs at least one equality matcher with a value, may last at most
``AAMI_SILENCE_MAX_DURATION``, may not mute more than ``AAMI_SILENCE_MAX_SHARE`` of what
fires, and may not hold a regex that matches every value; a regex is checked by
Alertmanager itself. ``preview_silence`` tells what a silence would mute, and whether it
would be refused, before it is made. ``expire_on_resolve`` records a watch that
``watcher.SilenceWatcher`` acts on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from aami.alertmanager.alerts import alert_read, unavailable
from aami.alertmanager.client import AlertmanagerClient, AlertmanagerError, AlertmanagerUnreachable
from aami.alertmanager.models import SilenceWatch
from aami.alertmanager.repository import SilenceWatchRepository
from aami.alertmanager.schemas import AlertRead, Matcher, SilenceCreate, SilenceRead
from aami.audit import service as audit
from aami.common.durations import format_duration, parse_seconds
from aami.config import Settings
from aami.errors import Invalid, NotFound
from aami.groups.repository import GroupRepository
from aami.targets.repository import TargetRepository

__all__ = [
    "SilencePreview",
    "create_silence",
    "expire_silence",
    "get_silence",
    "list_silences",
    "matcher_problems",
    "matchers_refusal",
    "preview_silence",
    "silence_group",
    "silence_target",
    "silence_window",
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


# A regular expression that matches any value at all: ``.*`` however wrapped (anchors,
# groups, the s flag); Alertmanager anchors every regex, so these match everything.
_ANY_VALUE = re.compile(r"\A\^?(?:\(\?s\))?(?:\((?:\?:)?)*(?:\.\*\??)+\)*\$?\Z")


def _matches_any_value(matcher: Matcher) -> bool:
    return matcher.is_regex and matcher.is_equal and bool(_ANY_VALUE.match(matcher.value))


def _static_problem(matcher: Matcher) -> str | None:
    if _matches_any_value(matcher):
        return (
            f"{matcher.promql()} matches every value, so it narrows nothing: "
            "remove it or give a narrower pattern"
        )
    return None


def _am_reason(exc: AlertmanagerError, value: str) -> str:
    """Alertmanager's own words from a refusal (after the method, path and status), with
    the regex as typed rather than as Alertmanager anchors it."""
    body = str(exc).partition("): ")[2].strip()
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    reason = decoded if isinstance(decoded, str) else body or str(exc)
    return reason.replace(f"`^(?:{value})$`", f"`{value}`")


def matcher_problems(client: AlertmanagerClient | None, matchers: list[Matcher]) -> dict[int, str]:
    """What is wrong with each matcher, by its position; empty when nothing is.

    A regex is checked by Alertmanager itself (as a filter of /api/v2/alerts), so what it
    accepts is exactly what it will match with; without a client only the local checks run.
    """
    problems: dict[int, str] = {}
    for index, matcher in enumerate(matchers):
        problem = _static_problem(matcher)
        if problem is None and matcher.is_regex and client is not None:
            try:
                client.alerts(filters=[matcher.promql()])
            except AlertmanagerUnreachable as exc:
                raise unavailable(exc) from None
            except AlertmanagerError as exc:
                problem = (
                    f"{matcher.value!r} is not a regular expression Alertmanager accepts: "
                    f"{_am_reason(exc, matcher.value)}"
                )
        if problem is not None:
            problems[index] = problem
    return problems


def matchers_refusal(matchers: list[Matcher]) -> str | None:
    """Why these matchers together may not make a silence, or None."""
    if not any(m.is_equal and not m.is_regex and m.value for m in matchers):
        return (
            "matchers: a silence needs at least one equality matcher with a value "
            '(name="value") '
            "so it cannot mute more than intended"
        )
    return None


def _check_matchers(data: SilenceCreate, client: AlertmanagerClient | None = None) -> None:
    refusal = matchers_refusal(data.matchers)
    if refusal is not None:
        raise Invalid(refusal)
    problems = matcher_problems(client, data.matchers)
    if problems:
        raise Invalid(
            "; ".join(f"matchers[{index}]: {problem}" for index, problem in problems.items())
        )


def silence_window(
    settings: Settings,
    now: datetime,
    *,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    duration: str | None = None,
) -> tuple[datetime, datetime]:
    """When the silence starts and ends; refuse a window that is empty or too long."""
    starts = starts_at or now
    if ends_at is not None and duration is not None:
        raise Invalid("give ends_at or duration, not both")
    if duration is not None:
        try:
            ends = starts + timedelta(seconds=parse_seconds(duration, plain_seconds=True))
        except ValueError as exc:
            raise Invalid(f"duration: {exc}") from None
    elif ends_at is not None:
        ends = ends_at
    else:
        raise Invalid("give ends_at or duration")
    if ends <= starts:
        raise Invalid("ends_at must be after starts_at")
    longest = timedelta(seconds=settings.silence_max_duration)
    if ends - starts > longest:
        raise Invalid(
            f"a silence may last at most {format_duration(longest)} "
            f"(AAMI_SILENCE_MAX_DURATION); this one lasts {format_duration(ends - starts)}"
        )
    return starts, ends


def _suppressed(alert: dict[str, Any]) -> bool:
    return (alert.get("status") or {}).get("state") == "suppressed"


def share_refusal(
    matched: list[dict[str, Any]], firing: list[dict[str, Any]], settings: Settings
) -> str | None:
    """Why a silence matching ``matched`` of the ``firing`` alerts is refused, or None.

    Two shares are measured, and either refuses: of every firing alert (silenced or
    inhibited ones too, so a silence's reach is not hidden by the silences it overlaps),
    and of the alerts not yet suppressed (so muting the rest in steps is refused too).
    """
    loud = [a for a in firing if not _suppressed(a)]
    newly = [a for a in matched if not _suppressed(a)]
    share, least = settings.silence_max_share, settings.silence_max_share_min_alerts
    for muted, among, what in (
        (matched, firing, "firing alerts"),
        (newly, loud, "alerts not yet silenced"),
    ):
        if len(muted) >= least and len(muted) > share * len(among):
            return (
                f"this silence would mute {len(muted)} of the {len(among)} {what}, more than "
                f"{share:.0%} (AAMI_SILENCE_MAX_SHARE); narrow its matchers"
            )
    return None


def _matched_and_firing(
    client: AlertmanagerClient, matchers: list[Matcher]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The alerts the matchers select, by Alertmanager's own matching, and all alerts."""
    try:
        firing = client.alerts()
        matched = client.alerts(filters=[m.promql() for m in matchers])
    except AlertmanagerError as exc:
        raise unavailable(exc) from None
    return matched, firing


def _check_share(client: AlertmanagerClient, settings: Settings, data: SilenceCreate) -> bool:
    """Refuse a silence that would mute most of what fires; tell whether it matches any."""
    matched, firing = _matched_and_firing(client, data.matchers)
    refusal = share_refusal(matched, firing, settings)
    if refusal is not None:
        raise Invalid(refusal)
    return bool(matched)


@dataclass(frozen=True)
class SilencePreview:
    """What a silence with these matchers would mute now, and whether it would be made.

    ``problems`` are by matcher position; ``refusal`` is a guardrail's reason (too few
    equality matchers, too large a share of what fires). ``alerts`` are matched by
    Alertmanager (a filter of /api/v2/alerts), as the silence itself would match them.
    """

    alerts: list[AlertRead] = field(default_factory=list)
    firing: int = 0
    problems: dict[int, str] = field(default_factory=dict)
    refusal: str | None = None

    @property
    def allowed(self) -> bool:
        return not self.problems and self.refusal is None


def preview_silence(
    client: AlertmanagerClient, settings: Settings, matchers: list[Matcher]
) -> SilencePreview:
    """The alerts a silence would mute and the guardrails' verdict, creating nothing."""
    problems = matcher_problems(client, matchers)
    if problems:
        return SilencePreview(problems=problems, refusal=matchers_refusal(matchers))
    matched, firing = _matched_and_firing(client, matchers)
    shown = sorted(
        (alert_read(a) for a in matched),
        key=lambda a: (a.labels.get("alertname", ""), sorted(a.labels.items())),
    )
    return SilencePreview(
        alerts=shown,
        firing=len(firing),
        refusal=matchers_refusal(matchers) or share_refusal(matched, firing, settings),
    )


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
    refusal = matchers_refusal(data.matchers)
    if refusal is not None:
        raise Invalid(refusal)
    now = datetime.now(UTC)
    starts, ends = silence_window(
        settings, now, starts_at=data.starts_at, ends_at=data.ends_at, duration=data.duration
    )
    _check_matchers(data, client)
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
