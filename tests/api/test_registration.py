"""Bootstrap tokens, node self-registration and the registration queue.

Nodes are TestClients whose TCP peer is the address they connect from, so the rule
"the claimed ip_address is the source address" is exercised as on a real network.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from fastapi.testclient import TestClient
from sqlalchemy import update

from aami.app import create_app
from aami.auth.tokens import hash_token
from aami.config import Settings
from aami.registration.models import PendingRegistration
from tests.conftest import AUTH
from tests.support.api import app_services, create, error
from tests.support.wait import wait_for


@dataclass
class Node:
    """The app as seen by a node connecting from ``address``."""

    http: TestClient
    address: str

    def register(
        self, token: str, hostname: str, ip_address: str | None = None, **extra: Any
    ) -> httpx2.Response:
        """POST /bootstrap/register claiming the address it connects from (by default)."""
        return self.http.post(
            "/api/v1/bootstrap/register",
            json={"hostname": hostname, "ip_address": ip_address or self.address, **extra},
            headers={"Authorization": f"Bearer {token}"},
        )

    def checks(self, node_token: str, target: str) -> int:
        """Status of the node's check-list request with ``node_token``."""
        return self.http.get(
            f"/api/v1/checks/target/{target}", headers={"Authorization": f"Bearer {node_token}"}
        ).status_code

    def poll(self, queued: dict[str, Any]) -> httpx2.Response:
        return self.http.get(
            queued["poll_url"], headers={"Authorization": f"Bearer {queued['poll_token']}"}
        )


def _node(client: TestClient, address: str = "10.0.0.5") -> Node:
    return Node(TestClient(client.app, client=(address, 40000)), address)


def _fleet(client: TestClient) -> tuple[str, str]:
    """Two groups with a bootstrap token each; returns (token of a, token of b)."""
    create(client, "/api/v1/groups", {"id": "grp-a", "name": "team a"})
    create(client, "/api/v1/groups", {"id": "grp-b", "name": "team b"})
    token_a = create(
        client,
        "/api/v1/bootstrap-tokens",
        {"name": "a", "group_id": "grp-a", "labels": {"team": "a"}, "allowed_labels": ["rack"]},
    )
    token_b = create(
        client,
        "/api/v1/bootstrap-tokens",
        {"name": "b", "group_id": "grp-b", "labels": {"team": "b"}, "allowed_labels": ["rack"]},
    )
    return token_a["token"], token_b["token"]


def _target(client: TestClient, ref: str) -> dict[str, Any]:
    body = client.get(f"/api/v1/targets/{ref}").json()
    return {k: body[k] for k in ("id", "ip_address", "labels", "group_ids")}


# ---- tokens and plain registration -------------------------------------------------------


