from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from aami.cli.configcode import dump_yaml
from aami.config import Settings
from tests.configcode.fixtures import SECRET, SECRET_ENV, populate
from tests.support.stamps import without_stamp


def export(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/v1/config/export")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def plan(client: TestClient, document: dict[str, Any], *, prune: bool = False) -> dict[str, Any]:
    response = client.post(f"/api/v1/config/plan?prune={str(prune).lower()}", json=document)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def apply(client: TestClient, document: dict[str, Any], *, prune: bool = False) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/config/apply?prune={str(prune).lower()}&wait=20", json=document
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def rule_files(rules_dir: Path) -> dict[str, bytes]:
    """The rule files, without the stamp that names the revision they were written at."""
    return {path.name: without_stamp(path.read_bytes()) for path in sorted(rules_dir.glob("*.yml"))}


def actions(result: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["kind"], c["key"], c["action"]) for c in result["changes"]}


def test_export_apply_export_on_an_empty_server_is_identical(
    api: TestClient,
    second: TestClient,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    populate(api)
    document = export(api)
    text = yaml.safe_dump(document)
    assert SECRET not in text
    assert "created_at" not in text
    assert "hash" not in text
    assert document["notification_channels"]["ops-slack"]["secret"] == {"ref": f"env:{SECRET_ENV}"}
    assert "secret" not in document["notification_channels"]["ops-hook"]
    assert list(document["groups"]) == ["grp-123", "grp-456"]
    assert document["targets"]["gpu-node-01"]["group_ids"] == ["grp-123", "grp-456"]
    # Keyed by names: no generated id anywhere, and none of the ids populate chose but
    # group ids (the templates' ids were high-cpu and node-down, the rules' cpu-prod...).
    assert list(document["alert_rules"]) == [
        "HighCPUUsage@grp-123",
        "HighCPUUsage@grp-456",
        "NodeDown@global",
    ]
    assert list(document["script_policies"]) == [
        "mount-check@global",
        "mount-check@group:grp-123",
        "mount-check@target:gpu-node-01",
    ]
    for chosen in ("high-cpu", "node-down", "cpu-prod", "mount-all", "prod-route"):
        assert chosen not in text
    assert document["notification_routes"]["production"]["receiver"] == "ops-slack"

    # A new channel's secret comes from the server's environment; without it, refused.
    missing = second.post("/api/v1/config/apply", json=document)
    assert missing.status_code == 422
    assert SECRET_ENV in missing.json()["detail"]
    assert export(second)["groups"] == {}

    monkeypatch.setenv(SECRET_ENV, SECRET)
    result = apply(second, document)
    assert ("groups", "grp-123", "create") in actions(result)
    assert ("alert_rules", "HighCPUUsage@grp-123", "create") in actions(result)
    assert result["rule_files"]["written"] == [
        "global.yml",
        "group-grp-123.yml",
        "group-grp-456.yml",
    ]
    assert result["publish"]["files_written"] == result["rule_files"]["written"]
    assert dump_yaml(export(second)) == dump_yaml(document)

    for client in (api, second):
        response = client.post("/api/v1/prometheus/rules/regenerate?wait=20")
        assert response.status_code == 200, response.text
    first_files = rule_files(settings.prometheus_rule_path)
    second_files = rule_files(tmp_path / "second" / "rules")
    assert sorted(first_files) == ["global.yml", "group-grp-123.yml", "group-grp-456.yml"]
    assert first_files == second_files
    assert b"HighCPUUsage_Production" in first_files["group-grp-123.yml"]

    # The secret itself arrived: the channel has one, and the export is still secret-free.
    channels = second.get("/api/v1/notification-channels").json()
    assert {c["name"]: c["has_secret"] for c in channels} == {
        "ops-hook": False,
        "ops-slack": True,
    }


def test_plan_of_the_current_configuration_changes_nothing(api: TestClient) -> None:
    populate(api)
    document = export(api)
    for prune in (False, True):
        result = plan(api, document, prune=prune)
        assert result["changed"] is False, result
        assert result["changes"] == []
        assert result["rule_files"] == {"written": [], "removed": []}
        assert result["unchanged"]["alert_rules"] == 3
    # Applying it again changes nothing either, and records nothing in the audit trail.
    audit_before = api.get("/api/v1/audit?limit=1000").json()["pagination"]["total"]
    assert apply(api, document)["changed"] is False
    assert api.get("/api/v1/audit?limit=1000").json()["pagination"]["total"] == audit_before


def test_plan_lists_changes_and_rule_files_without_changing_anything(api: TestClient) -> None:
    populate(api)
    document = export(api)
    changed = copy.deepcopy(document)
    changed["alert_rules"]["HighCPUUsage@grp-123"]["config"]["threshold"] = 95
    changed["groups"]["grp-789"] = {"name": "staging"}
    changed["targets"]["gpu-node-01"]["exporters"] = [
        {"type": "node_exporter", "port": 9100, "metrics_path": "/metrics", "enabled": False}
    ]
    del changed["script_policies"]["mount-check@target:gpu-node-01"]
    result = plan(api, changed)
    assert actions(result) == {
        ("groups", "grp-789", "create"),
        ("alert_rules", "HighCPUUsage@grp-123", "update"),
        ("targets", "gpu-node-01", "update"),
    }
    fields = {c["key"]: [f["field"] for f in c.get("fields", [])] for c in result["changes"]}
    assert fields["HighCPUUsage@grp-123"] == ["config.threshold"]
    assert fields["gpu-node-01"] == ["exporters[9100].enabled", "exporters[9400]"]
    target = next(c for c in result["changes"] if c["key"] == "gpu-node-01")
    assert target["fields"] == [
        {"field": "exporters[9100].enabled", "old": True, "new": False},
        {
            "field": "exporters[9400]",
            "old": {"type": "dcgm_exporter", "metrics_path": "/metrics", "enabled": True},
        },
    ]
    assert result["rule_files"] == {"written": ["group-grp-123.yml"], "removed": []}
    assert result["not_in_document"] == {"script_policies": ["mount-check@target:gpu-node-01"]}
    assert export(api) == document

    applied = apply(api, changed)
    assert actions(applied) == actions(result)
    after = export(api)
    assert after["alert_rules"]["HighCPUUsage@grp-123"]["config"]["threshold"] == 95
    assert after["groups"]["grp-789"]["name"] == "staging"
    assert after["targets"]["gpu-node-01"]["exporters"] == [
        {"type": "node_exporter", "port": 9100, "metrics_path": "/metrics", "enabled": False}
    ]
    # Without --prune nothing is deleted.
    assert "mount-check@target:gpu-node-01" in after["script_policies"]
    assert plan(api, after)["changed"] is False


def test_an_invalid_template_rolls_back_the_whole_apply(api: TestClient) -> None:
    populate(api)
    before = export(api)
    audit_before = api.get("/api/v1/audit?limit=1000").json()["pagination"]["total"]
    document = copy.deepcopy(before)
    # Valid changes first in the order of application, then a template that is not PromQL.
    document["groups"]["grp-789"] = {"name": "staging"}
    document["groups"]["grp-123"]["description"] = "changed"
    document["targets"]["new-node"] = {"ip_address": "10.0.0.9"}
    document["alert_templates"]["Broken"] = {
        "query_template": "sum(rate(node_cpu_seconds_total[5m]) > > {{.threshold}}",
        "default_config": {"threshold": 1},
    }
    document["script_templates"]["mount-check"]["version"] = "2.0.0"
    for path in ("/api/v1/config/plan", "/api/v1/config/apply"):
        response = api.post(path, json=document)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid"
    assert export(api) == before
    assert api.get("/api/v1/audit?limit=1000").json()["pagination"]["total"] == audit_before

    # An unknown reference fails the same way.
    document = copy.deepcopy(before)
    document["groups"]["grp-789"] = {"name": "staging"}
    document["alert_rules"]["HighCPUUsage@grp-nope"] = {}
    response = api.post("/api/v1/config/apply", json=document)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "alert_rules[\"HighCPUUsage@grp-nope\"]: unknown group 'grp-nope': neither the "
        "document's groups nor the server has it"
    )
    assert export(api) == before


