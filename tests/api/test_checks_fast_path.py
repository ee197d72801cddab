"""The node poll answered from the caches (aami.checks.fast_path) is the endpoint's answer:
same status, body and headers, counted in /metrics under the same route, and anything the
caches cannot vouch for still goes through the endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from aami.auth.tokens import hash_token
from aami.checks import endpoints
from aami.registration.models import NodeToken
from tests.api.test_checks import MOUNT_CHECK, _fleet
from tests.support.api import app_services, create, error

NODE = "aamin_fast_path_node_01"
OTHER = "aamin_fast_path_node_02"
POLL = "/api/v1/checks/target/gpu-node-01"


def _setup(client: TestClient) -> str:
    """The fleet of test_checks, a global policy (its id returned) and two node tokens."""
    _fleet(client)
    policy = create(
        client, "/api/v1/script-policies", {"template_id": "mount-check", "scope": "global"}
    )
    with app_services(client).sessionmaker.begin() as session:
        session.add(NodeToken(id="nt-1", target_id="gpu-node-01", token_hash=hash_token(NODE)))
        session.add(NodeToken(id="nt-2", target_id="gpu-node-02", token_hash=hash_token(OTHER)))
    return str(policy["id"])


def _endpoint_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the poll went through the endpoint")

    monkeypatch.setattr(endpoints, "_checks_response", refuse)


def _shape(response: Any) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k != "date"}
    return response.status_code, response.content, headers


def test_a_cached_poll_is_answered_as_the_endpoint_answers(
    client: TestClient, anon: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(client)
    node = {"Authorization": f"Bearer {NODE}"}
    by_endpoint = anon.get(POLL, headers=node)
    assert by_endpoint.status_code == 200, by_endpoint.text
    assert by_endpoint.json()[0]["name"] == MOUNT_CHECK["name"]
    etag = by_endpoint.headers["etag"]
    not_modified = anon.get(POLL, headers={**node, "If-None-Match": etag})

    _endpoint_must_not_run(monkeypatch)
    assert _shape(anon.get(POLL, headers=node)) == _shape(by_endpoint)
    fast_304 = anon.get(POLL, headers={**node, "If-None-Match": etag})
    assert fast_304.status_code == 304
    assert _shape(fast_304) == _shape(not_modified)

    metrics = client.get("/metrics").text
    route = 'route="/api/v1/checks/target/{target_id}"'
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("aami_http_requests_total") and route in line
    ]
    assert any('status="304"' in line and line.endswith(" 2.0") for line in counted), counted
    assert any('status="200"' in line and line.endswith(" 2.0") for line in counted), counted


def test_what_the_caches_cannot_vouch_for_goes_to_the_endpoint(
    client: TestClient, anon: TestClient
) -> None:
    policy_id = _setup(client)
    node = {"Authorization": f"Bearer {NODE}"}
    first = anon.get(POLL, headers=node)
    assert first.status_code == 200
    anon.get(POLL, headers=node)  # served from the caches from now on
    # Another node's token: the cached document is not its own.
    error(anon.get(POLL, headers={"Authorization": f"Bearer {OTHER}"}), 403)
    error(anon.get(POLL, headers={"Authorization": "Bearer aamin_nobody"}), 401)
    error(anon.get(POLL), 401)
    # A change bumps the revision: the next poll is rendered anew, with a new ETag.
    changed = client.put(
        f"/api/v1/script-policies/{policy_id}", json={"config": {"paths": "/scratch"}}
    )
    assert changed.status_code == 200, changed.text
    after = anon.get(POLL, headers={**node, "If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != first.headers["etag"]
    assert after.json()[0]["config"]["paths"] == "/scratch"
