"""The one place that talks HTTP to Prometheus: reload, readiness, loaded rules, queries.

PrometheusError
├── PrometheusUnreachable   no answer (connection refused, timeout, 5xx while starting)
├── ReloadForbidden         403: Prometheus runs without --web.enable-lifecycle
└── ReloadRejected          Prometheus read the new files and refused them
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

__all__ = [
    "AlertingRule",
    "LoadedGroup",
    "LoadedRecord",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusUnreachable",
    "ReloadForbidden",
    "ReloadRejected",
]


class PrometheusError(Exception):
    """Prometheus did not do what was asked; the message says why."""


class PrometheusUnreachable(PrometheusError):
    pass


class ReloadForbidden(PrometheusError):
    pass


class ReloadRejected(PrometheusError):
    pass


@dataclass(frozen=True, slots=True)
class LoadedRecord:
    file: str
    labels: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class LoadedGroup:
    name: str
    file: str
    rules: int


@dataclass(frozen=True, slots=True)
class AlertingRule:
    """One alerting rule as Prometheus evaluates it (GET /api/v1/rules?type=alert)."""

    group: str
    file: str
    name: str
    query: str
    state: str  # inactive, pending or firing
    health: str  # ok, err or unknown
    last_error: str
    last_evaluation: str | None
    evaluation_time: float | None  # seconds
    pending: int  # active alerts pending
    firing: int  # active alerts firing


def _alerting_rule(group: dict[str, Any], rule: dict[str, Any]) -> AlertingRule:
    alerts = [a for a in rule.get("alerts") or [] if isinstance(a, dict)]
    duration = rule.get("evaluationTime")
    last = str(rule.get("lastEvaluation") or "")
    return AlertingRule(
        group=str(group.get("name", "")),
        file=str(group.get("file", "")),
        name=str(rule.get("name", "")),
        query=str(rule.get("query", "")),
        state=str(rule.get("state") or "unknown"),
        health=str(rule.get("health") or "unknown"),
        last_error=str(rule.get("lastError") or ""),
        # Go's zero time (0001-01-01T00:00:00Z): not evaluated yet.
        last_evaluation=last if last and not last.startswith("0001-") else None,
        evaluation_time=float(duration) if isinstance(duration, int | float) else None,
        pending=sum(1 for a in alerts if a.get("state") == "pending"),
        firing=sum(1 for a in alerts if a.get("state") == "firing"),
    )


class PrometheusClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(5.0, read=timeout),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            return self._http.get(path, params=params or None, timeout=5.0)
        except httpx.HTTPError as exc:
            raise PrometheusUnreachable(
                f"Prometheus at {self.base_url} does not answer: {type(exc).__name__}"
            ) from None

    def _reload_once(self) -> None:
        try:
            response = self._http.post("/-/reload")
        except httpx.HTTPError as exc:
            raise PrometheusUnreachable(
                f"Prometheus at {self.base_url} does not answer: {type(exc).__name__}"
            ) from None
        if response.status_code == 403:
            raise ReloadForbidden(
                f"Prometheus at {self.base_url} refused /-/reload (403): start it with "
                "--web.enable-lifecycle so AAMI can reload it"
            )
        if response.status_code == 500 and "reload" in response.text.lower():
            raise ReloadRejected(response.text.strip()[:2000])
        if response.status_code >= 500:
            raise PrometheusUnreachable(
                f"Prometheus at {self.base_url} answered {response.status_code} to /-/reload"
            )
        if response.status_code >= 400:
            raise PrometheusError(
                f"Prometheus answered {response.status_code} to /-/reload: {response.text[:500]}"
            )

    def reload(self) -> None:
        """POST /-/reload; retry with exponential backoff while Prometheus does not answer."""
        attempt = retry(
            retry=retry_if_exception_type(PrometheusUnreachable),
            wait=wait_exponential(multiplier=0.25, max=4),
            stop=stop_after_attempt(self.retries) | stop_after_delay(min(self.timeout, 10.0)),
            reraise=True,
        )(self._reload_once)
        attempt()

    def ready(self) -> bool:
        try:
            return self._get("/-/ready").status_code == 200
        except PrometheusUnreachable:
            return False

    def healthy(self) -> bool:
        try:
            return self._get("/-/healthy").status_code == 200
        except PrometheusUnreachable:
            return False

    def rule_groups(self) -> list[LoadedGroup]:
        """The rule groups Prometheus has loaded (GET /api/v1/rules)."""
        response = self._get("/api/v1/rules")
        if response.status_code != 200:
            raise PrometheusUnreachable(f"GET /api/v1/rules answered {response.status_code}")
        groups = response.json()["data"]["groups"]
        return [LoadedGroup(g["name"], g["file"], len(g.get("rules", []))) for g in groups]

    def recording_rules(self, record: str) -> dict[str, LoadedRecord]:
        """For every loaded rule group: its file, and the labels of its recording rule
        ``record`` (None when it has none) (GET /api/v1/rules?type=record)."""
        response = self._get("/api/v1/rules", type="record")
        if response.status_code != 200:
            raise PrometheusUnreachable(f"GET /api/v1/rules answered {response.status_code}")
        try:
            groups = response.json()["data"]["groups"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PrometheusError(f"GET /api/v1/rules answered something else: {exc}") from None
        found: dict[str, LoadedRecord] = {}
        for group in groups:
            labels = None
            for rule in group.get("rules") or []:
                if rule.get("name") == record:
                    labels = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
                    break
            found[str(group.get("name"))] = LoadedRecord(str(group.get("file", "")), labels)
        return found

    def alerting_rules(self) -> list[AlertingRule]:
        """Every alerting rule Prometheus has loaded, with its health, last evaluation,
        state and active alerts (GET /api/v1/rules?type=alert)."""
        response = self._get("/api/v1/rules", type="alert")
        if response.status_code != 200:
            raise PrometheusUnreachable(f"GET /api/v1/rules answered {response.status_code}")
        try:
            groups = response.json()["data"]["groups"]
            return [
                _alerting_rule(group, rule)
                for group in groups
                for rule in group.get("rules") or []
                if isinstance(rule, dict) and rule.get("type", "alerting") == "alerting"
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PrometheusError(f"GET /api/v1/rules answered something else: {exc}") from None

    def active_targets(self) -> list[dict[str, Any]]:
        """The scrape targets Prometheus knows now, with their health (GET /api/v1/targets)."""
        response = self._get("/api/v1/targets", state="active")
        if response.status_code != 200:
            raise PrometheusUnreachable(f"GET /api/v1/targets answered {response.status_code}")
        try:
            targets = response.json()["data"]["activeTargets"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PrometheusError(f"GET /api/v1/targets answered something else: {exc}") from None
        if not isinstance(targets, list):
            raise PrometheusError("GET /api/v1/targets answered something else")
        return [t for t in targets if isinstance(t, dict)]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant query; return its result vector."""
        response = self._get("/api/v1/query", query=promql)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(body.get("error", f"query failed ({response.status_code})"))
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query_range(
        self, promql: str, *, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        """Run a range query (GET /api/v1/query_range); return its result matrix."""
        response = self._get(
            "/api/v1/query_range", query=promql, start=start, end=end, step=f"{step:g}"
        )
        try:
            body = response.json()
        except ValueError:
            raise PrometheusUnreachable(
                f"Prometheus at {self.base_url} answered {response.status_code} to "
                "/api/v1/query_range, not JSON"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise PrometheusError(error or f"range query failed ({response.status_code})")
        result = body["data"]["result"]
        if not isinstance(result, list):
            raise PrometheusError("the range query did not return series")
        return [item for item in result if isinstance(item, dict)]