def test_prune_deletes_what_the_document_lacks(api: TestClient) -> None:
    populate(api)
    document = export(api)
    smaller = copy.deepcopy(document)
    del smaller["groups"]["grp-456"]
    del smaller["alert_rules"]["HighCPUUsage@grp-456"]
    smaller["targets"]["gpu-node-01"]["group_ids"] = ["grp-123"]
    del smaller["script_policies"]["mount-check@target:gpu-node-01"]
    del smaller["notification_routes"]["production"]
    del smaller["notification_channels"]["ops-slack"]
    without_prune = apply(api, smaller)
    assert {c["action"] for c in without_prune["changes"]} == {"update"}
    assert "grp-456" in export(api)["groups"]

    result = plan(api, smaller, prune=True)
    assert {(c["kind"], c["key"]) for c in result["changes"] if c["action"] == "delete"} == {
        ("groups", "grp-456"),
        ("alert_rules", "HighCPUUsage@grp-456"),
        ("script_policies", "mount-check@target:gpu-node-01"),
        ("notification_routes", "production"),
        ("notification_channels", "ops-slack"),
    }
    deleted = next(c for c in result["changes"] if c["key"] == "HighCPUUsage@grp-456")
    assert deleted["rules"][0]["before"]["alert"] == "HighCPUUsage_Development"
    assert deleted["rules"][0]["after"] is None
    assert result["rule_files"]["removed"] == ["group-grp-456.yml"]
    applied = apply(api, smaller, prune=True)
    assert applied["publish"]["files_removed"] == ["group-grp-456.yml"]
    assert export(api) == smaller
    assert plan(api, smaller, prune=True)["changed"] is False


