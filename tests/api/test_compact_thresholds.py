"""Compact threshold mode through the API: switching a template, what is refused and why,
the thresholds endpoint, and the rule files a threshold change leaves alone."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from aami.app import create_app
from aami.config import Settings
from tests.support.api import create, error

SD_TOKEN = "prometheus-sd-token-0123456789"
THRESHOLDS = "/api/v1/prometheus/thresholds"
CPU = {
    "name": "HighCPU",
    "query_template": 'node_cpu_usage{group_id="{{.group_id}}"} > {{.threshold}}',
    "default_config": {"threshold": 80},
    "for_duration": "1m",
}
DISK = {
    "name": "LowDisk",
    "query_template": 'disk_free{group_id="{{.group_id}}"} < {{.threshold}}',
    "default_config": {"threshold": 10},
}


@pytest.fixture
def fleet(client: TestClient) -> dict[str, Any]:
    create(client, "/api/v1/groups", {"id": "grp-a", "name": "alpha"})
    create(client, "/api/v1/groups", {"id": "grp-b", "name": 'b "quoted" \\ name'})
    cpu = create(client, "/api/v1/alert-templates", {**CPU, "threshold_mode": "compact"})
    create(client, "/api/v1/alert-templates", DISK)
    rules = [
        create(
            client,
            "/api/v1/alert-rules",
            {"template_id": "HighCPU", "group_id": "grp-a", "config": {"threshold": 70}},
        ),
        create(client, "/api/v1/alert-rules", {"template_id": "HighCPU", "group_id": "grp-b"}),
        create(client, "/api/v1/alert-rules", {"template_id": "LowDisk", "group_id": "grp-a"}),
    ]
    return {"template": cpu, "rules": rules}


def _thresholds(client: TestClient) -> dict[tuple[str, str], float]:
    response = client.get(THRESHOLDS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    (family,) = text_string_to_metric_families(response.text)
    return {(s.labels["group_id"], s.labels["group"]): s.value for s in family.samples}


def _regenerate(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/v1/prometheus/rules/regenerate", params={"wait": 30})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_thresholds_are_served_per_group(client: TestClient, fleet: dict[str, Any]) -> None:
    assert fleet["template"]["threshold_mode"] == "compact"
    cpu_a, cpu_b, disk_a = fleet["rules"]
    # a compact rule shows the one rule it is published as; a per-group rule its own
    assert cpu_a["rendered"]["alert"] == cpu_b["rendered"]["alert"] == "HighCPU"
    assert "aami_threshold" in cpu_a["rendered"]["expr"]
    assert disk_a["rendered"]["alert"] == "LowDisk_Alpha"
    assert _thresholds(client) == {("grp-a", "alpha"): 70.0, ("grp-b", 'b "quoted" \\ name'): 80.0}
    # only the compact template's rules: LowDisk is per group
    assert 'template="LowDisk"' not in client.get(THRESHOLDS).text


def test_thresholds_etag_and_who_may_read(
    settings: Settings, client: TestClient, fleet: dict[str, Any]
) -> None:
    first = client.get(THRESHOLDS)
    etag = first.headers["etag"]
    assert client.get(THRESHOLDS, headers={"If-None-Match": etag}).status_code == 304
    rule = fleet["rules"][0]
    updated = client.put(f"/api/v1/alert-rules/{rule['id']}", json={"config": {"threshold": 75}})
    assert updated.status_code == 200, updated.text
    changed = client.get(THRESHOLDS, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert 'group_id="grp-a",group="alpha"} 75.0' in changed.text

    assert TestClient(client.app).get(THRESHOLDS).status_code == 401
    app = create_app(settings.model_copy(update={"sd_token": SD_TOKEN}))
    with TestClient(app, headers={"Authorization": f"Bearer {SD_TOKEN}"}) as prometheus:
        assert prometheus.get(THRESHOLDS).status_code == 200
        assert prometheus.get("/api/v1/alert-rules").status_code == 403


def test_a_threshold_change_rewrites_no_rule_file(
    client: TestClient, settings: Settings, fleet: dict[str, Any]
) -> None:
    _regenerate(client)
    rules_dir = settings.prometheus_rule_path
    before = {p.name: p.read_text() for p in sorted(rules_dir.glob("*.yml"))}
    # the compact rule is in the global file; grp-a's file keeps its per-group rule
    assert set(before) == {"global.yml", "group-grp-a.yml"}
    (group,) = yaml.safe_load(before["global.yml"])["groups"]
    (compact,) = [r for r in group["rules"] if "alert" in r]
    assert compact["alert"] == "HighCPU"
    assert compact["expr"] == (
        'node_cpu_usage{group_id!=""} > on (group_id) group_left (group) '
        'aami_threshold{template="HighCPU",param="threshold"}'
    )
    assert compact["labels"] == {
        "severity": "warning",
        "aami_template": "HighCPU",
        "aami_scope": "group",
    }
    assert "HighCPU" not in before["group-grp-a.yml"]

    rule = fleet["rules"][0]
    response = client.put(f"/api/v1/alert-rules/{rule['id']}", json={"config": {"threshold": 5}})
    assert response.status_code == 200, response.text
    result = _regenerate(client)
    assert result["files_written"] == []
    assert result["reload"] in ("not_needed", "disabled")
    assert {p.name: p.read_text() for p in sorted(rules_dir.glob("*.yml"))} == before
    assert _thresholds(client)[("grp-a", "alpha")] == 5.0

    # a per-group template's threshold still rewrites its group's file
    disk = next(r for r in fleet["rules"] if r["template_name"] == "LowDisk")
    response = client.put(f"/api/v1/alert-rules/{disk['id']}", json={"config": {"threshold": 3}})
    assert response.status_code == 200, response.text
    assert _regenerate(client)["files_written"] == ["group-grp-a.yml"]


def test_switching_back_to_per_group_restores_the_seed_names(
    client: TestClient, settings: Settings, fleet: dict[str, Any]
) -> None:
    template = fleet["template"]
    response = client.put(
        f"/api/v1/alert-templates/{template['id']}", json={"threshold_mode": "per_group"}
    )
    assert response.status_code == 200, response.text
    _regenerate(client)
    files = {p.name: p.read_text() for p in settings.prometheus_rule_path.glob("*.yml")}
    assert set(files) == {"group-grp-a.yml", "group-grp-b.yml"}
    assert "alert: HighCPU_Alpha" in files["group-grp-a.yml"]
    assert client.get(THRESHOLDS).text.count("aami_threshold{") == 0


def test_what_compact_mode_refuses(client: TestClient, fleet: dict[str, Any]) -> None:
    # a rule that differs in more than its threshold
    create(client, "/api/v1/groups", {"id": "grp-c", "name": "gamma"})
    detail = error(
        client.post(
            "/api/v1/alert-rules",
            json={"template_id": "HighCPU", "group_id": "grp-c", "labels": {"team": "x"}},
        ),
        422,
    )
    assert "sets its own labels" in detail
    detail = error(
        client.post(
            "/api/v1/alert-rules",
            json={"template_id": "HighCPU", "group_id": "grp-c", "config": {"for_duration": "9m"}},
        ),
        422,
    )
    assert "only 'threshold' may differ per group" in detail
    detail = error(client.post("/api/v1/alert-rules", json={"template_id": "HighCPU"}), 422)
    assert "a global rule (no group) cannot fill" in detail

    # a template whose rules already differ in more than numbers
    disk = next(r for r in fleet["rules"] if r["template_name"] == "LowDisk")
    client.put(f"/api/v1/alert-rules/{disk['id']}", json={"config": {"for_duration": "30m"}})
    detail = error(
        client.put("/api/v1/alert-templates/LowDisk", json={"threshold_mode": "compact"}), 422
    )
    assert detail.startswith("threshold_mode: ")
    assert "config.for_duration is '30m'" in detail

    # a query that cannot be rewritten
    detail = error(
        client.post(
            "/api/v1/alert-templates",
            json={
                "name": "Summed",
                "query_template": 'sum(x{group_id="{{.group_id}}"}) > {{.threshold}}',
                "default_config": {"threshold": 1},
                "threshold_mode": "compact",
            },
        ),
        422,
    )
    assert "sum(...) does not keep group_id" in detail
    # nothing changed
    assert client.get("/api/v1/alert-templates/LowDisk").json()["threshold_mode"] == "per_group"


def test_templates_default_to_per_group(client: TestClient) -> None:
    template = create(client, "/api/v1/alert-templates", DISK)
    assert template["threshold_mode"] == "per_group"
    assert error(
        client.put(f"/api/v1/alert-templates/{template['id']}", json={"threshold_mode": "x"}),
        422,
    )
