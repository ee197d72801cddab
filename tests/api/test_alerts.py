"""Alert templates and rules through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aami.config import Settings
from tests.support.api import create, error
from tests.support.wait import wait_for

SEED_TEMPLATE = {
    "name": "HighDiskUsage",
    "query_template": (
        '((node_filesystem_avail_bytes{group_id="{{.group_id}}"} / node_filesystem_size_bytes)'
        " * 100) < {{.threshold}}"
    ),
    "default_config": {"threshold": 20},
}
SEED_RULES = [
    {
        "group_id": "production-grp-123",
        "template_id": "HighDiskUsage",
        "config": {"threshold": 20, "for_duration": "5m"},
    },
    {
        "group_id": "development-grp-456",
        "template_id": "HighDiskUsage",
        "config": {"threshold": 10, "for_duration": "10m"},
    },
]


@pytest.fixture
def rules_dir(settings: Settings) -> Path:
    return settings.prometheus_rule_path


def _groups(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "production-grp-123", "name": "production"})
    create(client, "/api/v1/groups", {"id": "development-grp-456", "name": "development"})


def _seed_example_2(client: TestClient) -> list[dict[str, Any]]:
    _groups(client)
    create(client, "/api/v1/alert-templates", SEED_TEMPLATE)
    return [create(client, "/api/v1/alert-rules", rule) for rule in SEED_RULES]


def _files(rules_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(rules_dir.glob("*.yml"))}


def _published(client: TestClient, rules_dir: Path, names: set[str]) -> dict[str, str]:
    def probe() -> dict[str, str] | None:
        files = _files(rules_dir)
        return files if files and set(files) == names else None

    return wait_for(
        probe,
        timeout=15,
        what=f"rule files {sorted(names)}",
    )


def test_seed_example_2_as_written(client: TestClient, rules_dir: Path) -> None:
    production, development = _seed_example_2(client)
    assert production["rendered"] == {
        "alert": "HighDiskUsage_Production",
        "expr": '((node_filesystem_avail_bytes{group_id="production-grp-123"} / '
        "node_filesystem_size_bytes) * 100) < 20",
        "for": "5m",
        "labels": {
            "severity": "warning",
            "group_id": "production-grp-123",
            "group": "production",
            "aami_template": "HighDiskUsage",
            "aami_scope": "group",
        },
        "annotations": {},
    }
    assert development["rendered"]["alert"] == "HighDiskUsage_Development"
    assert development["rendered"]["expr"].endswith("< 10")
    assert 'group_id="development-grp-456"' in development["rendered"]["expr"]
    assert development["rendered"]["for"] == "10m"

    files = _published(
        client, rules_dir, {"group-production-grp-123.yml", "group-development-grp-456.yml"}
    )
    assert "alert: HighDiskUsage_Production" in files["group-production-grp-123.yml"]
    assert "HighDiskUsage_Development" not in files["group-production-grp-123.yml"]
    listed = client.get("/api/v1/prometheus/rules/files").json()
    assert [(f["group_id"], f["rule_count"]) for f in listed] == [
        ("development-grp-456", 1),
        ("production-grp-123", 1),
    ]
    assert all(len(f["sha256"]) == 64 for f in listed)


BAD_INPUTS = [
    ("rule", {"config": {"threshold": '80"} or vector(1) #'}}, "threshold"),
    (
        "template",
        {
            "query_template": 'node_load1{group_id="{{.group_id}}"} > {{.missing}}',
            "default_config": {},
        },
        None,
    ),
    ("rule", {"config": {"for_duration": "5 minutes"}}, "5 minutes"),
    ("template", {"query_template": "sum(rate(x[5m]) > {{.threshold}}"}, "PromQL"),
    ("template", {"name": "High Disk Usage"}, "alert name"),
    ("rule", {"group_id": "../etc"}, "../etc"),
    ("rule", {"config": {"threshold": [1, 2]}}, "threshold"),
    ("template", {"for_duration": "5 minutes"}, "duration"),
    ("template", {"severity": "urgent"}, "severity"),
]


@pytest.mark.parametrize(("kind", "change", "needle"), BAD_INPUTS)
def test_bad_input_is_422_and_touches_no_file(
    client: TestClient, rules_dir: Path, kind: str, change: dict[str, Any], needle: str | None
) -> None:
    _seed_example_2(client)
    before = _published(
        client, rules_dir, {"group-production-grp-123.yml", "group-development-grp-456.yml"}
    )
    audit_before = client.get("/api/v1/audit").json()["pagination"]["total"]
    if kind == "template":
        response = client.post(
            "/api/v1/alert-templates", json={**SEED_TEMPLATE, "name": "Other", **change}
        )
        if change.get("query_template", "").endswith("{{.missing}}"):
            # a template may leave keys to its rules; the rule that omits it is refused
            assert response.status_code == 201, response.text
            response = client.post(
                "/api/v1/alert-rules",
                json={"template_id": "Other", "group_id": "production-grp-123"},
            )
            needle = "missing config key 'missing'"
    else:
        create(client, "/api/v1/groups", {"id": "staging", "name": "staging"})
        response = client.post(
            "/api/v1/alert-rules",
            json={"template_id": "HighDiskUsage", "group_id": "staging", **change},
        )
    detail = error(response, 422)
    assert needle is not None
    assert needle in detail
    assert client.post("/api/v1/prometheus/rules/regenerate?wait=20").status_code == 200
    assert _files(rules_dir) == before
    if kind == "rule":
        assert client.get("/api/v1/audit").json()["pagination"]["total"] == audit_before + 1


def test_update_rerenders_and_disable_removes(client: TestClient, rules_dir: Path) -> None:
    production, development = _seed_example_2(client)
    response = client.put(
        f"/api/v1/alert-rules/{development['id']}", json={"config": {"threshold": 15}}
    )
    assert response.json()["rendered"]["expr"].endswith("< 15")
    # A merge patch: for_duration, not given, is kept.
    assert response.json()["config"] == {"threshold": 15, "for_duration": "10m"}
    assert response.json()["rendered"]["for"] == "10m"
    wait_for(
        lambda: "< 15" in (rules_dir / "group-development-grp-456.yml").read_text(),
        timeout=15,
        what="the new threshold on disk",
    )
    off = client.put(f"/api/v1/alert-rules/{development['id']}", json={"enabled": False})
    assert off.json()["enabled"] is False
    wait_for(
        lambda: not (rules_dir / "group-development-grp-456.yml").exists(),
        timeout=15,
        what="the disabled rule's file removed",
    )
    assert client.get(f"/api/v1/alert-rules/{development['id']}").json()["enabled"] is False
    error(
        client.put(
            f"/api/v1/alert-rules/{production['id']}", json={"config": {"threshold": "x y"}}
        ),
        422,
    )


def test_template_change_must_keep_rules_valid(client: TestClient, rules_dir: Path) -> None:
    _seed_example_2(client)
    detail = error(
        client.put(
            "/api/v1/alert-templates/HighDiskUsage",
            json={"query_template": 'node_load1{group_id="{{.group_id}}"} > {{.load}}'},
        ),
        422,
    )
    assert "missing config key 'load'" in detail
    ok = client.put(
        "/api/v1/alert-templates/HighDiskUsage",
        json={"severity": "critical", "annotations": {"summary": "disk"}},
    )
    assert ok.status_code == 200
    wait_for(
        lambda: all("severity: critical" in text for text in _files(rules_dir).values()),
        timeout=15,
        what="both files re-rendered with the new severity",
    )


def test_global_rules_and_conflicts(client: TestClient, rules_dir: Path) -> None:
    _groups(client)
    create(
        client,
        "/api/v1/alert-templates",
        {
            "name": "NodeDown",
            "query_template": 'up{job="node-exporter"} == 0',
            "severity": "critical",
            "for_duration": "5m",
        },
    )
    rule = create(client, "/api/v1/alert-rules", {"template_id": "NodeDown"})
    assert rule["scope"] == "global"
    assert rule["rendered"]["alert"] == "NodeDown"
    error(client.post("/api/v1/alert-rules", json={"template_id": "NodeDown"}), 409)
    strict = create(
        client,
        "/api/v1/alert-rules",
        {"template_id": "NodeDown", "group_id": "production", "config": {"for_duration": "1m"}},
    )
    assert strict["rendered"]["alert"] == "NodeDown_Production"
    _published(client, rules_dir, {"global.yml", "group-production-grp-123.yml"})
    # a group-scoped template cannot make a global rule
    create(client, "/api/v1/alert-templates", SEED_TEMPLATE)
    assert "global rule" in error(
        client.post("/api/v1/alert-rules", json={"template_id": "HighDiskUsage"}), 422
    )
    # templates and groups in use are not deleted
    assert rule["id"] in error(client.delete("/api/v1/alert-templates/NodeDown"), 409)
    detail = error(client.delete("/api/v1/groups/production-grp-123"), 409)
    assert strict["id"] in detail
    assert "unknown alert template" in error(
        client.post("/api/v1/alert-rules", json={"template_id": "Nope"}), 422
    )
    assert "unknown group" in error(
        client.post("/api/v1/alert-rules", json={"template_id": "NodeDown", "group_id": "nope"}),
        422,
    )


def test_group_rename_rerenders_alert_names(client: TestClient, rules_dir: Path) -> None:
    _seed_example_2(client)
    client.put("/api/v1/groups/production-grp-123", json={"name": "prod east"})
    wait_for(
        lambda: (
            "HighDiskUsage_ProdEast" in (rules_dir / "group-production-grp-123.yml").read_text()
        ),
        timeout=15,
        what="the alert renamed after its group",
    )


def test_effective_rules_for_a_target(client: TestClient) -> None:
    _seed_example_2(client)
    create(
        client,
        "/api/v1/alert-templates",
        {"name": "NodeDown", "query_template": 'up{job="node-exporter"} == 0'},
    )
    create(client, "/api/v1/alert-rules", {"template_id": "NodeDown"})
    create(
        client,
        "/api/v1/targets",
        {
            "id": "gpu-node-01",
            "hostname": "gpu-node-01",
            "ip_address": "10.0.0.1",
            "group_ids": ["development", "production"],
        },
    )
    effective = client.get("/api/v1/prometheus/rules/effective/gpu-node-01").json()
    assert effective["group_id"] == "development-grp-456"
    alerts = {r["alert"]: r for r in effective["rules"]}
    assert set(alerts) == {"NodeDown", "HighDiskUsage_Development"}
    assert alerts["HighDiskUsage_Development"]["expr"].endswith("< 10")
    assert alerts["HighDiskUsage_Development"]["for"] == "10m"
    assert alerts["NodeDown"]["scope"] == "global"
    error(client.get("/api/v1/prometheus/rules/effective/nope"), 404)


def test_preview_saves_nothing(client: TestClient, rules_dir: Path) -> None:
    _groups(client)
    create(client, "/api/v1/alert-templates", SEED_TEMPLATE)
    preview = client.get(
        "/api/v1/prometheus/rules/preview",
        params={
            "template_id": "HighDiskUsage",
            "group_id": "production",
            "config": '{"threshold": 5}',
        },
    )
    assert preview.json()["valid"] is True
    assert preview.json()["rule"]["expr"].endswith("< 5")
    bad = client.get(
        "/api/v1/prometheus/rules/preview",
        params={
            "template_id": "HighDiskUsage",
            "group_id": "production",
            "config": '{"threshold": "5 or up"}',
        },
    ).json()
    assert bad["valid"] is False
    assert "threshold" in bad["error"]
    edited = client.get(
        "/api/v1/prometheus/rules/preview",
        params={
            "template_id": "HighDiskUsage",
            "group_id": "production",
            "query_template": 'node_load1{group_id="{{.group_id}}"} > {{.threshold}}',
        },
    ).json()
    assert edited["rule"]["expr"] == 'node_load1{group_id="production-grp-123"} > 20'
    adhoc = client.get(
        "/api/v1/prometheus/rules/preview",
        params={"query_template": "node_load1 > {{.x}}", "config": '{"x": 3}'},
    ).json()
    assert adhoc["rule"]["expr"] == "node_load1 > 3"
    error(
        client.get(
            "/api/v1/prometheus/rules/preview",
            params={"template_id": "HighDiskUsage", "config": "{nope"},
        ),
        422,
    )
    assert client.get("/api/v1/alert-rules").json()["pagination"]["total"] == 0
    assert _files(rules_dir) == {}


def test_regenerate_and_history(client: TestClient, rules_dir: Path) -> None:
    _seed_example_2(client)
    _published(client, rules_dir, {"group-production-grp-123.yml", "group-development-grp-456.yml"})
    # The seed's changes may still have a pass queued (it would repair the edit below
    # first); a regenerate that waits takes that pass's job with it.
    assert client.post("/api/v1/prometheus/rules/regenerate?wait=20").json()["result"] == "ok"
    (rules_dir / "group-production-grp-123.yml").write_text("hand edited\n")
    (rules_dir / "group-stale-group.yml").write_text("groups: []\n")
    result = client.post("/api/v1/prometheus/rules/regenerate?wait=20").json()
    assert result["files_written"] == ["group-production-grp-123.yml"]
    assert result["files_removed"] == ["group-stale-group.yml"]
    assert result["files_unchanged"] == 1
    assert result["validation"] == "ok"
    assert result["reload"] == "disabled"
    assert result["result"] == "ok"
    assert "HighDiskUsage_Production" in (rules_dir / "group-production-grp-123.yml").read_text()
    one = client.post("/api/v1/prometheus/rules/regenerate/production?wait=20").json()
    assert one["scopes"] == ["production-grp-123"]
    assert one["files_unchanged"] == 1
    error(client.post("/api/v1/prometheus/rules/regenerate/nope"), 404)
    scheduled = client.post("/api/v1/prometheus/rules/regenerate")
    assert scheduled.status_code == 202
    assert scheduled.json()["result"] == "scheduled"
    history = client.get("/api/v1/prometheus/rules/history").json()
    assert history["data"][0]["trigger"] == "regenerate"
    assert history["pagination"]["total"] >= 3
    backups = list((rules_dir / ".backups").iterdir())
    assert any(b.name.startswith("group-production-grp-123.yml.") for b in backups)


def test_status_without_prometheus(client: TestClient) -> None:
    status = client.get("/api/v1/prometheus/status").json()
    assert status["reachable"] is False
    assert status["ready"] is False
    assert status["in_sync"] is False
    assert "does not answer" in status["last_error"]
    reload = client.post("/api/v1/prometheus/reload?wait=20").json()
    assert reload["reload"] == "pending"
    assert "does not answer" in reload["error"]
