"""Limits before work, in process: the body cap, the bearer header before the body, and the
lockout after repeated failed tokens. tests/api/test_limits_server.py runs a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Scope

from aami.api.limits import AuthLimiter, bearer_credential
from aami.app import create_app
from aami.config import Settings
from tests.conftest import AUTH, TOKEN
from tests.support.api import error
from tests.support.wait import wait_for

MIB = 1024 * 1024
WRONG = {"Authorization": "Bearer wrong-token-wrong-token"}


def _call(client: TestClient, path: str, headers: dict[str, str], chunks: int) -> dict[str, Any]:
    """Send a POST straight to the ASGI app; count what the app pulled from the body."""
    pulled = {"messages": 0, "bytes": 0}
    sent: list[Message] = []
    chunk = b"x" * 65536

    async def receive() -> Message:
        pulled["messages"] += 1
        if pulled["messages"] > chunks:
            return {"type": "http.disconnect"}
        pulled["bytes"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": pulled["messages"] < chunks}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
        "state": {},
    }
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {
        "status": start["status"],
        "headers": {k.decode(): v.decode() for k, v in start["headers"]},
        "body": body,
        **pulled,
    }


def test_a_post_without_a_bearer_header_is_401_before_its_body_is_read(
    client: TestClient,
) -> None:
    for headers in (
        {"content-length": str(MIB - 1), "content-type": "application/json"},
        {"transfer-encoding": "chunked", "content-type": "application/json"},
        {"content-length": "1000", "authorization": "Basic dXNlcjpwYXNz"},
        {"transfer-encoding": "chunked", "authorization": "Bearer  "},
    ):
        answer = _call(client, "/api/v1/groups", headers, chunks=1600)
        assert answer["status"] == 401, answer
        assert answer["messages"] == 0, "the guard read the body of an unauthenticated request"
        assert answer["headers"]["www-authenticate"] == "Bearer"
        assert answer["headers"]["connection"] == "close"
        assert b'"error":"unauthorized"' in answer["body"]
    # The bootstrap registration authenticates with its own bearer token: same rule.
    answer = _call(client, "/api/v1/bootstrap/register", {"content-length": "10"}, chunks=1)
    assert (answer["status"], answer["messages"]) == (401, 0)


def test_a_declared_length_over_the_cap_is_413_before_the_body_is_read(
    client: TestClient,
) -> None:
    for headers in ({}, WRONG, AUTH):
        declared = {**headers, "content-length": str(100 * MIB)}
        answer = _call(client, "/api/v1/groups", declared, chunks=1600)
        assert (answer["status"], answer["messages"]) == (413, 0)
        assert b'"error":"content_too_large"' in answer["body"]
        assert b"1048576 bytes" in answer["body"]
        assert answer["headers"]["connection"] == "close"


def test_a_streamed_body_is_cut_off_at_the_cap(client: TestClient) -> None:
    headers = {**AUTH, "transfer-encoding": "chunked", "content-type": "application/json"}
    answer = _call(client, "/api/v1/groups", headers, chunks=1600)  # 100 MiB on offer
    assert answer["status"] == 413
    # Read up to the cap and one chunk more, not the hundred mebibytes.
    assert answer["bytes"] <= MIB + 65536
    assert b'"error":"content_too_large"' in answer["body"]


def test_the_cap_applies_to_every_body_and_answers_json(client: TestClient) -> None:
    big = b'{"name": "' + b"x" * (2 * MIB) + b'"}'
    detail = error(client.post("/api/v1/groups", content=big), 413)
    assert "larger than this server accepts" in detail
    assert (
        client.post("/api/v1/groups", content=big, headers={"content-type": "application/json"})
    ).headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(3):
            yield b"x" * MIB
        yield b'"}'

    assert client.post("/api/v1/groups", content=chunks()).status_code == 413
    # Under the cap, the request goes on as before.
    assert client.post("/api/v1/groups", json={"id": "g1", "name": "one"}).status_code == 201


def test_metrics_label_a_refusal_with_its_route(client: TestClient, anon: TestClient) -> None:
    assert anon.post("/api/v1/groups", content=b"{}").status_code == 401
    metrics = client.get("/metrics").text
    assert 'aami_http_requests_total{method="POST",route="/api/v1/groups",status="401"}' in metrics


def _document(size: int) -> dict[str, Any]:
    count = size // 1000 + 1
    return {
        "apiVersion": "aami/v1",
        "kind": "Configuration",
        "groups": {
            f"g{i}": {"name": f"group-{i}", "description": "d" * 950, "labels": {}}
            for i in range(count)
        },
    }


def test_the_config_document_may_be_larger_with_the_admin_token(settings: Settings) -> None:
    document = _document(3 * MIB // 2)
    sd_token = "prometheus-sd-token-0123456789"
    app = create_app(settings.model_copy(update={"sd_token": sd_token}))
    with TestClient(app, headers=AUTH) as client:
        plan = client.post("/api/v1/config/plan", json=document)
        assert plan.status_code == 200, plan.text[:500]
        # Any other token gets the ordinary cap, before it is found out to be no admin.
        other = {"Authorization": f"Bearer {sd_token}"}
        error(client.post("/api/v1/config/plan", json=document, headers=other), 413)
        error(client.post("/api/v1/groups", json=document), 413)


def test_the_config_document_cap_is_a_setting(settings: Settings) -> None:
    document = _document(3 * MIB // 2)
    app = create_app(settings.model_copy(update={"max_config_body": MIB}))
    with TestClient(app, headers=AUTH) as client:
        error(client.post("/api/v1/config/plan", json=document), 413)
    assert Settings(max_request_body="512KiB").max_request_body == 512 * 1024
    assert Settings(max_config_body="64MiB").max_config_body == 64 * MIB
    with pytest.raises(ValueError, match="size"):
        Settings(max_request_body="lots")


# ---- repeated failures -------------------------------------------------------------------


@pytest.fixture
def strict(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"auth_failure_limit": 3, "auth_failure_window": 60.0, "auth_block_duration": 60.0}
    )


def test_repeated_wrong_tokens_get_429_with_retry_after(strict: Settings) -> None:
    with TestClient(create_app(strict), client=("192.0.2.7", 50000)) as attacker:
        for _ in range(2):
            error(attacker.get("/api/v1/groups", headers=WRONG), 401)
        # Successes neither count nor forgive.
        for _ in range(5):
            assert attacker.get("/api/v1/groups", headers=AUTH).status_code == 200
        error(attacker.post("/api/v1/groups", json={"name": "x"}, headers=WRONG), 401)
        blocked = attacker.get("/api/v1/groups", headers=WRONG)
        assert "too many failed" in error(blocked, 429)
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        # While blocked, no token is even looked at: the right one is refused too.
        error(attacker.get("/api/v1/groups", headers=AUTH), 429)
        error(attacker.post("/api/v1/groups", content=b"x" * 100, headers=AUTH), 429)
        metrics = attacker.get("/metrics").text
        assert 'status="429"' in metrics
        # Another address is not affected.
        other = TestClient(attacker.app, client=("192.0.2.8", 50000))
        assert other.get("/api/v1/groups", headers=AUTH).status_code == 200


def test_missing_tokens_do_not_count(strict: Settings) -> None:
    with TestClient(create_app(strict)) as client:
        for _ in range(10):
            error(client.get("/api/v1/groups"), 401)
            error(client.post("/api/v1/groups", json={}), 401)
        assert client.get("/api/v1/groups", headers=AUTH).status_code == 200


def test_the_block_ends_after_its_duration(settings: Settings) -> None:
    quick = settings.model_copy(
        update={"auth_failure_limit": 2, "auth_failure_window": 60.0, "auth_block_duration": 1.0}
    )
    with TestClient(create_app(quick)) as client:
        for _ in range(2):
            error(client.get("/api/v1/groups", headers=WRONG), 401)
        error(client.get("/api/v1/groups", headers=AUTH), 429)
        wait_for(
            lambda: client.get("/api/v1/groups", headers=AUTH).status_code == 200,
            timeout=10,
            what="the block to end",
        )


def test_behind_a_trusted_proxy_the_forwarded_address_is_blocked(strict: Settings) -> None:
    proxied = strict.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
    with TestClient(create_app(proxied), client=("10.1.2.3", 50000)) as proxy:
        one = {**WRONG, "X-Forwarded-For": "198.51.100.1"}
        for _ in range(3):
            error(proxy.get("/api/v1/groups", headers=one), 401)
        error(proxy.get("/api/v1/groups", headers={**AUTH, "X-Forwarded-For": "198.51.100.1"}), 429)
        two = {**AUTH, "X-Forwarded-For": "198.51.100.2"}
        assert proxy.get("/api/v1/groups", headers=two).status_code == 200


def test_a_limit_of_zero_never_blocks(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"auth_failure_limit": 0}))) as client:
        for _ in range(30):
            error(client.get("/api/v1/groups", headers=WRONG), 401)
        assert client.get("/api/v1/groups", headers=AUTH).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_counts_failures_in_a_sliding_window() -> None:
    clock = Clock()
    limiter = AuthLimiter(limit=3, window=60, block=300, clock=clock)
    limiter.failure("a")
    clock.now += 50
    limiter.failure("a")
    clock.now += 20  # the first failure has left the window
    limiter.failure("a")
    assert limiter.retry_after("a") == 0
    limiter.failure("a")
    assert limiter.retry_after("a") == 300
    assert limiter.retry_after("b") == 0
    clock.now += 299.5
    assert limiter.retry_after("a") == 1
    clock.now += 0.5
    assert limiter.retry_after("a") == 0
    # A fresh start after the block: the failures before it are forgotten.
    limiter.failure("a")
    assert limiter.retry_after("a") == 0


def test_limiter_memory_is_bounded() -> None:
    clock = Clock()
    limiter = AuthLimiter(limit=5, window=60, block=60, max_addresses=100, clock=clock)
    for i in range(1000):
        limiter.failure(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._failures) <= 100


def test_bearer_credential() -> None:
    assert bearer_credential(f"Bearer {TOKEN}") == TOKEN
    assert bearer_credential(f"bearer   {TOKEN} ") == TOKEN
    for bad in (None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", TOKEN):
        assert bearer_credential(bad) is None, bad
