"""A real Prometheus scrapes a real node_exporter found through AAMI's service discovery."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def test_prometheus_scrapes_target_with_group_labels(stack: Stack) -> None:
    with stack.api as api:
        for body in (
            {"id": "grp-123", "name": "production"},
            {"id": "grp-456", "name": "development"},
        ):
            assert api.post("/api/v1/groups", json=body).status_code == 201
        response = api.post(
            "/api/v1/targets",
            json={
                "id": "node-1",
                "hostname": "gpu-node-01",
                "ip_address": "127.0.0.1",
                "group_ids": ["grp-123", "grp-456"],
                "labels": {"type": "gpu"},
                "exporters": [{"type": "node_exporter", "port": stack.node_exporter_port}],
            },
        )
        assert response.status_code == 201, response.text

        series = wait_for(
            lambda: stack.query('up{job="node-exporter"} == 1'),
            timeout=30,
            what="node_exporter up in Prometheus",
        )
        assert len(series) == 1
        labels = series[0]["metric"]
        assert labels["job"] == "node-exporter"
        assert labels["instance"] == "gpu-node-01"
        assert labels["group"] == "production"
        assert labels["group_id"] == "grp-123"
        assert labels["groups"] == ",grp-123,grp-456,"
        assert labels["target_id"] == "node-1"
        assert labels["exporter_type"] == "node_exporter"
        assert labels["target_label_type"] == "gpu"
        # every metric from the node carries the group, as the spec's rules rely on
        assert stack.query('node_cpu_seconds_total{group_id="grp-123", mode="idle"}')

        response = api.put("/api/v1/targets/node-1", json={"group_ids": ["grp-456", "grp-123"]})
        assert response.status_code == 200, response.text
        moved = wait_for(
            lambda: stack.query('up{job="node-exporter", group_id="grp-456"} == 1'),
            timeout=30,
            what="the new primary group on the scraped series",
        )
        assert moved[0]["metric"]["group"] == "development"
        assert moved[0]["metric"]["groups"] == ",grp-456,grp-123,"


def test_disabled_exporter_leaves_prometheus(stack: Stack) -> None:
    with stack.api as api:
        response = api.post(
            "/api/v1/targets",
            json={
                "hostname": "gpu-node-02",
                "ip_address": "127.0.0.1",
                "exporters": [{"type": "node_exporter", "port": stack.node_exporter_port}],
            },
        )
        exporter_id = response.json()["exporters"][0]["id"]
        wait_for(
            lambda: stack.query('up{instance="gpu-node-02"} == 1'),
            timeout=30,
            what="target scraped",
        )
        api.put(f"/api/v1/exporters/{exporter_id}", json={"enabled": False})

        def gone() -> bool:
            import httpx

            targets = httpx.get(f"{stack.prometheus_url}/api/v1/targets", timeout=5).json()
            return not [
                t
                for t in targets["data"]["activeTargets"]
                if t["labels"].get("instance") == "gpu-node-02"
            ]

        wait_for(gone, timeout=30, what="the disabled exporter to leave Prometheus' targets")