def test_token_shown_once_and_stored_hashed(client: TestClient) -> None:
    created = create(
        client,
        "/api/v1/bootstrap-tokens",
        {"name": "rack-7", "max_uses": 2, "allowed_labels": ["rack", "gpu", "rack"]},
    )
    assert created["token"].startswith("aamib_")
    assert created["allowed_labels"] == ["rack", "gpu"]
    assert "token" not in client.get(f"/api/v1/bootstrap-tokens/{created['id']}").json()
    listed = client.get("/api/v1/bootstrap-tokens").json()["data"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    audit = client.get("/api/v1/audit", params={"entity_type": "bootstrap_token"}).json()
    assert created["token"] not in str(audit)
    detail = error(
        client.post("/api/v1/bootstrap-tokens", json={"name": "x", "allowed_labels": ["a-b"]}),
        422,
    )
    assert "'a-b' is not a valid Prometheus label name" in detail


def test_register_creates_the_node_with_group_labels_and_exporter(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "ml", "name": "ML training"})
    token = create(
        client,
        "/api/v1/bootstrap-tokens",
        {
            "name": "ml-racks",
            "group_id": "ML training",
            "labels": {"rack": "r7"},
            "allowed_labels": ["gpu"],
        },
    )
    response = _node(client, "10.0.0.9").register(
        token["token"],
        "GPU-Node-09",
        labels={"gpu": "h100"},
        node_exporter_port=9101,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["hostname"] == "gpu-node-09"
    assert body["group_ids"] == ["ml"]
    assert body["node_token"].startswith("aamin_")
    target = client.get(f"/api/v1/targets/{body['target_id']}").json()
    assert target["ip_address"] == "10.0.0.9"
    assert target["labels"] == {"rack": "r7", "gpu": "h100"}
    assert [(e["type"], e["port"]) for e in target["exporters"]] == [("node_exporter", 9101)]
    sd = client.get("/api/v1/sd/prometheus").json()
    assert sd[0]["labels"]["group_id"] == "ml"
    assert client.get(f"/api/v1/bootstrap-tokens/{token['id']}").json()["uses"] == 1


def test_bad_tokens(client: TestClient) -> None:
    node = _node(client)
    error(node.register("aamib_wrong", "n1"), 401)
    expired = create(
        client,
        "/api/v1/bootstrap-tokens",
        {"name": "old", "expires_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
    )
    assert "expired" in error(node.register(expired["token"], "n1"), 403)
    once = create(client, "/api/v1/bootstrap-tokens", {"name": "once", "max_uses": 1})
    assert node.register(once["token"], "n1").status_code == 201
    assert "no uses left" in error(node.register(once["token"], "n2"), 403)
    # the admin token is not a bootstrap token, and a bootstrap token is no admin token
    error(
        client.post(
            "/api/v1/bootstrap/register", json={"hostname": "n3", "ip_address": "10.0.0.3"}
        ),
        401,
    )
    error(
        node.http.get("/api/v1/groups", headers={"Authorization": f"Bearer {once['token']}"}), 401
    )
    error(node.register(once["token"], "bad host"), 422)
    revoked = create(client, "/api/v1/bootstrap-tokens", {"name": "revoked"})
    assert client.delete(f"/api/v1/bootstrap-tokens/{revoked['id']}").status_code == 204
    error(node.register(revoked["token"], "n4"), 401)
    assert "unknown group" in error(
        client.post("/api/v1/bootstrap-tokens", json={"name": "x", "group_id": "nope"}), 422
    )


def test_max_uses_holds_under_concurrent_registrations(client: TestClient) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "burst", "max_uses": 3})

    def attempt(index: int) -> int:
        node = _node(client, f"10.0.1.{index}")
        return node.register(token["token"], f"burst-{index:02d}").status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(attempt, range(12)))
    assert sorted(codes) == [201] * 3 + [403] * 9
    assert client.get(f"/api/v1/bootstrap-tokens/{token['id']}").json()["uses"] == 3
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 3


# ---- takeover ------------------------------------------------------------------------------


def test_a_bootstrap_token_cannot_take_over_a_node_of_another_group(client: TestClient) -> None:
    token_a, token_b = _fleet(client)
    real = _node(client, "10.0.0.1")
    first = real.register(token_a, "gpu-node-01", labels={"rack": "r1"})
    assert first.status_code == 201, first.text
    node_token = first.json()["node_token"]
    target_id = first.json()["target_id"]
    before = _target(client, target_id)
    assert before == {
        "id": target_id,
        "ip_address": "10.0.0.1",
        "labels": {"team": "a", "rack": "r1"},
        "group_ids": ["grp-a"],
    }
    assert real.checks(node_token, target_id) == 200  # now in the token cache

    attacker = _node(client, "10.6.6.6")
    attempts = [
        attacker.register(token_b, "gpu-node-01", labels={"rack": "evil"}),
        # claiming the real node's address changes nothing: it is not where it comes from
        attacker.register(token_b, "gpu-node-01", ip_address="10.0.0.1"),
        # a guessed node token is not the node's
        attacker.register(token_b, "GPU-Node-01", node_token="aamin_guessed"),
        # from the real node's own address, still without its node token
        real.register(token_b, "gpu-node-01"),
    ]
    for response in attempts:
        assert response.status_code == 202, response.text
        queued = response.json()
        assert "node_token" not in queued
        assert queued["status"] == "pending"
        assert response.headers["location"] == queued["poll_url"]
        assert attacker.poll(queued).json()["status"] == "pending"
        assert attacker.poll(queued).json()["node_token"] is None
    reasons = [r.json()["reasons"] for r in attempts]
    assert "carries no node_token" in reasons[0][0]
    assert "is not the address the request came from (10.6.6.6)" in reasons[1][1]
    assert "not the current token of gpu-node-01" in reasons[2][0]
    assert len(reasons[3]) == 1

    # by target id: refused outright
    detail = error(attacker.register(token_b, target_id), 409)
    assert "is the id of another target" in detail

    assert _target(client, target_id) == before
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 1
    assert real.checks(node_token, target_id) == 200
    sd = client.get("/api/v1/sd/prometheus").json()
    assert sd[0]["targets"] == ["10.0.0.1:9100"]
    assert sd[0]["labels"]["groups"] == ",grp-a,"
    pending = client.get("/api/v1/registrations/pending").json()
    assert pending["pagination"]["total"] == 4
    assert {p["target"]["ip_address"] for p in pending["data"]} == {"10.0.0.1"}


