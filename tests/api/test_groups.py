from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import create, error


def test_create_get_update_delete(client: TestClient) -> None:
    group = create(
        client, "/api/v1/groups", {"id": "grp-123", "name": "production", "labels": {"env": "prod"}}
    )
    assert group["id"] == "grp-123"
    assert group["labels"] == {"env": "prod"}
    assert client.get("/api/v1/groups/grp-123").json()["name"] == "production"
    # a reference by unique name works too
    assert client.get("/api/v1/groups/production").json()["id"] == "grp-123"

    updated = client.put("/api/v1/groups/grp-123", json={"description": "prod GPUs"}).json()
    assert updated["description"] == "prod GPUs"
    assert updated["name"] == "production"  # absent fields unchanged
    assert updated["labels"] == {"env": "prod"}
    cleared = client.put("/api/v1/groups/grp-123", json={"description": "", "labels": {}}).json()
    assert cleared["description"] == ""  # "" is a real value
    assert cleared["labels"] == {}

    assert client.delete("/api/v1/groups/grp-123").status_code == 204
    error(client.get("/api/v1/groups/grp-123"), 404)


def test_generated_id(client: TestClient) -> None:
    group = create(client, "/api/v1/groups", {"name": "development"})
    assert group["id"].startswith("grp-")


def test_duplicate_id_and_name_conflict(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "a", "name": "alpha"})
    assert "already exists" in error(
        client.post("/api/v1/groups", json={"id": "a", "name": "other"}), 409
    )
    assert "alpha" in error(client.post("/api/v1/groups", json={"name": "alpha"}), 409)
    create(client, "/api/v1/groups", {"id": "b", "name": "beta"})
    assert "alpha" in error(client.put("/api/v1/groups/b", json={"name": "alpha"}), 409)


def test_bad_input_is_422(client: TestClient) -> None:
    assert "id" in error(client.post("/api/v1/groups", json={"id": "../etc", "name": "x"}), 422)
    assert "id" in error(client.post("/api/v1/groups", json={"id": "Has Space", "name": "x"}), 422)
    assert "name" in error(client.post("/api/v1/groups", json={"name": ""}), 422)
    assert "bad-key" in error(
        client.post("/api/v1/groups", json={"name": "x", "labels": {"bad-key": "v"}}), 422
    )
    assert "unknown" in error(client.post("/api/v1/groups", json={"name": "x", "unknown": 1}), 422)
    create(client, "/api/v1/groups", {"id": "g", "name": "g"})
    assert "null" in error(client.put("/api/v1/groups/g", json={"name": None}), 422)
    error(
        client.post(
            "/api/v1/groups", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
    )
    assert client.get("/api/v1/groups").json()["pagination"]["total"] == 1


def test_delete_group_in_use_names_targets(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "prod", "name": "production"})
    for n in (1, 2):
        create(
            client,
            "/api/v1/targets",
            {"hostname": f"gpu-node-0{n}", "ip_address": f"10.0.0.{n}", "group_ids": ["prod"]},
        )
    detail = error(client.delete("/api/v1/groups/prod"), 409)
    assert "gpu-node-01" in detail
    assert "gpu-node-02" in detail
    assert client.get("/api/v1/groups/prod").status_code == 200


def test_pagination_totals(client: TestClient) -> None:
    for i in range(7):
        create(client, "/api/v1/groups", {"id": f"g{i}", "name": f"group {i}"})
    first = client.get("/api/v1/groups", params={"limit": 3}).json()
    assert first["pagination"] == {"page": 1, "limit": 3, "total": 7, "total_pages": 3}
    assert [g["id"] for g in first["data"]] == ["g0", "g1", "g2"]
    last = client.get("/api/v1/groups", params={"limit": 3, "page": 3}).json()
    assert [g["id"] for g in last["data"]] == ["g6"]
    beyond = client.get("/api/v1/groups", params={"limit": 3, "page": 4}).json()
    assert beyond["data"] == []
    assert beyond["pagination"]["total"] == 7
    error(client.get("/api/v1/groups", params={"limit": 0}), 422)
    error(client.get("/api/v1/groups", params={"page": 0}), 422)


def test_list_filters(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "a", "name": "alpha", "labels": {"env": "prod"}})
    create(client, "/api/v1/groups", {"id": "b", "name": "beta", "labels": {"env": "dev"}})
    by_name = client.get("/api/v1/groups", params={"name": "beta"}).json()
    assert [g["id"] for g in by_name["data"]] == ["b"]
    by_label = client.get("/api/v1/groups", params={"label": "env=prod"}).json()
    assert [g["id"] for g in by_label["data"]] == ["a"]
    assert by_label["pagination"]["total"] == 1
    error(client.get("/api/v1/groups", params={"label": "nonsense"}), 400)
