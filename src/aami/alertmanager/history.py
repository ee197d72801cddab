"""Alert history: the transitions Alertmanager's webhook reports, stored once each, and
the timeline and flap counts per alert, per target and per group.

An *episode* of an alert is its fingerprint and ``startsAt``; it has at most two
transitions, ``firing`` (at ``startsAt``) and ``resolved`` (at ``endsAt``). Alertmanager
sends the same firing alert again every ``repeat_interval`` (and each peer of a cluster
may send it): the same episode and status is stored once.

A *flap* is an alert firing again after it resolved: an episode that starts within the
window while an earlier episode of the same fingerprint also falls within it (its start or
its end). An episode that Alertmanager never reported as resolved (a re-fire within one
``group_interval``) still ended before the next one started, so it counts too.

Retention: transitions received more than ``AAMI_ALERT_HISTORY_DAYS`` ago are deleted on
each write, and past ``AAMI_ALERT_HISTORY_MAX_ROWS`` the oldest go (down to 90 % of it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from aami.alertmanager.repository import AlertHistoryRepository
from aami.alertmanager.schemas import (
    AlertFlapsRead,
    AlertHistorySummary,
    AlertTransitionRead,
    HistoryScopeRead,
    WebhookAlert,
    WebhookPayload,
    WebhookResult,
)
from aami.common.schemas import Page, PageParams
from aami.config import Settings
from aami.db.base import utcnow
from aami.groups.repository import GroupRepository
from aami.targets.repository import TargetRepository

__all__ = [
    "Count",
    "count_flaps",
    "record",
    "resolve_scope",
    "summary",
    "timeline_page",
]


def _cut(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None else None


def _row(alert: WebhookAlert, *, receiver: str, now: datetime) -> dict[str, Any]:
    labels = alert.labels
    at = alert.starts_at if alert.status == "firing" else (alert.ends_at or now)
    url = alert.generator_url or None
    return {
        "fingerprint": alert.fingerprint,
        "alertname": (labels.get("alertname") or "")[:255],
        "status": alert.status,
        "labels": dict(labels),
        "summary": (alert.annotations.get("summary") or alert.annotations.get("description") or "")[
            :1000
        ],
        "group_id": _cut(labels.get("group_id"), 255),
        "instance": _cut(labels.get("instance"), 255),
        "severity": _cut(labels.get("severity"), 64),
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at if alert.status == "resolved" else None,
        "at": at,
        "receiver": receiver,
        "generator_url": url if url is not None and len(url) <= 2000 else None,
        "received_at": now,
    }


def record(
    session: Session, payload: WebhookPayload, settings: Settings, *, now: datetime | None = None
) -> WebhookResult:
    """Store each alert's transition once (a repeated notification adds nothing), then
    prune what retention no longer keeps."""
    now = now or utcnow()
    repository = AlertHistoryRepository(session)
    recorded = 0
    for alert in payload.alerts:
        recorded += repository.insert_new(_row(alert, receiver=payload.receiver, now=now))
    repository.prune(
        received_before=now - timedelta(days=settings.alert_history_days),
        keep=settings.alert_history_max_rows,
    )
    return WebhookResult(
        received=len(payload.alerts),
        recorded=recorded,
        duplicates=len(payload.alerts) - recorded,
    )


def resolve_scope(
    session: Session, *, target: str | None, group: str | None
) -> tuple[str | None, str | None]:
    """(instance, group_id) for a target given by id or hostname and a group by id or name;
    an unknown one is taken as the label value itself (history outlives targets)."""
    instance = group_id = None
    if target:
        found = TargetRepository(session).get_by_ref(target)
        instance = found.hostname if found else target
    if group:
        found_group = GroupRepository(session).get_by_ref(group)
        group_id = found_group.id if found_group else group
    return instance, group_id


def timeline_page(
    session: Session,
    *,
    target: str | None = None,
    group: str | None = None,
    alertname: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    page: PageParams,
) -> Page[AlertTransitionRead]:
    """Transitions, newest first."""
    instance, group_id = resolve_scope(session, target=target, group=group)
    rows, total = AlertHistoryRepository(session).timeline(
        instance=instance,
        group_id=group_id,
        alertname=alertname or None,
        status=status,
        since=since,
        offset=page.offset,
        limit=page.limit,
    )
    return Page.of(
        [AlertTransitionRead.model_validate(r) for r in rows],
        page=page.page,
        limit=page.limit,
        total=total,
    )


@dataclass
class Count:
    """Fired, resolved and flaps of one alert, target or group."""

    fired: int = 0
    resolved: int = 0
    flaps: int = 0
    fingerprints: set[str] = field(default_factory=set)

    def add(self, other: Count, fingerprint: str) -> None:
        self.fired += other.fired
        self.resolved += other.resolved
        self.flaps += other.flaps
        self.fingerprints.add(fingerprint)


def count_flaps(transitions: Iterable[tuple[datetime, str, datetime]], since: datetime) -> Count:
    """Count one fingerprint's transitions ``(starts_at, status, at)`` within the window."""
    episodes: dict[datetime, set[str]] = defaultdict(set)
    for starts_at, status, at in transitions:
        if at >= since:
            episodes[starts_at].add(status)
    count = Count()
    for index, starts_at in enumerate(sorted(episodes)):
        statuses = episodes[starts_at]
        fired = "firing" in statuses and starts_at >= since
        count.fired += fired
        count.resolved += "resolved" in statuses
        count.flaps += fired and index > 0
    return count


