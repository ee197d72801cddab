"""Bootstrap tokens and node self-registration."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.support.api import create, error


def _register(anon: TestClient, token: str, hostname: str, **extra: object):
    return anon.post(
        "/api/v1/bootstrap/register",
        json={"hostname": hostname, "ip_address": "10.0.0.5", **extra},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_token_shown_once_and_stored_hashed(client: TestClient) -> None:
    created = create(client, "/api/v1/bootstrap-tokens", {"name": "rack-7", "max_uses": 2})
    assert created["token"].startswith("aamib_")
    assert "token" not in client.get(f"/api/v1/bootstrap-tokens/{created['id']}").json()
    listed = client.get("/api/v1/bootstrap-tokens").json()["data"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    audit = client.get("/api/v1/audit", params={"entity_type": "bootstrap_token"}).json()
    assert created["token"] not in str(audit)


def test_register_creates_the_node_with_group_labels_and_exporter(
    client: TestClient, anon: TestClient
) -> None:
    create(client, "/api/v1/groups", {"id": "ml", "name": "ML training"})
    token = create(
        client,
        "/api/v1/bootstrap-tokens",
        {"name": "ml-racks", "group_id": "ML training", "labels": {"rack": "r7"}},
    )
    response = _register(
        anon, token["token"], "GPU-Node-09", labels={"gpu": "h100"}, node_exporter_port=9101
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["hostname"] == "gpu-node-09"
    assert body["group_ids"] == ["ml"]
    assert body["node_token"].startswith("aamin_")
    target = client.get(f"/api/v1/targets/{body['target_id']}").json()
    assert target["labels"] == {"rack": "r7", "gpu": "h100"}
    assert [(e["type"], e["port"]) for e in target["exporters"]] == [("node_exporter", 9101)]
    sd = client.get("/api/v1/sd/prometheus").json()
    assert sd[0]["labels"]["group_id"] == "ml"
    assert client.get(f"/api/v1/bootstrap-tokens/{token['id']}").json()["uses"] == 1


def test_re_registration_by_hostname_rotates_the_node_token(
    client: TestClient, anon: TestClient
) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "t"})["token"]
    first = _register(anon, token, "gpu-node-01").json()
    second = _register(anon, token, "gpu-node-01", ip_address="10.0.0.6").json()
    assert second["target_id"] == first["target_id"]
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 1
    assert client.get("/api/v1/targets/gpu-node-01").json()["ip_address"] == "10.0.0.6"
    assert len(client.get("/api/v1/targets/gpu-node-01").json()["exporters"]) == 1
    old = {"Authorization": f"Bearer {first['node_token']}"}
    new = {"Authorization": f"Bearer {second['node_token']}"}
    error(anon.get("/api/v1/checks/target/gpu-node-01", headers=old), 401)
    assert anon.get("/api/v1/checks/target/gpu-node-01", headers=new).status_code == 200


def test_bad_tokens(client: TestClient, anon: TestClient) -> None:
    error(_register(anon, "aamib_wrong", "n1"), 401)
    expired = create(
        client,
        "/api/v1/bootstrap-tokens",
        {"name": "old", "expires_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
    )
    assert "expired" in error(_register(anon, expired["token"], "n1"), 403)
    once = create(client, "/api/v1/bootstrap-tokens", {"name": "once", "max_uses": 1})
    assert _register(anon, once["token"], "n1").status_code == 201
    assert "no uses left" in error(_register(anon, once["token"], "n2"), 403)
    # the admin token is not a bootstrap token, and a bootstrap token is no admin token
    error(
        client.post(
            "/api/v1/bootstrap/register", json={"hostname": "n3", "ip_address": "10.0.0.3"}
        ),
        401,
    )
    error(anon.get("/api/v1/groups", headers={"Authorization": f"Bearer {once['token']}"}), 401)
    error(_register(anon, once["token"], "bad host"), 422)
    revoked = create(client, "/api/v1/bootstrap-tokens", {"name": "revoked"})
    assert client.delete(f"/api/v1/bootstrap-tokens/{revoked['id']}").status_code == 204
    error(_register(anon, revoked["token"], "n4"), 401)
    assert "unknown group" in error(
        client.post("/api/v1/bootstrap-tokens", json={"name": "x", "group_id": "nope"}), 422
    )


def test_max_uses_holds_under_concurrent_registrations(
    client: TestClient, anon: TestClient
) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "burst", "max_uses": 3})

    def attempt(index: int) -> int:
        return _register(anon, token["token"], f"burst-{index:02d}").status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(attempt, range(12)))
    assert sorted(codes) == [201] * 3 + [403] * 9
    assert client.get(f"/api/v1/bootstrap-tokens/{token['id']}").json()["uses"] == 3
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 3
