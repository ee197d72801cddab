"""Script templates, policies and the nodes' check endpoints, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient

from tests.support.api import app_services, create, error

# The spec's example 3, as written.
MOUNT_CHECK: dict[str, Any] = {
    "name": "mount-check",
    "script_type": "mount",
    "script_content": '#!/bin/bash\nPATHS="$1"\nfor path in ${PATHS//,/ }; do\n  if mountpoint'
    ' -q "$path"; then\n    echo "mount_status{path=\\"$path\\"} 1"\n  else\n    echo '
    '"mount_status{path=\\"$path\\"} 0"\n  fi\ndone',
    "language": "bash",
    "default_config": {"paths": "/data"},
    "version": "1.0.0",
}


def _fleet(client: TestClient) -> dict[str, object]:
    create(client, "/api/v1/groups", {"id": "ml-training-group", "name": "ML training"})
    create(client, "/api/v1/groups", {"id": "inference", "name": "inference"})
    create(
        client,
        "/api/v1/targets",
        {
            "id": "gpu-node-01",
            "hostname": "gpu-node-01",
            "ip_address": "10.0.0.1",
            "group_ids": ["ml-training-group"],
        },
    )
    create(
        client,
        "/api/v1/targets",
        {
            "id": "gpu-node-02",
            "hostname": "gpu-node-02",
            "ip_address": "10.0.0.2",
            "group_ids": ["inference"],
        },
    )
    return create(client, "/api/v1/script-templates", MOUNT_CHECK)


def test_example_3_effective_check(client: TestClient) -> None:
    template = _fleet(client)
    assert template["hash"] == hashlib.sha256(MOUNT_CHECK["script_content"].encode()).hexdigest()
    assert template["timeout_seconds"] == 30
    create(
        client,
        "/api/v1/script-policies",
        {
            "template_id": template["id"],
            "scope": "group",
            "group_id": "ml-training-group",
            "config": {"paths": "/data,/mnt/models,/mnt/datasets"},
            "is_active": True,
        },
    )
    checks = client.get("/api/v1/checks/node", params={"hostname": "gpu-node-01"}).json()
    assert client.get("/api/v1/checks/target/gpu-node-01").json() == checks
    # the seed's shape, plus the signatures (tests/api/test_signing.py verifies them)
    signatures = checks[0].pop("signatures")
    assert [s["key_id"] for s in signatures] == app_services(client).signer.key_ids
    assert checks == [
        {
            "name": "mount-check",
            "script_type": "mount",
            "script_content": MOUNT_CHECK["script_content"],
            "language": "bash",
            "config": {"paths": "/data,/mnt/models,/mnt/datasets"},
            "version": "1.0.0",
            "hash": template["hash"],
            "timeout_seconds": 30,
        }
    ]
    assert client.get("/api/v1/checks/target/gpu-node-02").json() == []


def test_etag_and_304(client: TestClient) -> None:
    template = _fleet(client)
    create(client, "/api/v1/script-policies", {"template_id": "mount-check", "scope": "global"})
    first = client.get("/api/v1/checks/target/gpu-node-01")
    etag = first.headers["etag"]
    assert (
        client.get("/api/v1/checks/target/gpu-node-01", headers={"If-None-Match": etag}).status_code
        == 304
    )
    client.put(
        f"/api/v1/script-templates/{template['id']}",
        json={"script_content": "#!/bin/bash\necho up 1\n"},
    )
    changed = client.get("/api/v1/checks/target/gpu-node-01", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()[0]["hash"] == hashlib.sha256(b"#!/bin/bash\necho up 1\n").hexdigest()
    # switching the only policy off removes the check
    client.put(
        "/api/v1/script-policies/" + client.get("/api/v1/script-policies").json()["data"][0]["id"],
        json={"is_active": False},
    )
    assert client.get("/api/v1/checks/target/gpu-node-01").json() == []


def test_update_zero_and_false_are_values(client: TestClient) -> None:
    _fleet(client)
    policy = create(
        client,
        "/api/v1/script-policies",
        {"template_id": "mount-check", "scope": "global", "priority": 50},
    )
    updated = client.put(
        f"/api/v1/script-policies/{policy['id']}", json={"priority": 0, "is_active": False}
    ).json()
    assert (updated["priority"], updated["is_active"]) == (0, False)
    again = client.get(f"/api/v1/script-policies/{policy['id']}").json()
    assert (again["priority"], again["is_active"], again["config"]) == (0, False, {})


def test_policy_scope_validation(client: TestClient) -> None:
    _fleet(client)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"scope": "group"}, "group_id"),
        ({"scope": "group", "group_id": "nope"}, "nope"),
        ({"scope": "target"}, "target_id"),
        ({"scope": "target", "target_id": "gpu-node-01", "group_id": "inference"}, "group_id"),
        ({"scope": "global", "group_id": "inference"}, "global"),
        ({"scope": "planet"}, "scope"),
        ({"scope": "global", "config": {"paths": ["a"]}}, "paths"),
        ({"scope": "global", "config": {"bad key": 1}}, "bad key"),
    ]
    for body, needle in cases:
        detail = error(
            client.post("/api/v1/script-policies", json={"template_id": "mount-check", **body}), 422
        )
        assert needle in detail, (body, detail)
    assert "unknown script template" in error(
        client.post("/api/v1/script-policies", json={"template_id": "nope", "scope": "global"}), 422
    )
    assert client.get("/api/v1/script-policies").json()["pagination"]["total"] == 0


def test_template_validation_and_conflicts(client: TestClient) -> None:
    _fleet(client)
    error(client.post("/api/v1/script-templates", json=MOUNT_CHECK), 409)
    for bad in (
        {"name": "Mount Check"},
        {"name": "../x"},
        {"language": "perl"},
        {"timeout_seconds": 0},
        {"script_content": ""},
    ):
        error(
            client.post("/api/v1/script-templates", json={**MOUNT_CHECK, "name": "x", **bad}), 422
        )
    policy = create(
        client,
        "/api/v1/script-policies",
        {"template_id": "mount-check", "scope": "target", "target_id": "gpu-node-02"},
    )
    assert policy["id"] in error(client.delete("/api/v1/script-templates/mount-check"), 409)
    assert policy["id"] in error(client.delete("/api/v1/targets/gpu-node-02"), 409)
    group_policy = create(
        client,
        "/api/v1/script-policies",
        {"template_id": "mount-check", "scope": "group", "group_id": "inference"},
    )
    client.put("/api/v1/targets/gpu-node-02", json={"group_ids": []})
    assert group_policy["id"] in error(client.delete("/api/v1/groups/inference"), 409)


def test_explain_and_group_view_agree(client: TestClient) -> None:
    _fleet(client)
    create(
        client,
        "/api/v1/script-policies",
        {
            "id": "pol-global",
            "template_id": "mount-check",
            "scope": "global",
            "config": {"paths": "/global"},
        },
    )
    create(
        client,
        "/api/v1/script-policies",
        {
            "id": "pol-ml",
            "template_id": "mount-check",
            "scope": "group",
            "group_id": "ml-training-group",
            "config": {"paths": "/ml"},
            "priority": 10,
        },
    )
    explained = client.get("/api/v1/checks/target/gpu-node-01/explain").json()
    [check] = explained["checks"]
    assert check["enabled"] is True
    assert check["decided_by"]["policy_id"] == "pol-ml"
    assert check["config"]["paths"] == {
        "value": "/ml",
        "layer": "group",
        "policy_id": "pol-ml",
        "group_id": "ml-training-group",
    }
    assert [p["policy_id"] for p in check["policies"]] == ["pol-ml", "pol-global"]
    group_view = client.get("/api/v1/checks/group/ml-training-group").json()["checks"][0]
    assert group_view["config"]["paths"]["value"] == "/ml"  # same precedence as the node
    other = client.get("/api/v1/checks/group/inference").json()["checks"][0]
    assert other["config"]["paths"]["layer"] == "global"


def test_node_token_reads_only_its_own_checks(client: TestClient, anon: TestClient) -> None:
    _fleet(client)
    create(client, "/api/v1/script-policies", {"template_id": "mount-check", "scope": "global"})
    bootstrap = create(client, "/api/v1/bootstrap-tokens", {"name": "rack-7"})
    # gpu-node-01 was made by the admin: a bootstrap token alone only queues it for approval
    queued = anon.post(
        "/api/v1/bootstrap/register",
        json={"hostname": "gpu-node-01", "ip_address": "10.0.0.1"},
        headers={"Authorization": f"Bearer {bootstrap['token']}"},
    ).json()
    approve = client.post(f"/api/v1/registrations/{queued['registration_id']}/approve")
    assert approve.status_code == 200, approve.text
    node = anon.get(
        queued["poll_url"], headers={"Authorization": f"Bearer {queued['poll_token']}"}
    ).json()
    headers = {"Authorization": f"Bearer {node['node_token']}"}
    mine = anon.get("/api/v1/checks/node", params={"hostname": "gpu-node-01"}, headers=headers)
    assert mine.status_code == 200
    assert mine.json()[0]["name"] == "mount-check"
    assert anon.get("/api/v1/checks/target/gpu-node-01", headers=headers).status_code == 200
    error(anon.get("/api/v1/checks/target/gpu-node-02", headers=headers), 403)
    error(anon.get("/api/v1/checks/node", params={"hostname": "gpu-node-02"}, headers=headers), 403)
    for path in (
        "/api/v1/groups",
        "/api/v1/script-templates",
        "/api/v1/sd/prometheus",
        "/api/v1/checks/target/gpu-node-01/explain",
    ):
        error(anon.get(path, headers=headers), 403)
    error(
        anon.get(
            "/api/v1/checks/node",
            params={"hostname": "gpu-node-01"},
            headers={"Authorization": "Bearer aamin_not-a-token"},
        ),
        401,
    )
