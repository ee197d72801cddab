"""What the UI asks the real Prometheus: which targets are up, what an expression matches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request

from aami.api.state import services
from aami.prometheus.client import AlertingRule, PrometheusClient, PrometheusError
from aami.prometheus.rule_files import RuleFileStore, group_name
from aami.targets.models import Exporter, Target

__all__ = [
    "Matches",
    "RuleState",
    "ScrapeHealth",
    "TargetHealth",
    "graph_url",
    "matches",
    "rule_state",
    "scrape_health",
    "target_health",
]

SHOWN = 20


def _client(request: Request) -> PrometheusClient:
    return services(request).prometheus


def _query(request: Request, expr: str) -> tuple[list[dict[str, Any]] | None, str | None]:
    client = _client(request)
    try:
        result = client.query(expr)
    except PrometheusError as exc:
        return None, f"Prometheus unreachable: {exc}"
    except (ValueError, KeyError, TypeError) as exc:  # not Prometheus's JSON at that address
        return None, f"Prometheus unreachable: {client.base_url} answered {type(exc).__name__}"
    # A scalar or string result is a pair, not a list of series.
    return [item for item in result if isinstance(item, dict)], None


@dataclass
class TargetHealth:
    url: str
    error: str | None = None
    up: int = 0
    down: list[dict[str, str]] = field(default_factory=list)

    @property
    def reachable(self) -> bool:
        return self.error is None


def target_health(request: Request) -> TargetHealth:
    """``up`` from Prometheus: how many scrape targets answer, and which do not."""
    health = TargetHealth(_client(request).base_url)
    series, health.error = _query(request, "up")
    for item in series or []:
        labels = item.get("metric", {})
        value = (item.get("value") or [None, "0"])[1]
        if value == "1":
            health.up += 1
        else:
            health.down.append(
                {
                    "instance": labels.get("instance", ""),
                    "job": labels.get("job", ""),
                    "group": labels.get("group", ""),
                }
            )
    health.down.sort(key=lambda d: (d["job"], d["instance"]))
    return health


@dataclass
class Matches:
    error: str | None = None
    count: int = 0
    series: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.error, "count": self.count, "series": self.series}


def matches(request: Request, expr: str) -> Matches:
    """The series an alert expression returns now: the ones that would be pending or firing."""
    found = Matches()
    series, found.error = _query(request, expr)
    found.count = len(series or [])
    for item in (series or [])[:SHOWN]:
        labels = item.get("metric", {})
        found.series.append(
            {
                "instance": labels.get("instance", ""),
                "labels": ", ".join(
                    f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("instance",)
                ),
                "value": str((item.get("value") or [None, ""])[1]),
            }
        )
    return found


@dataclass
class ExporterScrape:
    """What Prometheus says about scraping one exporter (in one job)."""

    exporter_id: str
    exporter_type: str
    port: int
    job: str = ""
    health: str = "not scraped"
    scrape_url: str = ""
    last_scrape: str | None = None
    last_error: str = ""
    duration: float | None = None


@dataclass
class ScrapeHealth:
    url: str
    error: str | None = None
    exporters: list[ExporterScrape] = field(default_factory=list)

    @property
    def reachable(self) -> bool:
        return self.error is None


def _scrape(exporter: Exporter, found: dict[str, Any]) -> ExporterScrape:
    labels = found.get("labels") or {}
    duration = found.get("lastScrapeDuration")
    return ExporterScrape(
        exporter_id=exporter.id,
        exporter_type=exporter.type,
        port=exporter.port,
        job=str(labels.get("job", found.get("scrapePool", ""))),
        health=str(found.get("health", "unknown")),
        scrape_url=str(found.get("scrapeUrl", "")),
        last_scrape=str(found["lastScrape"]) if found.get("lastScrape") else None,
        last_error=str(found.get("lastError") or ""),
        duration=float(duration) if isinstance(duration, int | float) else None,
    )


def scrape_health(request: Request, target: Target) -> ScrapeHealth:
    """For each of the target's exporters, Prometheus's view of its scrapes
    (``/api/v1/targets``): health, last scrape, last error and how long it took."""
    client = _client(request)
    health = ScrapeHealth(client.base_url)
    try:
        active = client.active_targets()
    except PrometheusError as exc:
        health.error = f"Prometheus unreachable: {exc}"
        return health
    for exporter in sorted(target.exporters, key=lambda e: (e.type, e.port)):
        address = f"{target.ip_address}:{exporter.port}"
        found = [
            t
            for t in active
            if (t.get("labels") or {}).get("target_id") == target.id
            and (t.get("discoveredLabels") or {}).get("__address__") == address
        ]
        if not found:
            health.exporters.append(
                ExporterScrape(
                    exporter.id,
                    exporter.type,
                    exporter.port,
                    health="not scraped" if exporter.enabled else "disabled",
                )
            )
        health.exporters.extend(_scrape(exporter, t) for t in found)
    return health


# ---- one alerting rule, as Prometheus evaluates it --------------------------------------


def _browser_base(request: Request) -> str:
    """Prometheus's address as a user's browser reaches it (settings default it to
    ``PROMETHEUS_URL``)."""
    settings = services(request).settings
    return (settings.prometheus_external_url or settings.prometheus_url).rstrip("/")


def graph_url(request: Request, expr: str) -> str:
    """The expression's graph in Prometheus, at the address a browser reaches it by."""
    return f"{_browser_base(request)}/graph?{urlencode({'g0.expr': expr, 'g0.tab': '0'})}"


def external_link(request: Request, generator_url: str | None) -> str | None:
    """A link Prometheus made for an alert (its ``generatorURL``, built from Prometheus's
    own idea of its address), moved to the address a browser reaches Prometheus by."""
    if not generator_url:
        return None
    found = urlsplit(generator_url)
    if found.scheme not in ("http", "https") or not found.path.endswith("/graph"):
        return None
    base = _browser_base(request)
    return f"{base}/graph?{found.query}" if found.query else f"{base}/graph"


@dataclass
class RuleState:
    """What Prometheus reports for one of AAMI's alerting rules: ``rule`` is None when
    it does not run it (``error`` None) or cannot be asked (``error`` says why)."""

    group: str
    file: str
    error: str | None = None
    rule: AlertingRule | None = None

    @property
    def loaded(self) -> bool:
        return self.rule is not None


def rule_state(request: Request, *, scope: str, alert: str, expr: str) -> RuleState:
    """Find the alerting rule ``alert`` in the rule group and file AAMI writes for
    ``scope`` (``""``: global); when several match, the one whose query is ``expr``."""
    client = _client(request)
    state = RuleState(group_name(scope), RuleFileStore.file_name(scope))
    try:
        loaded = client.alerting_rules()
    except PrometheusError as exc:
        state.error = f"Prometheus unreachable: {exc}"
        return state
    found = [
        r
        for r in loaded
        if r.name == alert and r.group == state.group and PurePosixPath(r.file).name == state.file
    ]
    exact = [r for r in found if r.query == expr]
    state.rule = next(iter(exact or found), None)
    return state
