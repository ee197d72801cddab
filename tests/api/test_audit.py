from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import create, error


def test_every_change_is_recorded(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "g", "name": "gpu"})
    client.put("/api/v1/groups/g", json={"description": "all GPUs"})
    create(
        client,
        "/api/v1/targets",
        {
            "id": "n1",
            "hostname": "n1",
            "ip_address": "10.0.0.1",
            "group_ids": ["g"],
            "exporters": [{}],
        },
    )
    exporter_id = client.get("/api/v1/exporters").json()["data"][0]["id"]
    client.put(f"/api/v1/exporters/{exporter_id}", json={"enabled": False})
    client.delete("/api/v1/targets/n1")
    client.delete("/api/v1/groups/g")

    records = client.get("/api/v1/audit").json()
    assert records["pagination"]["total"] == 6
    seen = [(r["action"], r["entity_type"], r["entity_id"]) for r in reversed(records["data"])]
    assert seen == [
        ("create", "group", "g"),
        ("update", "group", "g"),
        ("create", "target", "n1"),
        ("update", "exporter", exporter_id),
        ("delete", "target", "n1"),
        ("delete", "group", "g"),
    ]
    assert all(r["actor"] == "admin" for r in records["data"])
    update = next(
        r for r in records["data"] if r["action"] == "update" and r["entity_type"] == "group"
    )
    assert update["before"]["description"] == ""
    assert update["after"]["description"] == "all GPUs"
    deleted = records["data"][0]
    assert deleted["before"]["id"] == "g"
    assert deleted["after"] is None


def test_failed_change_leaves_no_record(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "g", "name": "gpu"})
    error(client.post("/api/v1/groups", json={"id": "g", "name": "again"}), 409)
    error(
        client.post(
            "/api/v1/targets",
            json={"hostname": "n", "ip_address": "10.0.0.1", "group_ids": ["missing"]},
        ),
        422,
    )
    assert client.get("/api/v1/audit").json()["pagination"]["total"] == 1


def test_filters(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "g", "name": "gpu"})
    create(client, "/api/v1/targets", {"id": "n1", "hostname": "n1", "ip_address": "10.0.0.1"})
    by_type = client.get("/api/v1/audit", params={"entity_type": "target"}).json()
    assert [r["entity_id"] for r in by_type["data"]] == ["n1"]
    by_id = client.get("/api/v1/audit", params={"entity_id": "g", "action": "create"}).json()
    assert by_id["pagination"]["total"] == 1
    error(client.get("/api/v1/audit", params={"action": "explode"}), 422)