def test_secrets_are_references_never_values(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(api)
    document = export(api)
    document["notification_channels"]["ops-slack"]["secret"] = SECRET
    response = api.post("/api/v1/config/plan", json=document)
    assert response.status_code == 422
    assert SECRET not in response.text
    document["notification_channels"]["ops-slack"]["secret"] = {"ref": "env:AAMI_ADMIN_TOKEN"}
    response = api.post("/api/v1/config/plan", json=document)
    assert response.status_code == 422
    assert "AAMI_SECRET_" in response.json()["detail"]
    # has_secret: true keeps the current one; the reference unset keeps it too.
    document["notification_channels"]["ops-slack"].pop("secret")
    document["notification_channels"]["ops-slack"]["has_secret"] = True
    assert plan(api, document)["changed"] is False
    # A new value in the environment is a change the plan shows without the value.
    monkeypatch.setenv(SECRET_ENV, "https://hooks.slack.example/rotated-do-not-leak")
    document = export(api)
    response = api.post("/api/v1/config/plan", json=document)
    assert response.status_code == 200, response.text
    assert "rotated-do-not-leak" not in response.text
    assert response.json()["changes"] == [
        {
            "kind": "notification_channels",
            "key": "ops-slack",
            "action": "update",
            "fields": [{"field": "secret", "old": "(hidden)", "new": "(hidden)"}],
        }
    ]


def test_export_and_apply_need_the_admin_token(api: TestClient) -> None:
    anonymous = TestClient(api.app)
    assert anonymous.get("/api/v1/config/export").status_code == 401
    assert anonymous.post("/api/v1/config/apply", json={}).status_code == 401
    response = api.post("/api/v1/config/plan", json={"apiVersion": "v0", "kind": "Configuration"})
    assert response.status_code == 422
    assert "apiVersion" in response.json()["detail"]


def test_apply_sets_a_rules_config_exactly_as_the_document_says(api: TestClient) -> None:
    """Updates through the API merge; the document states the whole config, so a key it
    dropped is removed, not merged away."""
    populate(api)
    document = export(api)
    rule = "HighCPUUsage@grp-123"
    policy = "mount-check@target:gpu-node-01"
    assert document["alert_rules"][rule]["config"] == {"threshold": 90, "for_duration": "10m"}
    document["script_policies"][policy]["config"] = {"paths": "/x", "retries": 2}
    apply(api, document)
    document["alert_rules"][rule]["config"] = {"threshold": 95}
    document["script_policies"][policy]["config"] = {"paths": "/x"}
    applied = apply(api, document)
    assert ("alert_rules", rule, "update") in actions(applied)
    assert ("script_policies", policy, "update") in actions(applied)
    changes = {c["key"]: c["fields"] for c in applied["changes"]}
    assert changes[rule] == [
        {"field": "config.threshold", "old": 90, "new": 95},
        {"field": "config.for_duration", "old": "10m"},
    ]
    assert changes[policy] == [{"field": "config.retries", "old": 2}]
    after = export(api)
    assert after["alert_rules"][rule]["config"] == {"threshold": 95}
    assert after["script_policies"][policy]["config"] == {"paths": "/x"}
    rule = api.get("/api/v1/alert-rules/cpu-prod").json()
    assert rule["rendered"]["for"] == "5m"  # the template's, now the rule sets none
    assert plan(api, after)["changed"] is False


def test_apply_refuses_a_bad_typed_value_naming_the_entry(api: TestClient) -> None:
    populate(api)
    before = export(api)
    # Exported templates carry their parameters (here inferred: threshold is a number).
    assert before["alert_templates"]["HighCPUUsage"]["parameters"]["threshold"]["type"] == "number"
    document = copy.deepcopy(before)
    document["alert_rules"]["HighCPUUsage@grp-123"]["config"]["threshold"] = "sixty"
    for path in ("/api/v1/config/plan", "/api/v1/config/apply"):
        response = api.post(path, json=document)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == (
            "alert_rules[\"HighCPUUsage@grp-123\"].config.threshold: 'sixty' is not a number "
            "(HighCPUUsage.threshold: number)"
        )
    assert export(api) == before

    # A template whose parameters refuse its rules' values is refused too, by name.
    document = copy.deepcopy(before)
    document["alert_templates"]["HighCPUUsage"]["parameters"] = {
        "threshold": {"type": "number", "min": 0, "max": 85, "unit": "%"}
    }
    response = api.post("/api/v1/config/apply", json=document)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        'alert_templates["HighCPUUsage"]: the change breaks the rule cpu-prod (group grp-123): '
        "config.threshold: 90 is above the maximum 85 (HighCPUUsage.threshold: number, %, "
        "0\u201385)"
    )
    assert export(api) == before


def test_a_document_without_parameters_infers_them(second: TestClient) -> None:
    document = {
        "apiVersion": "aami/v1",
        "kind": "Configuration",
        "alert_templates": {
            "HighLoad": {
                "query_template": "node_load1 > {{.threshold}}",
                "default_config": {"threshold": 2},
            }
        },
    }
    apply(second, document)
    exported = export(second)
    assert exported["alert_templates"]["HighLoad"]["parameters"] == {
        "threshold": {
            "type": "number",
            "min": None,
            "max": None,
            "unit": "",
            "description": "",
            "choices": None,
        }
    }
    assert plan(second, document)["changed"] is False
    assert plan(second, exported)["changed"] is False
