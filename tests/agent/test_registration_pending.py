"""The agent's side of a queued registration: the 202 answer, the polls, the state file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from aami.agent.client import (
    BadResponse,
    InsecureUrl,
    PendingRegistration,
    Registration,
    ServerRejected,
    poll_registration,
    register,
)
from aami.agent.pending import forget_pending, load_pending, pending_path, save_pending

SERVER = "https://aami.example:8080"
QUEUED = {
    "status": "pending",
    "registration_id": "reg-1",
    "hostname": "gpu-node-01",
    "reasons": ["gpu-node-01 is already registered"],
    "poll_url": "/api/v1/bootstrap/registrations/reg-1",
    "poll_token": "aamip_secret",
    "poll_interval_seconds": 2,
    "expires_at": "2026-11-30T12:00:00Z",
}


def _register(handler: httpx.MockTransport, **extra: object) -> Registration | PendingRegistration:
    return register(
        SERVER,
        "aamib_token",
        hostname="gpu-node-01",
        ip_address="10.0.0.1",
        labels={},
        node_exporter_port=9100,
        transport=handler,
        **extra,  # type: ignore[arg-type]
    )


def test_a_202_is_a_pending_registration_and_the_node_token_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json=QUEUED)

    pending = _register(httpx.MockTransport(handle), node_token="aamin_current")
    assert pending == PendingRegistration(
        registration_id="reg-1",
        hostname="gpu-node-01",
        poll_token="aamip_secret",
        reasons=["gpu-node-01 is already registered"],
        expires_at="2026-11-30T12:00:00Z",
        poll_interval=2.0,
    )
    assert json.loads(seen[0].content)["node_token"] == "aamin_current"
    # without a node token, the field is not sent at all
    _register(httpx.MockTransport(handle))
    assert "node_token" not in json.loads(seen[1].content)


def test_a_malformed_202_is_a_bad_response() -> None:
    answer = {k: v for k, v in QUEUED.items() if k != "poll_token"}
    transport = httpx.MockTransport(lambda _: httpx.Response(202, json=answer))
    with pytest.raises(BadResponse, match="lacks poll_token"):
        _register(transport)


def test_poll_pending_then_approved_then_refusals() -> None:
    pending = PendingRegistration("reg-1", "gpu-node-01", "aamip_secret", [], "", 2.0)
    answers = [
        httpx.Response(200, json={**QUEUED, "status": "pending", "node_token": None}),
        httpx.Response(
            200,
            json={
                "status": "approved",
                "registration_id": "reg-1",
                "hostname": "gpu-node-01",
                "target_id": "tgt-1",
                "group_ids": ["grp-a"],
                "node_token": "aamin_new",
            },
        ),
        httpx.Response(403, json={"error": "forbidden", "detail": "rejected by admin: no"}),
        httpx.Response(200, json={"status": "mystery"}),
    ]
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    transport = httpx.MockTransport(handle)
    assert poll_registration(SERVER, pending, transport=transport) is None
    assert poll_registration(SERVER, pending, transport=transport) == Registration(
        "tgt-1", "gpu-node-01", ["grp-a"], "aamin_new"
    )
    with pytest.raises(ServerRejected) as refused:
        poll_registration(SERVER, pending, transport=transport)
    assert refused.value.status_code == 403
    assert "rejected by admin: no" in refused.value.detail
    with pytest.raises(BadResponse, match="mystery"):
        poll_registration(SERVER, pending, transport=transport)
    assert {r.url.path for r in seen} == {"/api/v1/bootstrap/registrations/reg-1"}
    assert {r.headers["authorization"] for r in seen} == {"Bearer aamip_secret"}


def test_poll_refuses_plain_http_before_sending_the_poll_token() -> None:
    pending = PendingRegistration("reg-1", "gpu-node-01", "aamip_secret", [], "", 2.0)
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"status": "pending"})

    with pytest.raises(InsecureUrl):
        poll_registration("http://aami.example", pending, transport=httpx.MockTransport(handle))
    assert sent == []


def test_the_state_file_is_private_and_tied_to_server_and_hostname(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "agent.yaml"
    path = pending_path(config)
    assert path == tmp_path / "etc" / "agent.yaml.pending"
    pending = PendingRegistration("reg-1", "gpu-node-01", "aamip_secret", ["why"], "soon", 2.0)
    save_pending(path, SERVER + "/", pending)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_pending(path, server_url=SERVER, hostname="gpu-node-01") == pending
    assert load_pending(path, server_url="https://other.example", hostname="gpu-node-01") is None
    assert load_pending(path, server_url=SERVER, hostname="gpu-node-02") is None
    path.write_text("{not json")
    assert load_pending(path, server_url=SERVER, hostname="gpu-node-01") is None
    forget_pending(path)
    forget_pending(path)  # already gone: fine
    assert not path.exists()
    assert load_pending(path, server_url=SERVER, hostname="gpu-node-01") is None
