"""Alertmanager's state as AAMI sees it: reachable or not, its cluster, and (where AAMI
manages the config file) whether the config it runs is the one AAMI wants."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from aami.alertmanager.client import AlertmanagerClient, AlertmanagerError
from aami.alertmanager.publisher import SCOPE, AlertmanagerPublisher
from aami.alertmanager.schemas import AlertmanagerStatus
from aami.common.schemas import Page, PageParams
from aami.publishing import service as publishing
from aami.publishing.reconciler import Reconciler
from aami.publishing.schemas import PublishRead
from aami.publishing.types import Target

__all__ = ["history_page", "reachability", "status", "sync_report"]


def reachability(client: AlertmanagerClient, am: AlertmanagerPublisher) -> dict[str, Any]:
    """Reachability, cluster peers and the running config's origin."""
    try:
        raw = client.status()
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
        "reachable": True,
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


def sync_report(
    session: Session, reconciler: Reconciler, am: AlertmanagerPublisher
) -> dict[str, Any]:
    """Desired, written and loaded for the managed config (measured now), as ``scopes``."""
    return publishing.sync_report(
        session, reconciler, Target.ALERTMANAGER, am.status_now(), scope_of=lambda _name: SCOPE
    )


def status(
    session: Session,
    reconciler: Reconciler,
    client: AlertmanagerClient,
    am: AlertmanagerPublisher,
) -> AlertmanagerStatus:
    """Reachability, cluster peers and the last publish; where AAMI manages the config,
    its desired revision (database), written (file) and loaded (what Alertmanager
    reports), measured now."""
    answer = reachability(client, am)
    answer["last_publish"] = publishing.latest_read(session, Target.ALERTMANAGER)
    if not am.managed:
        answer["in_sync"] = None
        return AlertmanagerStatus.model_validate(answer)
    report = sync_report(session, reconciler, am)
    scopes: dict[str, dict[str, Any]] = report.pop("scopes")
    members = {
        m.base_url: scopes[am.scope_of(m)] for m in client.members if am.scope_of(m) in scopes
    }
    answer["members"] = members
    answer["config"] = scopes.get(SCOPE) or _combined(members)
    return AlertmanagerStatus.model_validate({**answer, **report})


def _combined(members: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """A cluster's config as one scope: what every member runs when they agree, in sync
    when each is; the error names every member that is not."""
    if not members:
        return None
    items = list(members.values())
    loaded = {(m["loaded_revision"], m["loaded_fingerprint"]) for m in items}
    revision, fingerprint = loaded.pop() if len(loaded) == 1 else (None, None)
    behind = [
        f"{url}: {m['error'] or 'out of sync'}" for url, m in members.items() if not m["in_sync"]
    ]
    return {
        **items[0],
        "loaded_revision": revision,
        "loaded_fingerprint": fingerprint,
        "in_sync": not behind,
        "error": "; ".join(behind) or None,
    }


def history_page(session: Session, *, page: PageParams) -> Page[PublishRead]:
    """Every publish of the Alertmanager config, newest first."""
    return publishing.history_page(session, target=Target.ALERTMANAGER, page=page)