def test_re_registration_with_the_current_node_token_works(client: TestClient) -> None:
    token_a, _ = _fleet(client)
    first = _node(client, "10.0.0.5").register(token_a, "gpu-node-01").json()
    moved = _node(client, "10.0.0.6")  # the node got a new address
    old = first["node_token"]
    assert moved.checks(old, first["target_id"]) == 200  # cached
    second = moved.register(token_a, "gpu-node-01", node_token=old, labels={"rack": "r2"})
    assert second.status_code == 201, second.text
    assert second.json()["target_id"] == first["target_id"]
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 1
    target = client.get("/api/v1/targets/gpu-node-01").json()
    assert target["ip_address"] == "10.0.0.6"
    assert target["labels"] == {"team": "a", "rack": "r2"}
    assert len(target["exporters"]) == 1
    # replaced: the old token fails at once on this replica, although it was cached
    error(
        moved.http.get(
            "/api/v1/checks/target/gpu-node-01", headers={"Authorization": f"Bearer {old}"}
        ),
        401,
    )
    assert moved.checks(second.json()["node_token"], "gpu-node-01") == 200


# ---- the queue -----------------------------------------------------------------------------


def test_approval_applies_the_change_and_the_node_collects_its_token_once(
    client: TestClient,
) -> None:
    token_a, token_b = _fleet(client)
    real = _node(client, "10.0.0.1")
    first = real.register(token_a, "gpu-node-01").json()
    reinstalled = _node(client, "10.0.0.2")  # same name, new disk: no node token any more
    response = reinstalled.register(token_b, "gpu-node-01", labels={"rack": "r9"})
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["poll_token"].startswith("aamip_")

    listed = client.get("/api/v1/registrations/pending").json()["data"]
    assert [p["id"] for p in listed] == [queued["registration_id"]]
    entry = listed[0]
    assert entry["status"] == "pending"
    assert entry["ip_address"] == "10.0.0.2"
    assert entry["source_address"] == "10.0.0.2"
    assert entry["labels"] == {"rack": "r9"}
    assert entry["group_id"] == "grp-b"
    assert entry["bootstrap_token_name"] == "b"
    assert entry["target"]["group_ids"] == ["grp-a"]
    # a node cannot read the queue, nor approve itself
    poll_auth = {"Authorization": f"Bearer {queued['poll_token']}"}
    error(reinstalled.http.get("/api/v1/registrations/pending", headers=poll_auth), 401)
    node_auth = {"Authorization": f"Bearer {first['node_token']}"}
    error(
        reinstalled.http.post(
            f"/api/v1/registrations/{queued['registration_id']}/approve", headers=node_auth
        ),
        403,
    )
    error(reinstalled.http.get(queued["poll_url"], headers=node_auth), 401)

    approved = client.post(f"/api/v1/registrations/{queued['registration_id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == "admin"
    assert _target(client, "gpu-node-01") == {
        "id": first["target_id"],
        "ip_address": "10.0.0.2",
        "labels": {"team": "b", "rack": "r9"},
        "group_ids": ["grp-a", "grp-b"],
    }
    error(client.post(f"/api/v1/registrations/{queued['registration_id']}/approve"), 409)
    assert client.get("/api/v1/registrations/pending").json()["data"] == []

    collected = reinstalled.poll(queued)
    assert collected.status_code == 200, collected.text
    answer = collected.json()
    assert answer["status"] == "approved"
    assert answer["target_id"] == first["target_id"]
    assert answer["group_ids"] == ["grp-a", "grp-b"]
    new_token = answer["node_token"]
    assert new_token.startswith("aamin_")
    assert "already collected" in error(reinstalled.poll(queued), 409)
    assert reinstalled.checks(new_token, "gpu-node-01") == 200
    assert real.checks(first["node_token"], "gpu-node-01") == 401

    audit = client.get(
        "/api/v1/audit",
        params={"entity_type": "registration", "entity_id": queued["registration_id"]},
    ).json()["data"]
    assert {r["action"] for r in audit} == {"create", "approve"}
    assert queued["poll_token"] not in str(audit)
    assert new_token not in str(audit)


def test_rejection_discards_the_registration(client: TestClient) -> None:
    token_a, token_b = _fleet(client)
    real = _node(client, "10.0.0.1")
    first = real.register(token_a, "gpu-node-01").json()
    before = _target(client, "gpu-node-01")
    queued = _node(client, "10.6.6.6").register(token_b, "gpu-node-01").json()
    rejected = client.post(
        f"/api/v1/registrations/{queued['registration_id']}/reject",
        json={"reason": "not one of ours"},
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert _target(client, "gpu-node-01") == before
    assert real.checks(first["node_token"], "gpu-node-01") == 200
    detail = error(real.poll(queued), 403)
    assert "rejected by admin: not one of ours" in detail
    assert "is rejected, not pending" in error(
        client.post(f"/api/v1/registrations/{queued['registration_id']}/approve"), 409
    )
    assert client.get("/api/v1/registrations/pending").json()["data"] == []
    audit = client.get("/api/v1/audit", params={"entity_type": "registration"}).json()["data"]
    assert {r["action"] for r in audit} == {"create", "reject"}
    error(client.post("/api/v1/registrations/reg-nope/reject"), 404)
    error(client.post("/api/v1/registrations/reg-nope/approve"), 404)


def test_ip_mismatch_goes_to_the_queue(client: TestClient) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "t"})["token"]
    loopback = _node(client, "127.0.0.1")
    queued = loopback.register(token, "gpu-node-07", ip_address="10.9.9.9")
    assert queued.status_code == 202, queued.text
    assert queued.json()["reasons"] == [
        "ip_address 10.9.9.9 is not the address the request came from (127.0.0.1)"
    ]
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 0
    # an address that cannot be told (no TCP peer address) is no match either
    unknown = Node(TestClient(client.app), "").register(token, "gpu-node-08", "127.0.0.1")
    assert unknown.status_code == 202
    assert "(unknown)" in unknown.json()["reasons"][0]
    # the loopback node claiming its own address needs no approval
    assert loopback.register(token, "gpu-node-09", ip_address="127.0.0.1").status_code == 201

    approved = client.post(f"/api/v1/registrations/{queued.json()['registration_id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["target_id"]
    assert client.get("/api/v1/targets/gpu-node-07").json()["ip_address"] == "10.9.9.9"
    assert loopback.poll(queued.json()).json()["status"] == "approved"


def test_forwarded_for_is_believed_only_from_trusted_proxies(
    client: TestClient, settings: Settings
) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "t"})["token"]

    def via(api: TestClient, hostname: str, forwarded_for: str) -> httpx2.Response:
        return api.post(
            "/api/v1/bootstrap/register",
            json={"hostname": hostname, "ip_address": "10.0.0.7"},
            headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded_for},
        )

    # no trusted proxies: the header is the node's own word, and counts for nothing
    spoofed = via(_node(client, "127.0.0.1").http, "n1", "10.0.0.7")
    assert spoofed.status_code == 202, spoofed.text
    assert "(127.0.0.1)" in spoofed.json()["reasons"][0]
    trusting = settings.model_copy(update={"trusted_proxies": ["127.0.0.0/8"]})
    with TestClient(create_app(trusting), client=("127.0.0.1", 40000)) as proxied:
        assert via(proxied, "n2", "10.0.0.7").status_code == 201
        # the proxy saw the request come from 10.0.0.8 (the node put 10.0.0.7 in front)
        other = via(proxied, "n3", "10.0.0.7, 10.0.0.8")
        assert other.status_code == 202
        assert "(10.0.0.8)" in other.json()["reasons"][0]
        # a hop that is no address: the source cannot be told
        garbled = via(proxied, "n4", "10.0.0.7, nonsense")
        assert "(unknown)" in garbled.json()["reasons"][0]
    assert client.get("/api/v1/targets/n2").json()["ip_address"] == "10.0.0.7"
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 1


