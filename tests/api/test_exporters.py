from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import create, error


def _target(client: TestClient) -> None:
    create(
        client, "/api/v1/targets", {"id": "n1", "hostname": "gpu-node-01", "ip_address": "10.0.0.1"}
    )


def test_crud_and_default_ports(client: TestClient) -> None:
    _target(client)
    node = create(client, "/api/v1/exporters", {"target_id": "gpu-node-01"})
    assert (node["type"], node["port"], node["metrics_path"], node["enabled"]) == (
        "node_exporter",
        9100,
        "/metrics",
        True,
    )
    dcgm = create(client, "/api/v1/exporters", {"target_id": "n1", "type": "dcgm_exporter"})
    assert dcgm["port"] == 9400
    got = client.get(f"/api/v1/exporters/{dcgm['id']}").json()
    assert got["target_id"] == "n1"
    assert client.delete(f"/api/v1/exporters/{dcgm['id']}").status_code == 204
    error(client.get(f"/api/v1/exporters/{dcgm['id']}"), 404)
    assert client.get("/api/v1/targets/n1").json()["exporters"][0]["id"] == node["id"]


def test_put_enabled_false_really_disables(client: TestClient) -> None:
    _target(client)
    node = create(client, "/api/v1/exporters", {"target_id": "n1"})
    updated = client.put(f"/api/v1/exporters/{node['id']}", json={"enabled": False}).json()
    assert updated["enabled"] is False
    assert updated["port"] == 9100
    assert client.get(f"/api/v1/exporters/{node['id']}").json()["enabled"] is False
    assert client.get("/api/v1/sd/prometheus").json() == []
    listed = client.get("/api/v1/exporters", params={"enabled": "false"}).json()
    assert [e["id"] for e in listed["data"]] == [node["id"]]
    reenabled = client.put(f"/api/v1/exporters/{node['id']}", json={"enabled": True}).json()
    assert reenabled["enabled"] is True
    assert len(client.get("/api/v1/sd/prometheus").json()) == 1


def test_bad_exporters(client: TestClient) -> None:
    _target(client)
    assert "port" in error(
        client.post("/api/v1/exporters", json={"target_id": "n1", "type": "custom"}), 422
    )
    assert "no-such" in error(client.post("/api/v1/exporters", json={"target_id": "no-such"}), 422)
    error(client.post("/api/v1/exporters", json={"target_id": "n1", "type": "snmp"}), 422)
    error(client.post("/api/v1/exporters", json={"target_id": "n1", "port": 70000}), 422)
    error(
        client.post(
            "/api/v1/exporters", json={"target_id": "n1", "port": 9100, "metrics_path": "no-slash"}
        ),
        422,
    )
    error(
        client.post(
            "/api/v1/exporters", json={"target_id": "n1", "port": 9100, "metrics_path": "/a b"}
        ),
        422,
    )
    node = create(client, "/api/v1/exporters", {"target_id": "n1"})
    assert "9100" in error(
        client.post("/api/v1/exporters", json={"target_id": "n1", "type": "custom", "port": 9100}),
        409,
    )
    dcgm = create(client, "/api/v1/exporters", {"target_id": "n1", "type": "dcgm_exporter"})
    error(client.put(f"/api/v1/exporters/{dcgm['id']}", json={"port": 9100}), 409)
    error(client.put(f"/api/v1/exporters/{node['id']}", json={"port": 0}), 422)
    assert client.get("/api/v1/exporters").json()["pagination"]["total"] == 2


def test_list_filters(client: TestClient) -> None:
    _target(client)
    create(
        client,
        "/api/v1/targets",
        {
            "id": "n2",
            "hostname": "n2",
            "ip_address": "10.0.0.2",
            "exporters": [{"type": "dcgm_exporter"}],
        },
    )
    create(client, "/api/v1/exporters", {"target_id": "n1"})
    by_type = client.get("/api/v1/exporters", params={"type": "dcgm_exporter"}).json()
    assert [e["target_id"] for e in by_type["data"]] == ["n2"]
    by_target = client.get("/api/v1/exporters", params={"target_id": "gpu-node-01"}).json()
    assert [e["target_id"] for e in by_target["data"]] == ["n1"]
