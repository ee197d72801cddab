from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import create, error


def _groups(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "grp-123", "name": "production"})
    create(client, "/api/v1/groups", {"id": "grp-456", "name": "development"})


def test_create_with_inline_exporters_and_ordered_groups(client: TestClient) -> None:
    _groups(client)
    target = create(
        client,
        "/api/v1/targets",
        {
            "id": "gpu-node-01",
            "hostname": "GPU-Node-01",
            "ip_address": "10.0.0.1",
            "group_ids": ["development", "grp-123"],
            "labels": {"type": "gpu"},
            "exporters": [
                {"type": "node_exporter"},
                {"type": "dcgm_exporter"},
                {"type": "custom", "port": 9835, "metrics_path": "/probe/metrics"},
            ],
        },
    )
    assert target["hostname"] == "gpu-node-01"
    assert target["group_ids"] == ["grp-456", "grp-123"]  # names resolved, order kept
    assert target["primary_group_id"] == "grp-456"
    assert target["status"] == "active"
    ports = {e["type"]: e["port"] for e in target["exporters"]}
    assert ports == {"node_exporter": 9100, "dcgm_exporter": 9400, "custom": 9835}
    got = client.get("/api/v1/targets/gpu-node-01").json()
    assert got["group_ids"] == ["grp-456", "grp-123"]
    assert client.get("/api/v1/targets/GPU-node-01").json()["id"] == "gpu-node-01"


def test_change_primary_group(client: TestClient) -> None:
    _groups(client)
    create(
        client,
        "/api/v1/targets",
        {
            "id": "n1",
            "hostname": "n1",
            "ip_address": "10.0.0.1",
            "group_ids": ["grp-123", "grp-456"],
        },
    )
    swapped = client.put("/api/v1/targets/n1", json={"group_ids": ["grp-456", "grp-123"]}).json()
    assert swapped["group_ids"] == ["grp-456", "grp-123"]
    assert swapped["primary_group_id"] == "grp-456"
    assert client.get("/api/v1/targets/n1").json()["group_ids"] == ["grp-456", "grp-123"]
    only = client.put("/api/v1/targets/n1", json={"group_ids": ["grp-123"]}).json()
    assert only["group_ids"] == ["grp-123"]
    none = client.put("/api/v1/targets/n1", json={"group_ids": []}).json()
    assert none["group_ids"] == []
    assert none["primary_group_id"] is None


def test_duplicate_hostname_is_409(client: TestClient) -> None:
    create(client, "/api/v1/targets", {"hostname": "gpu-node-01", "ip_address": "10.0.0.1"})
    detail = error(
        client.post("/api/v1/targets", json={"hostname": "gpu-node-01", "ip_address": "10.0.0.2"}),
        409,
    )
    assert "gpu-node-01" in detail
    create(
        client,
        "/api/v1/targets",
        {"id": "two", "hostname": "gpu-node-02", "ip_address": "10.0.0.2"},
    )
    error(client.put("/api/v1/targets/two", json={"hostname": "gpu-node-01"}), 409)


def test_unknown_group_is_422_naming_it(client: TestClient) -> None:
    _groups(client)
    detail = error(
        client.post(
            "/api/v1/targets",
            json={
                "hostname": "n1",
                "ip_address": "10.0.0.1",
                "group_ids": ["grp-123", "no-such-group"],
            },
        ),
        422,
    )
    assert "no-such-group" in detail
    assert "grp-123" not in detail
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 0
    error(
        client.post(
            "/api/v1/targets",
            json={
                "hostname": "n1",
                "ip_address": "10.0.0.1",
                "group_ids": ["grp-123", "production"],
            },
        ),
        422,
    )


def test_bad_ip_and_hostname_are_422(client: TestClient) -> None:
    for ip in ("10.0.0.300", "not-an-ip", "", "10.0.0.1; rm -rf /"):
        detail = error(
            client.post("/api/v1/targets", json={"hostname": "n1", "ip_address": ip}), 422
        )
        assert "ip_address" in detail
    for hostname in ("bad host", "-leading", "a" * 64, "x/../y", ""):
        detail = error(
            client.post("/api/v1/targets", json={"hostname": hostname, "ip_address": "10.0.0.1"}),
            422,
        )
        assert "hostname" in detail
    v6 = create(client, "/api/v1/targets", {"hostname": "v6", "ip_address": "fd00::1"})
    assert v6["ip_address"] == "fd00::1"
    assert client.get("/api/v1/targets").json()["pagination"]["total"] == 1


def test_exporter_port_clash_inline_is_422(client: TestClient) -> None:
    detail = error(
        client.post(
            "/api/v1/targets",
            json={
                "hostname": "n1",
                "ip_address": "10.0.0.1",
                "exporters": [{"type": "node_exporter"}, {"type": "custom", "port": 9100}],
            },
        ),
        422,
    )
    assert "9100" in detail
    error(
        client.post(
            "/api/v1/targets",
            json={"hostname": "n1", "ip_address": "10.0.0.1", "exporters": [{"type": "custom"}]},
        ),
        422,
    )


def test_update_is_partial(client: TestClient) -> None:
    _groups(client)
    create(
        client,
        "/api/v1/targets",
        {
            "id": "n1",
            "hostname": "n1",
            "ip_address": "10.0.0.1",
            "group_ids": ["grp-123"],
            "labels": {"rack": "r1"},
        },
    )
    updated = client.put("/api/v1/targets/n1", json={"status": "maintenance"}).json()
    assert updated["status"] == "maintenance"
    assert updated["labels"] == {"rack": "r1"}
    assert updated["group_ids"] == ["grp-123"]
    assert updated["ip_address"] == "10.0.0.1"
    error(client.put("/api/v1/targets/n1", json={"status": "broken"}), 422)
    error(client.put("/api/v1/targets/n1", json={"ip_address": None}), 422)
    error(client.put("/api/v1/targets/nope", json={"status": "active"}), 404)


def test_delete_target_removes_exporters(client: TestClient) -> None:
    create(
        client,
        "/api/v1/targets",
        {
            "id": "n1",
            "hostname": "n1",
            "ip_address": "10.0.0.1",
            "exporters": [{"type": "node_exporter"}],
        },
    )
    assert client.get("/api/v1/exporters").json()["pagination"]["total"] == 1
    assert client.delete("/api/v1/targets/n1").status_code == 204
    assert client.get("/api/v1/exporters").json()["pagination"]["total"] == 0
    error(client.delete("/api/v1/targets/n1"), 404)


def test_list_filters(client: TestClient) -> None:
    _groups(client)
    create(
        client,
        "/api/v1/targets",
        {
            "hostname": "a",
            "ip_address": "10.0.0.1",
            "group_ids": ["grp-123"],
            "labels": {"type": "gpu"},
        },
    )
    create(
        client,
        "/api/v1/targets",
        {
            "hostname": "b",
            "ip_address": "10.0.0.2",
            "group_ids": ["grp-456", "grp-123"],
            "status": "inactive",
        },
    )
    create(client, "/api/v1/targets", {"hostname": "c", "ip_address": "10.0.0.3"})

    def hosts(**params: str) -> list[str]:
        return [t["hostname"] for t in client.get("/api/v1/targets", params=params).json()["data"]]

    assert hosts() == ["a", "b", "c"]
    assert hosts(group_id="production") == ["a", "b"]
    assert hosts(group_id="grp-456") == ["b"]
    assert hosts(group_id="no-such") == []
    assert hosts(status="inactive") == ["b"]
    assert hosts(hostname="c") == ["c"]
    assert hosts(label="type=gpu") == ["a"]
