"""The Prometheus client against httpx.MockTransport (no server)."""

from __future__ import annotations

import httpx
import pytest

from aami.prometheus.client import (
    PrometheusClient,
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
