"""Alerts Alertmanager holds: listed and filtered, each linked to its rule and its graph."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from aami.alertmanager.schemas import AlertRead
from aami.alerts import service as alert_rules
from aami.groups import service as groups
from aami.web.alertmanager import connect
from aami.web.common import DbDep, LoginDep, UiRoute, page
from aami.web.prometheus import external_link

router = APIRouter(route_class=UiRoute)

SEVERITIES = ("critical", "warning", "info")
SILENCE_KINDS = ("target", "group")  # what a row of the alerts page can silence


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
    held, problem = am.alerts(session, **{k: (v or None) for k, v in filters.items()})
    shown = sorted(held, key=_order)
    all_groups, _ = groups.list_groups(session, limit=1000)
    return page(
        request,
        "alerts.html",
        status_code=status_code,
        nav="alerts",
        title="Alerts",
        alerts=shown,
        rule_ids=_rule_ids(session, shown),
        graphs=[external_link(request, a.generator_url) for a in shown],
        problem=problem,
        filters=filters,
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


def alert_filters(group: str, severity: str, target: str) -> dict[str, str]:
    return {
        "group": group.strip(),
        "severity": severity if severity in SEVERITIES else "",
        "target": target.strip(),
    }


@router.get("/alerts")
def alert_list(
    request: Request,
    _: LoginDep,
    session: DbDep,
    group: str = "",
    severity: str = "",
    target: str = "",
) -> Response:
    """Alerts Alertmanager holds (firing, silenced, inhibited), filtered."""
    return alerts_page(request, session, filters=alert_filters(group, severity, target))
