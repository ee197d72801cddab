"""Alerts Alertmanager holds: filtered (group, severity, target; active, silenced,
inhibited through Alertmanager's own filters), grouped by alert name, group or severity,
each with all its labels and receivers and linked to its rule, its graph and its history.
The alert history (what Alertmanager's webhook reported) has its own page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from aami.alertmanager import history
from aami.alertmanager.alerts import Shown
from aami.alertmanager.schemas import AlertRead, Matcher
from aami.alerts import service as alert_rules
from aami.common.schemas import PageParams
from aami.groups import service as groups
from aami.web.alertmanager import connect
from aami.web.common import DbDep, LoginDep, UiRoute, page
from aami.web.paging import PAGE_SIZE, Pager, page_number, search_text
from aami.web.prometheus import external_link

router = APIRouter(route_class=UiRoute)

SEVERITIES = ("critical", "warning", "info")
SILENCE_KINDS = ("target", "group")  # what a row of the alerts page can silence
GROUPINGS = {"": "nothing", "alertname": "alert name", "group": "group", "severity": "severity"}
STATES = ("active", "silenced", "inhibited")
REFRESH_SECONDS = 30


@dataclass
class Row:
    """One alert as a row: the alert, its AAMI rule and its graph link."""

    alert: AlertRead
    rule_id: str | None
    graph: str | None

    @property
    def silence_query(self) -> str:
        """The silence editor's query string, prefilled with matchers that pick this
        alert out: its name and its target (else its group)."""
        labels = self.alert.labels
        names = ["alertname", "instance" if labels.get("instance") else "group_id"]
        matchers = [
            ("matcher", Matcher(name=name, value=labels[name]).promql())
            for name in names
            if labels.get(name)
        ]
        return urlencode(matchers)


@dataclass
class Section:
    """Alerts that share the grouping's value (one section when nothing groups them)."""

    key: str
    label: str
    rows: list[Row] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        found = {"firing": 0, "silenced": 0, "inhibited": 0}
        for row in self.rows:
            alert = row.alert
            state = "silenced" if alert.silenced else "inhibited" if alert.inhibited else "firing"
            found[state] += 1
        return found


def shown_states(filters: dict[str, str]) -> Shown:
    states = set(filters.get("show", ",".join(STATES)).split(","))
    return Shown(
        active="active" in states, silenced="silenced" in states, inhibited="inhibited" in states
    )


def _key(alert: AlertRead, by: str) -> tuple[str, str]:
    """(sort key, heading) of the section an alert goes to."""
    labels = alert.labels
    if by == "alertname":
        name = labels.get("alertname", "")
        return name, name or "(no alert name)"
    if by == "group":
        name = labels.get("group") or labels.get("group_id") or ""
        return name, name or "(no group)"
    if by == "severity":
        severity = labels.get("severity", "")
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
        return f"{rank}{severity}", severity or "(no severity)"
    return "", "All alerts"


def sections(rows: list[Row], by: str) -> list[Section]:
    """The rows in sections by ``by`` (alertname, group, severity or nothing), in order."""
    found: dict[str, Section] = {}
    for row in rows:
        key, label = _key(row.alert, by)
        found.setdefault(key, Section(key, label)).rows.append(row)
    return [found[key] for key in sorted(found)]


