"""Alerts as Alertmanager holds them, read through its API v2 (nothing is stored here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from aami.alertmanager.client import AlertmanagerClient, AlertmanagerError
from aami.alertmanager.schemas import AlertGroupRead, AlertRead, Matcher
from aami.errors import Unavailable
from aami.groups.repository import GroupRepository
from aami.targets.repository import TargetRepository

__all__ = ["AlertState", "Shown", "alert_groups", "alert_read", "list_alerts", "unavailable"]

AlertState = Literal["active", "silenced", "inhibited"]


@dataclass(frozen=True, slots=True)
class Shown:
    """Which alerts Alertmanager returns (its ``active``, ``silenced`` and ``inhibited``
    filters): an alert both silenced and inhibited is left out when either is off."""

    active: bool = True
    silenced: bool = True
    inhibited: bool = True


def unavailable(exc: AlertmanagerError) -> Unavailable:
    """The error for a request Alertmanager did not answer."""
    return Unavailable(f"{exc}; alerts and silences cannot be read or changed until it answers")


def alert_read(raw: dict[str, Any]) -> AlertRead:
    """One alert of Alertmanager's v2 API as AAMI reads it."""
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
    state: AlertState | None = None,
    session: Session | None = None,
    shown: Shown | None = None,
) -> list[AlertRead]:
    """Alerts Alertmanager holds (active, silenced and inhibited, or those ``shown``, or
    those in ``state``), newest first. With a session, ``group`` may be a group's name and
    ``target`` a target's id."""
    shown = shown or Shown()
    try:
        raw = client.alerts(
            filters=_filters(group=group, severity=severity, target=target, session=session),
            receiver=receiver,
            active=shown.active,
            silenced=shown.silenced,
            inhibited=shown.inhibited,
        )
    except AlertmanagerError as exc:
        raise unavailable(exc) from None
    alerts = [alert_read(a) for a in raw]
    if state == "active":
        alerts = [a for a in alerts if not (a.silenced or a.inhibited)]
    elif state == "silenced":
        alerts = [a for a in alerts if a.silenced]
    elif state == "inhibited":
        alerts = [a for a in alerts if a.inhibited]
    return sorted(alerts, key=lambda a: a.starts_at, reverse=True)


def alert_groups(client: AlertmanagerClient) -> list[AlertGroupRead]:
    """Alertmanager's alert groups, as it routed and grouped them."""
    try:
        groups = client.alert_groups()
    except AlertmanagerError as exc:
        raise unavailable(exc) from None
    return [
        AlertGroupRead(
            labels=g.get("labels") or {},
            receiver=(g.get("receiver") or {}).get("name"),
            alerts=[alert_read(a) for a in g.get("alerts") or []],
        )
        for g in groups
    ]
