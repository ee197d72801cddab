from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import create, error


def _fleet(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "grp-123", "name": "production"})
    create(client, "/api/v1/groups", {"id": "grp-456", "name": "development"})
    create(
        client,
        "/api/v1/targets",
        {
            "id": "t1",
            "hostname": "gpu-node-01",
            "ip_address": "10.0.0.1",
            "group_ids": ["grp-123", "grp-456"],
            "labels": {"type": "gpu", "rack": "r7"},
            "exporters": [
                {"type": "node_exporter"},
                {"type": "dcgm_exporter"},
                {"type": "custom", "port": 9835, "metrics_path": "/probe"},
            ],
        },
    )
    create(
        client,
        "/api/v1/targets",
        {
            "id": "t2",
            "hostname": "gpu-node-02",
            "ip_address": "fd00::2",
            "group_ids": ["grp-456"],
            "exporters": [{"type": "node_exporter"}],
        },
    )
    create(
        client,
        "/api/v1/targets",
        {
            "id": "t3",
            "hostname": "retired",
            "ip_address": "10.0.0.3",
            "status": "inactive",
            "exporters": [{"type": "node_exporter"}],
        },
    )


def test_document_shape(client: TestClient) -> None:
    _fleet(client)
    response = client.get("/api/v1/sd/prometheus")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [
        {
            "targets": ["10.0.0.1:9100"],
            "labels": {
                "instance": "gpu-node-01",
                "target_id": "t1",
                "exporter_type": "node_exporter",
                "group": "production",
                "group_id": "grp-123",
                "groups": ",grp-123,grp-456,",
                "target_label_type": "gpu",
                "target_label_rack": "r7",
            },
        },
        {
            "targets": ["10.0.0.1:9400"],
            "labels": {
                "instance": "gpu-node-01",
                "target_id": "t1",
                "exporter_type": "dcgm_exporter",
                "group": "production",
                "group_id": "grp-123",
                "groups": ",grp-123,grp-456,",
                "target_label_type": "gpu",
                "target_label_rack": "r7",
            },
        },
        {
            "targets": ["10.0.0.1:9835"],
            "labels": {
                "instance": "gpu-node-01",
                "target_id": "t1",
                "exporter_type": "custom",
                "group": "production",
                "group_id": "grp-123",
                "groups": ",grp-123,grp-456,",
                "__metrics_path__": "/probe",
                "target_label_type": "gpu",
                "target_label_rack": "r7",
            },
        },
        {
            "targets": ["[fd00::2]:9100"],
            "labels": {
                "instance": "gpu-node-02",
                "target_id": "t2",
                "exporter_type": "node_exporter",
                "group": "development",
                "group_id": "grp-456",
                "groups": ",grp-456,",
            },
        },
    ]
    for entry in response.json():
        assert "job" not in entry["labels"]


def test_filters(client: TestClient) -> None:
    _fleet(client)
    dcgm = client.get("/api/v1/sd/prometheus", params={"exporter_type": "dcgm_exporter"}).json()
    assert [e["targets"] for e in dcgm] == [["10.0.0.1:9400"]]
    dev = client.get(
        "/api/v1/sd/prometheus", params={"group_id": "grp-456", "exporter_type": "node_exporter"}
    ).json()
    assert [e["labels"]["instance"] for e in dev] == ["gpu-node-02"]
    error(client.get("/api/v1/sd/prometheus", params={"exporter_type": "ssh"}), 422)
    error(client.get("/api/v1/sd/prometheus", params={"group_id": "../x"}), 422)


def test_etag_and_304(client: TestClient) -> None:
    _fleet(client)
    first = client.get("/api/v1/sd/prometheus")
    etag = first.headers["etag"]
    again = client.get("/api/v1/sd/prometheus", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get("/api/v1/sd/prometheus", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    # a change anywhere in the inventory makes a new document
    client.put("/api/v1/groups/grp-123", json={"name": "prod"})
    changed = client.get("/api/v1/sd/prometheus", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()[0]["labels"]["group"] == "prod"


def test_primary_group_change_is_reflected(client: TestClient) -> None:
    _fleet(client)
    client.put("/api/v1/targets/t1", json={"group_ids": ["grp-456", "grp-123"]})
    labels = client.get("/api/v1/sd/prometheus").json()[0]["labels"]
    assert (labels["group"], labels["group_id"], labels["groups"]) == (
        "development",
        "grp-456",
        ",grp-456,grp-123,",
    )


def test_target_without_group_has_no_group_labels(client: TestClient) -> None:
    create(
        client,
        "/api/v1/targets",
        {"hostname": "lonely", "ip_address": "10.0.0.9", "exporters": [{"type": "node_exporter"}]},
    )
    labels = client.get("/api/v1/sd/prometheus").json()[0]["labels"]
    assert "group" not in labels
    assert "group_id" not in labels
    assert "groups" not in labels
