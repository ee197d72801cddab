"""The Prometheus client against httpx.MockTransport (no server)."""

from __future__ import annotations

import httpx
import pytest

from aami.prometheus.client import (
    PrometheusClient,
    PrometheusError,
    PrometheusUnreachable,
    ReloadForbidden,
    ReloadRejected,
)


def _client(handler: httpx.MockTransport, *, retries: int = 4) -> PrometheusClient:
    return PrometheusClient("http://prometheus.test", timeout=5, retries=retries, transport=handler)


def test_reload_ok() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        return httpx.Response(200)

    _client(httpx.MockTransport(handle)).reload()
    assert calls == [("POST", "/-/reload")]


def test_403_is_not_retried_and_says_why() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(403, text="Lifecycle API is not enabled.")

    with pytest.raises(ReloadForbidden, match=r"--web\.enable-lifecycle"):
        _client(httpx.MockTransport(handle)).reload()
    assert len(calls) == 1


def test_connection_errors_are_retried_with_backoff_then_raised() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(PrometheusUnreachable, match="does not answer"):
        _client(httpx.MockTransport(handle), retries=3).reload()
    assert len(calls) == 3


def test_transient_503_then_success() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200)])
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return next(answers)

    _client(httpx.MockTransport(handle)).reload()
    assert len(calls) == 2


def test_rejected_reload_is_not_retried() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, text="failed to reload config: one or more errors occurred")

    with pytest.raises(ReloadRejected, match="failed to reload config"):
        _client(httpx.MockTransport(handle)).reload()
    assert len(calls) == 1


def test_rule_groups_and_health() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/rules":
            return httpx.Response(
                200,
                json={
                    "status": "success",
                    "data": {
                        "groups": [
                            {
                                "name": "aami-grp-1",
                                "file": "/rules/group-grp-1.yml",
                                "rules": [{"name": "A"}, {"name": "B"}],
                            }
                        ]
                    },
                },
            )
        if request.url.path in ("/-/ready", "/-/healthy"):
            return httpx.Response(200)
        return httpx.Response(404)

    client = _client(httpx.MockTransport(handle))
    groups = client.rule_groups()
    assert [(g.name, g.file, g.rules) for g in groups] == [
        ("aami-grp-1", "/rules/group-grp-1.yml", 2)
    ]
    assert client.ready() is True
    assert client.healthy() is True


def test_unreachable_health_is_false() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = _client(httpx.MockTransport(handle))
    assert client.ready() is False
    assert client.healthy() is False
    with pytest.raises(PrometheusUnreachable):
        client.rule_groups()


def test_alerting_rules_reads_health_state_and_active_alerts() -> None:
    seen = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, dict(request.url.params)))
        rule = {
            "type": "alerting",
            "name": "HighCPU_Production",
            "query": 'cpu_busy{group_id="prod"} > 90',
            "state": "firing",
            "health": "err",
            "lastError": "many-to-many matching not allowed",
            "lastEvaluation": "2026-01-01T00:01:02.123456789Z",
            "evaluationTime": 0.0004,
            "alerts": [{"state": "pending"}, {"state": "firing"}, {"state": "firing"}],
        }
        fresh = {
            "type": "alerting",
            "name": "New",
            "query": "up == 0",
            "state": "inactive",
            "health": "unknown",
            "lastError": "",
            "lastEvaluation": "0001-01-01T00:00:00Z",
            "evaluationTime": 0,
            "alerts": [],
        }
        groups = [{"name": "aami-prod", "file": "/rules/group-prod.yml", "rules": [rule, fresh]}]
        return httpx.Response(200, json={"status": "success", "data": {"groups": groups}})

    first, second = _client(httpx.MockTransport(handle)).alerting_rules()
    assert seen == [("/api/v1/rules", {"type": "alert"})]
    assert (first.group, first.file, first.name) == (
        "aami-prod",
        "/rules/group-prod.yml",
        "HighCPU_Production",
    )
    assert (first.health, first.state, first.pending, first.firing) == ("err", "firing", 1, 2)
    assert first.last_error == "many-to-many matching not allowed"
    assert first.last_evaluation == "2026-01-01T00:01:02.123456789Z"
    assert first.evaluation_time == 0.0004
    assert second.last_evaluation is None  # Go's zero time: never evaluated
    assert (second.pending, second.firing, second.evaluation_time) == (0, 0, 0.0)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(503), PrometheusUnreachable),
        (httpx.Response(200, text="<html>"), PrometheusError),
        (httpx.Response(200, json={"status": "success", "data": {}}), PrometheusError),
    ],
)
def test_alerting_rules_failures_are_prometheus_errors(
    answer: httpx.Response, error: type[Exception]
) -> None:
    client = _client(httpx.MockTransport(lambda request: answer))
    with pytest.raises(error, match="/api/v1/rules"):
        client.alerting_rules()