def test_labels_are_limited(client: TestClient) -> None:
    token = create(
        client,
        "/api/v1/bootstrap-tokens",
        {"name": "t", "allowed_labels": ["rack", "gpu", *(f"k{i}" for i in range(40))]},
    )
    node = _node(client)

    def refused(labels: dict[str, str]) -> str:
        return error(node.register(token["token"], "gpu-node-01", labels=labels), 422)

    detail = refused({f"label_{i}": "x" for i in range(10_000)})
    assert "10000 labels sent; a node may send at most 32" in detail
    assert len(detail) < 300
    # 10,000 labels of 1 KB: refused before the body is read (the server's body limit)
    # or by the count; either way, nothing is stored
    flood = {f"label_{i}": "x" * 1024 for i in range(10_000)}
    response = node.register(token["token"], "gpu-node-01", labels=flood)
    assert response.status_code in (413, 422), response.text
    assert response.json()["detail"]
    assert "at most 32" in refused({f"k{i}": "v" for i in range(33)})
    detail = refused({"rack": "r1", "evil": "x", "owner": "y"})
    assert "'evil', 'owner' not allowed by bootstrap token 't'" in detail
    assert "'rack'" not in detail.split("not allowed")[0]
    assert "'__meta'" in refused({"__meta": "x"})
    assert "'0rack'" in refused({"0rack": "x"})
    assert "'gpu' are longer than 256" in refused({"gpu": "x" * 257})
    # nothing was stored, no use was counted
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 0
    assert client.get(f"/api/v1/bootstrap-tokens/{token['id']}").json()["uses"] == 0
    assert client.get("/api/v1/registrations/pending").json()["pagination"]["total"] == 0
    allowed = node.register(token["token"], "gpu-node-01", labels={"rack": "r1", "gpu": "x" * 256})
    assert allowed.status_code == 201, allowed.text