def alerts_page(
    request: Request,
    session: Session,
    *,
    filters: dict[str, str],
    error: str = "",
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    am = connect(request)
    held, problem = am.alerts(
        session,
        group=filters.get("group") or None,
        severity=filters.get("severity") or None,
        target=filters.get("target") or None,
        shown=shown_states(filters),
    )
    shown = sorted(held, key=_order)
    rule_ids = _rule_ids(session, shown)
    rows = [
        Row(alert, rule_id, external_link(request, alert.generator_url))
        for alert, rule_id in zip(shown, rule_ids, strict=True)
    ]
    by = filters.get("by", "")
    all_groups, _ = groups.list_groups(session, limit=1000)
    show = shown_states(filters)
    return page(
        request,
        "alerts.html",
        status_code=status_code,
        nav="alerts",
        title="Alerts",
        alerts=shown,
        sections=sections(rows, by),
        problem=problem,
        filters={**{"by": "", "show": ",".join(STATES)}, **filters},
        showing={"active": show.active, "silenced": show.silenced, "inhibited": show.inhibited},
        groupings=GROUPINGS,
        states=STATES,
        refresh_seconds=int(filters.get("refresh") or REFRESH_SECONDS),
        severities=SEVERITIES,
        groups=all_groups,
        error=error,
        values=values or {},
    )


def _rule_ids(session: Session, shown: list[AlertRead]) -> list[str | None]:
    """The AAMI rule behind each alert, found by its ``aami_template`` and group labels
    (None for an alert no AAMI rule made); one lookup per distinct rule."""
    found: dict[tuple[str, str | None], str | None] = {}
    ids: list[str | None] = []
    for alert in shown:
        template = alert.labels.get("aami_template")
        if not template:
            ids.append(None)
            continue
        group = alert.labels.get("group_id") if alert.labels.get("aami_scope") == "group" else None
        key = (template, group)
        if key not in found:
            rows, _ = alert_rules.list_rules(
                session, template=template, group=group, scope=None if group else "global", limit=1
            )
            found[key] = rows[0].id if rows else None
        ids.append(found[key])
    return ids


def _order(alert: AlertRead) -> tuple[int, str, str]:
    severity = alert.labels.get("severity", "")
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
    return rank, alert.labels.get("alertname", ""), alert.labels.get("instance", "")


def alert_filters(
    group: str,
    severity: str,
    target: str,
    *,
    by: str = "",
    show: list[str] | None = None,
) -> dict[str, str]:
    """The page's filters, cleaned: unknown values fall back to showing everything."""
    states = [s for s in STATES if show is None or s in show]
    return {
        "group": search_text(group),
        "severity": severity if severity in SEVERITIES else "",
        "target": search_text(target),
        "by": by if by in GROUPINGS else "",
        "show": ",".join(states),
    }


@router.get("/alerts")
def alert_list(
    request: Request,
    _: LoginDep,
    session: DbDep,
    group: str = "",
    severity: str = "",
    target: str = "",
    by: str = "",
    show: Annotated[list[str] | None, Query()] = None,
    filtered: str = "",
    refresh: int = REFRESH_SECONDS,
) -> Response:
    """Alerts Alertmanager holds (firing, silenced, inhibited), filtered and grouped.

    The state boxes are sent only when ticked: a submitted form (``filtered``) with none
    ticked shows nothing; a first visit shows every state."""
    states = (show or []) if filtered else show
    filters = alert_filters(group, severity, target, by=by, show=states)
    filters["refresh"] = str(min(max(refresh, 5), 3600))
    return alerts_page(request, session, filters=filters)


# ---- alert history ---------------------------------------------------------------------


@router.get("/alert-history")
def alert_history(
    request: Request,
    _: LoginDep,
    session: DbDep,
    target: str = "",
    group: str = "",
    alertname: str = "",
    status: str = "",
) -> Response:
    """What Alertmanager's webhook reported: flap counts over the window, and the
    timeline of transitions (newest first), for a target, a group or an alert name."""
    filters = {
        "target": search_text(target),
        "group": search_text(group),
        "alertname": search_text(alertname),
        "status": status if status in ("firing", "resolved") else "",
    }
    settings = connect(request).settings
    summary = history.summary(
        session,
        settings,
        target=filters["target"] or None,
        group=filters["group"] or None,
        alertname=filters["alertname"] or None,
        limit=50,
    )
    timeline = history.timeline_page(
        session,
        target=filters["target"] or None,
        group=filters["group"] or None,
        alertname=filters["alertname"] or None,
        status=filters["status"] or None,
        page=PageParams(page=page_number(request), limit=PAGE_SIZE),
    )
    all_groups, _count = groups.list_groups(session, limit=1000)
    pager = Pager(request, timeline.pagination.page, timeline.pagination.total, PAGE_SIZE)
    return page(
        request,
        "alert_history.html",
        nav="alerts",
        title="Alert history",
        filters=filters,
        summary=summary,
        timeline=timeline.data,
        pager=pager,
        groups=all_groups,
        window_hours=f"{summary.window_seconds / 3600:g}",
        configured=bool(settings.history_token),
    )
