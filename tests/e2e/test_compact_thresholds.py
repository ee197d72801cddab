"""Compact threshold mode against the real Prometheus: the same alerts as per-group rules on
the same series (labels for routing identical, names aside), and a threshold change that
takes effect with no reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

QUERY = 'aami_test_gpu_temperature{group_id="{{.group_id}}"} > {{.threshold}}'
GROUPS = (("grp-a", "training", 80), ("grp-b", "inference", 85), ("grp-c", "idle", 60))
THRESHOLDS = {"grp-a": 70, "grp-b": 90, "grp-c": 50}  # a and c fire, b does not
# Labels that name the rule rather than route the alert.
NAMING = {"alertname", "aami_template"}


@pytest.fixture
def fleet_stack(tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(tmp_path, node_exporters=len(GROUPS))
    try:
        yield running
    finally:
        stop_stack(running)


def _template(name: str, mode: str) -> dict[str, Any]:
    return {
        "name": name,
        "query_template": QUERY,
        "default_config": {"threshold": 100},
        "severity": "critical",
        "for_duration": "0s",
        "labels": {"team": "gpu"},
        "threshold_mode": mode,
    }


def _fleet(stack: Stack, api: httpx.Client) -> None:
    for index, (group_id, name, temperature) in enumerate(GROUPS):
        assert api.post("/api/v1/groups", json={"id": group_id, "name": name}).status_code == 201
        exporter = stack.node_exporters[index]
        exporter.write_metric("gpu", f"aami_test_gpu_temperature {temperature}\n")
        response = api.post(
            "/api/v1/targets",
            json={
                "hostname": f"node-{group_id}",
                "ip_address": "127.0.0.1",
                "group_ids": [group_id],
                "exporters": [{"type": "node_exporter", "port": exporter.port}],
            },
        )
        assert response.status_code == 201, response.text
    wait_for(
        lambda: len(stack.query("aami_test_gpu_temperature")) == len(GROUPS),
        timeout=30,
        what="every node scraped",
    )


def _firing(stack: Stack) -> dict[str, set[frozenset[tuple[str, str]]]]:
    """The firing alerts by template, each as its labels minus the naming ones."""
    response = httpx.get(f"{stack.prometheus_url}/api/v1/alerts", timeout=5)
    response.raise_for_status()
    found: dict[str, set[frozenset[tuple[str, str]]]] = {}
    for alert in response.json()["data"]["alerts"]:
        if alert["state"] != "firing":
            continue
        labels = alert["labels"]
        routing = frozenset((k, v) for k, v in labels.items() if k not in NAMING)
        found.setdefault(labels["aami_template"], set()).add(routing)
    return found


def _groups_firing(alerts: set[frozenset[tuple[str, str]]]) -> set[str]:
    return {dict(labels)["group_id"] for labels in alerts}


def _last_reload(stack: Stack) -> str:
    response = httpx.get(f"{stack.prometheus_url}/api/v1/status/runtimeinfo", timeout=5)
    response.raise_for_status()
    data = response.json()["data"]
    assert data["reloadConfigSuccess"] is True
    return str(data["lastConfigTime"])


def _reload_timestamp(stack: Stack) -> float:
    (sample,) = stack.query("prometheus_config_last_reload_success_timestamp_seconds")
    return float(sample["value"][1])


def test_compact_and_per_group_fire_the_same_alerts(fleet_stack: Stack) -> None:
    stack = fleet_stack
    with stack.api as api:
        _fleet(stack, api)
        for name, mode in (("GPUHotPerGroup", "per_group"), ("GPUHotCompact", "compact")):
            response = api.post("/api/v1/alert-templates", json=_template(name, mode))
            assert response.status_code == 201, response.text
            for group_id, threshold in THRESHOLDS.items():
                response = api.post(
                    "/api/v1/alert-rules",
                    json={
                        "template_id": name,
                        "group_id": group_id,
                        "config": {"threshold": threshold},
                    },
                )
                assert response.status_code == 201, response.text

        def both_fire() -> dict[str, set[frozenset[tuple[str, str]]]] | None:
            found = _firing(stack)
            wanted = {"grp-a", "grp-c"}
            if all(
                _groups_firing(found.get(t, set())) == wanted
                for t in ("GPUHotPerGroup", "GPUHotCompact")
            ):
                return found
            return None

        found = wait_for(both_fire, timeout=60, what="grp-a and grp-c firing in both modes")
        assert found["GPUHotPerGroup"] == found["GPUHotCompact"]
        (one,) = [dict(a) for a in found["GPUHotCompact"] if dict(a)["group_id"] == "grp-a"]
        assert one["group"] == "training"
        assert one["severity"] == "critical"
        assert one["team"] == "gpu"
        assert one["aami_scope"] == "group"
        names = {
            rule["name"]
            for rules in stack.loaded_rules().values()
            for rule in rules
            if rule["labels"].get("aami_template") == "GPUHotCompact"
        }
        assert names == {"GPUHotCompact"}  # one rule, named as the template

        # A compact threshold change: the alert flips with no reload and no file written.
        global_file = stack.rules_dir / "global.yml"
        written = global_file.read_text()
        reload_time, reload_stamp = _last_reload(stack), _reload_timestamp(stack)
        rules = api.get("/api/v1/alert-rules", params={"group_id": "grp-b", "limit": 50}).json()
        (compact_b,) = [r for r in rules["data"] if r["template_name"] == "GPUHotCompact"]
        response = api.put(
            f"/api/v1/alert-rules/{compact_b['id']}", json={"config": {"threshold": 80}}
        )
        assert response.status_code == 200, response.text
        wait_for(
            lambda: (
                _groups_firing(_firing(stack).get("GPUHotCompact", set()))
                == {"grp-a", "grp-b", "grp-c"}
            ),
            timeout=30,
            what="grp-b firing in compact mode after its threshold change",
        )
        assert _last_reload(stack) == reload_time
        assert _reload_timestamp(stack) == reload_stamp
        assert global_file.read_text() == written
        assert _groups_firing(_firing(stack)["GPUHotPerGroup"]) == {"grp-a", "grp-c"}

        # The same change in per-group mode rewrites grp-b's file and reloads Prometheus.
        (per_group_b,) = [r for r in rules["data"] if r["template_name"] == "GPUHotPerGroup"]
        response = api.put(
            f"/api/v1/alert-rules/{per_group_b['id']}", json={"config": {"threshold": 80}}
        )
        assert response.status_code == 200, response.text

        def per_group_b_fires() -> dict[str, set[frozenset[tuple[str, str]]]] | None:
            found = _firing(stack)
            everyone = {"grp-a", "grp-b", "grp-c"}
            return found if _groups_firing(found.get("GPUHotPerGroup", set())) == everyone else None

        found = wait_for(
            per_group_b_fires,
            timeout=30,
            what="grp-b firing in per-group mode after its threshold change",
        )
        assert _last_reload(stack) != reload_time
        assert found["GPUHotPerGroup"] == found["GPUHotCompact"]