def _scopes(counts: dict[str, Count]) -> list[HistoryScopeRead]:
    return sorted(
        (
            HistoryScopeRead(
                name=name,
                alerts=len(c.fingerprints),
                fired=c.fired,
                resolved=c.resolved,
                flaps=c.flaps,
            )
            for name, c in counts.items()
        ),
        key=lambda s: (-s.flaps, -s.fired, s.name),
    )


def _alerts(rows: Sequence[Any], since: datetime) -> list[tuple[AlertFlapsRead, Count]]:
    by_fingerprint: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_fingerprint[row.fingerprint].append(row)
    found = []
    for fingerprint, transitions in by_fingerprint.items():
        count = count_flaps(((r.starts_at, r.status, r.at) for r in transitions), since)
        last = transitions[-1]
        found.append(
            (
                AlertFlapsRead(
                    fingerprint=fingerprint,
                    alertname=last.alertname,
                    instance=last.instance,
                    group_id=last.group_id,
                    severity=last.severity,
                    fired=count.fired,
                    resolved=count.resolved,
                    flaps=count.flaps,
                    last_status=last.status,
                    last_change=last.at,
                ),
                count,
            )
        )
    return found


def summary(
    session: Session,
    settings: Settings,
    *,
    target: str | None = None,
    group: str | None = None,
    alertname: str | None = None,
    window: float | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> AlertHistorySummary:
    """Fired, resolved and flaps over the window (``AAMI_ALERT_HISTORY_FLAP_WINDOW`` by
    default) per alert (most flaps first), per target and per group."""
    seconds = window or settings.alert_history_flap_window
    since = (now or utcnow()) - timedelta(seconds=seconds)
    instance, group_id = resolve_scope(session, target=target, group=group)
    rows = AlertHistoryRepository(session).window(
        instance=instance, group_id=group_id, alertname=alertname or None, since=since
    )
    alerts = _alerts(rows, since)
    targets: dict[str, Count] = defaultdict(Count)
    groups: dict[str, Count] = defaultdict(Count)
    for alert, count in alerts:
        if alert.instance:
            targets[alert.instance].add(count, alert.fingerprint)
        if alert.group_id:
            groups[alert.group_id].add(count, alert.fingerprint)
    ordered = sorted(alerts, key=lambda a: (-a[0].flaps, -a[0].last_change.timestamp()))
    return AlertHistorySummary(
        since=since,
        window_seconds=seconds,
        alerts=[a for a, _ in ordered[:limit]],
        targets=_scopes(targets),
        groups=_scopes(groups),
    )