def test_a_token_without_allowed_labels_takes_no_node_labels(client: TestClient) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "plain", "labels": {"a": "1"}})
    detail = error(_node(client).register(token["token"], "n1", labels={"a": "2"}), 422)
    assert "'a' not allowed by bootstrap token 'plain' (it allows no node-supplied labels" in detail
    assert _node(client).register(token["token"], "n1").status_code == 201
    assert client.get("/api/v1/targets/n1").json()["labels"] == {"a": "1"}


def test_pending_registrations_expire(client: TestClient) -> None:
    token_a, token_b = _fleet(client)
    _node(client, "10.0.0.1").register(token_a, "gpu-node-01")
    queued = _node(client, "10.6.6.6").register(token_b, "gpu-node-01").json()
    past = datetime.now(UTC) - timedelta(seconds=1)
    with app_services(client).sessionmaker.begin() as session:
        session.execute(update(PendingRegistration).values(expires_at=past))
    assert "expired" in error(_node(client).poll(queued), 404)
    assert "expired" in error(
        client.post(f"/api/v1/registrations/{queued['registration_id']}/approve"), 404
    )
    assert client.get("/api/v1/registrations/pending").json()["data"] == []
    # the next queued registration removes the expired one
    _node(client, "10.6.6.7").register(token_b, "gpu-node-01")
    error(_node(client).poll(queued), 404)
    assert "does not exist" in error(_node(client).poll(queued), 404)
    assert _target(client, "gpu-node-01")["ip_address"] == "10.0.0.1"


