"""The Alertmanager client against httpx.MockTransport."""

from __future__ import annotations

import httpx
import pytest

from aami.alertmanager.client import (
    AlertmanagerClient,
    AlertmanagerError,
    AlertmanagerUnreachable,
)


def test_alerts_pass_filters_and_flags() -> None:
    seen: list[httpx.URL] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=[{"labels": {"alertname": "A"}}])

    client = AlertmanagerClient("http://am.test", transport=httpx.MockTransport(handle))
    assert client.alerts(filters=['severity="critical"'], receiver="oncall", silenced=False) == [
        {"labels": {"alertname": "A"}}
    ]
    params = seen[0].params
    assert params.get_list("filter") == ['severity="critical"']
    assert params["silenced"] == "false"
    assert params["receiver"] == "oncall"


def test_errors_are_typed() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AlertmanagerUnreachable, match="does not answer"):
        AlertmanagerClient("http://am.test", transport=httpx.MockTransport(down)).silences()

    def bad(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="bad matcher")

    client = AlertmanagerClient("http://am.test", transport=httpx.MockTransport(bad))
    with pytest.raises(AlertmanagerError, match="bad matcher"):
        client.create_silence({})
    assert client.silence("nope") is None  # a 4xx for one silence means it is not there


SILENCE = "6c9f4b7e-2a51-4f0e-9d7c-1b8a3e5f2c10"


def test_create_and_expire_silence() -> None:
    calls: list[tuple[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        if request.method == "POST":
            return httpx.Response(200, json={"silenceID": SILENCE})
        return httpx.Response(200)

    client = AlertmanagerClient("http://am.test", transport=httpx.MockTransport(handle))
    assert client.create_silence({"matchers": []}) == SILENCE
    client.expire_silence(SILENCE)
    assert calls == [("POST", "/api/v2/silences"), ("DELETE", f"/api/v2/silence/{SILENCE}")]


def test_a_silence_id_that_is_no_uuid_never_reaches_a_url() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={})

    client = AlertmanagerClient("http://am.test", transport=httpx.MockTransport(handler))
    assert client.silence("\x0c") is None
    assert client.silence("../status") is None
    with pytest.raises(AlertmanagerError, match="not a silence id"):
        client.expire_silence("../../-/reload")
    assert calls == []