def test_the_queue_is_bounded_and_revoking_a_token_drops_its_registrations(
    client: TestClient, settings: Settings
) -> None:
    small = settings.model_copy(update={"registration_pending_max": 1})
    with TestClient(create_app(small), headers=AUTH, client=("10.6.6.6", 1)) as api:
        token = create(api, "/api/v1/bootstrap-tokens", {"name": "t"})
        node = Node(api, "10.6.6.6")
        first = node.register(token["token"], "n1", ip_address="10.0.0.1")
        assert first.status_code == 202
        detail = error(node.register(token["token"], "n2", ip_address="10.0.0.2"), 409)
        assert "1 registrations already wait for an admin" in detail
        assert api.get(f"/api/v1/bootstrap-tokens/{token['id']}").json()["uses"] == 1
        assert api.delete(f"/api/v1/bootstrap-tokens/{token['id']}").status_code == 204
        error(api.get(f"/api/v1/registrations/{first.json()['registration_id']}"), 404)
        assert api.get("/api/v1/registrations/pending").json()["data"] == []


def test_poll_needs_the_poll_token(client: TestClient) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "t"})["token"]
    queued = _node(client, "127.0.0.1").register(token, "n1", ip_address="10.0.0.1").json()
    node = _node(client)
    wrong = {"Authorization": "Bearer aamip_wrong"}
    assert "not the poll token" in error(node.http.get(queued["poll_url"], headers=wrong), 401)
    error(node.http.get(queued["poll_url"]), 401)
    error(node.http.get("/api/v1/bootstrap/registrations/reg-nope", headers=wrong), 404)


# ---- the token cache across replicas -------------------------------------------------------


def test_a_replaced_token_stops_working_on_another_replica_within_seconds(
    client: TestClient, settings: Settings
) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "t"})["token"]
    node = _node(client, "10.0.0.5")
    first = node.register(token, "gpu-node-01").json()
    old = first["node_token"]
    # a second replica on the same database, with a cache that would believe a token for
    # a minute; it checks (and caches) the node's token
    other_settings = settings.model_copy(update={"node_token_cache_ttl": 60.0})
    with TestClient(create_app(other_settings), client=("10.0.0.5", 40000)) as replica:
        other = Node(replica, "10.0.0.5")
        assert other.checks(old, "gpu-node-01") == 200
        assert other.checks(old, "gpu-node-01") == 200
        second = node.register(token, "gpu-node-01", node_token=old)
        assert second.status_code == 201, second.text
        assert node.checks(old, "gpu-node-01") == 401  # this replica: at once
        wait_for(
            lambda: other.checks(old, "gpu-node-01") == 401,
            timeout=5,
            interval=0.05,
            what="the other replica to stop believing the replaced token",
        )
        assert other.checks(second.json()["node_token"], "gpu-node-01") == 200


def test_a_deleted_targets_token_stops_working_on_another_replica_within_seconds(
    client: TestClient, settings: Settings
) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "t"})["token"]
    node = _node(client, "10.0.0.5")
    registered = node.register(token, "gpu-node-01").json()
    node_token = registered["node_token"]
    long_cache = settings.model_copy(update={"node_token_cache_ttl": 3600.0})
    with TestClient(create_app(long_cache), client=("10.0.0.5", 40000)) as replica:
        other = Node(replica, "10.0.0.5")
        assert other.checks(node_token, "gpu-node-01") == 200  # now cached for an hour
        assert client.delete(f"/api/v1/targets/{registered['target_id']}").status_code == 204
        wait_for(
            lambda: other.checks(node_token, "gpu-node-01") == 401,
            timeout=5,
            interval=0.05,
            what="the other replica to stop believing the deleted target's token",
        )


def test_without_a_cache_every_request_asks_the_database(
    client: TestClient, settings: Settings
) -> None:
    token = create(client, "/api/v1/bootstrap-tokens", {"name": "t"})["token"]
    no_cache = settings.model_copy(update={"node_token_cache_ttl": 0.0})
    with TestClient(create_app(no_cache), client=("10.0.0.5", 40000)) as api:
        node = Node(api, "10.0.0.5")
        node_token = node.register(token, "gpu-node-01").json()["node_token"]
        assert node.checks(node_token, "gpu-node-01") == 200
        assert app_services(api).node_tokens.get(hash_token(node_token), 0) is None
