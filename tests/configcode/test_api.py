from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

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
    return {(c["kind"], c["id"], c["action"]) for c in result["changes"]}


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

    # A new channel's secret comes from the server's environment; without it, refused.
    missing = second.post("/api/v1/config/apply", json=document)
    assert missing.status_code == 422
    assert SECRET_ENV in missing.json()["detail"]
    assert export(second)["groups"] == {}

    monkeypatch.setenv(SECRET_ENV, SECRET)
    result = apply(second, document)
    assert ("groups", "grp-123", "create") in actions(result)
    assert result["rule_files"]["written"] == [
        "global.yml",
        "group-grp-123.yml",
        "group-grp-456.yml",
    ]
    assert result["publish"]["files_written"] == result["rule_files"]["written"]
    assert export(second) == document

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
    changed["alert_rules"]["cpu-prod"]["config"]["threshold"] = 95
    changed["groups"]["grp-789"] = {"name": "staging"}
    changed["targets"]["gpu-node-01"]["exporters"] = [
        {"type": "node_exporter", "port": 9100, "metrics_path": "/metrics", "enabled": False}
    ]
    del changed["script_policies"]["mount-gpu1"]
    result = plan(api, changed)
    assert actions(result) == {
        ("groups", "grp-789", "create"),
        ("alert_rules", "cpu-prod", "update"),
        ("targets", "gpu-node-01", "update"),
    }
    fields = {c["id"]: c.get("fields") for c in result["changes"]}
    assert fields["cpu-prod"] == ["config"]
    assert fields["gpu-node-01"] == ["exporters"]
    assert result["rule_files"] == {"written": ["group-grp-123.yml"], "removed": []}
    assert result["not_in_document"] == {"script_policies": ["mount-gpu1"]}
    assert export(api) == document

    applied = apply(api, changed)
    assert actions(applied) == actions(result)
    after = export(api)
    assert after["alert_rules"]["cpu-prod"]["config"]["threshold"] == 95
    assert after["groups"]["grp-789"]["name"] == "staging"
    assert after["targets"]["gpu-node-01"]["exporters"] == [
        {"type": "node_exporter", "port": 9100, "metrics_path": "/metrics", "enabled": False}
    ]
    assert "mount-gpu1" in after["script_policies"]  # without --prune nothing is deleted
    assert plan(api, after)["changed"] is False


def test_an_invalid_template_rolls_back_the_whole_apply(api: TestClient) -> None:
    populate(api)
    before = export(api)
    audit_before = api.get("/api/v1/audit?limit=1000").json()["pagination"]["total"]
    document = copy.deepcopy(before)
    # Valid changes first in the order of application, then a template that is not PromQL.
    document["groups"]["grp-789"] = {"name": "staging"}
    document["groups"]["grp-123"]["description"] = "changed"
    document["targets"]["new-node"] = {"hostname": "new-node", "ip_address": "10.0.0.9"}
    document["alert_templates"]["broken"] = {
        "name": "Broken",
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
    document["alert_rules"]["orphan"] = {"template_id": "high-cpu", "group_id": "grp-nope"}
    response = api.post("/api/v1/config/apply", json=document)
    assert response.status_code == 422
    assert "grp-nope" in response.json()["detail"]
    assert export(api) == before


def test_prune_deletes_what_the_document_lacks(api: TestClient) -> None:
    populate(api)
    document = export(api)
    smaller = copy.deepcopy(document)
    del smaller["groups"]["grp-456"]
    del smaller["alert_rules"]["cpu-dev"]
    smaller["targets"]["gpu-node-01"]["group_ids"] = ["grp-123"]
    del smaller["script_policies"]["mount-gpu1"]
    del smaller["notification_routes"]["prod-route"]
    del smaller["notification_channels"]["ops-slack"]
    without_prune = apply(api, smaller)
    assert {c["action"] for c in without_prune["changes"]} == {"update"}
    assert "grp-456" in export(api)["groups"]

    result = plan(api, smaller, prune=True)
    assert {(c["kind"], c["id"]) for c in result["changes"] if c["action"] == "delete"} == {
        ("groups", "grp-456"),
        ("alert_rules", "cpu-dev"),
        ("script_policies", "mount-gpu1"),
        ("notification_routes", "prod-route"),
        ("notification_channels", "ops-slack"),
    }
    assert result["rule_files"]["removed"] == ["group-grp-456.yml"]
    applied = apply(api, smaller, prune=True)
    assert applied["publish"]["files_removed"] == ["group-grp-456.yml"]
    assert export(api) == smaller
    assert plan(api, smaller, prune=True)["changed"] is False


def test_secrets_are_references_never_values(api: TestClient) -> None:
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
    assert document["alert_rules"]["cpu-prod"]["config"] == {"threshold": 90, "for_duration": "10m"}
    document["script_policies"]["mount-gpu1"]["config"] = {"paths": "/x", "retries": 2}
    apply(api, document)
    document["alert_rules"]["cpu-prod"]["config"] = {"threshold": 95}
    document["script_policies"]["mount-gpu1"]["config"] = {"paths": "/x"}
    applied = apply(api, document)
    assert ("alert_rules", "cpu-prod", "update") in actions(applied)
    assert ("script_policies", "mount-gpu1", "update") in actions(applied)
    after = export(api)
    assert after["alert_rules"]["cpu-prod"]["config"] == {"threshold": 95}
    assert after["script_policies"]["mount-gpu1"]["config"] == {"paths": "/x"}
    rule = api.get("/api/v1/alert-rules/cpu-prod").json()
    assert rule["rendered"]["for"] == "5m"  # the template's, now the rule sets none
    assert plan(api, after)["changed"] is False


def test_apply_refuses_a_bad_typed_value_naming_the_entry(api: TestClient) -> None:
    populate(api)
    before = export(api)
    # Exported templates carry their parameters (here inferred: threshold is a number).
    assert before["alert_templates"]["high-cpu"]["parameters"]["threshold"]["type"] == "number"
    document = copy.deepcopy(before)
    document["alert_rules"]["cpu-prod"]["config"]["threshold"] = "sixty"
    for path in ("/api/v1/config/plan", "/api/v1/config/apply"):
        response = api.post(path, json=document)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == (
            "alert_rules.cpu-prod: config.threshold: 'sixty' is not a number "
            "(HighCPUUsage.threshold: number)"
        )
    assert export(api) == before

    # A template whose parameters refuse its rules' values is refused too, by name.
    document = copy.deepcopy(before)
    document["alert_templates"]["high-cpu"]["parameters"] = {
        "threshold": {"type": "number", "min": 0, "max": 85, "unit": "%"}
    }
    response = api.post("/api/v1/config/apply", json=document)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "alert_templates.high-cpu: the change breaks the rule cpu-prod (group grp-123): "
        "config.threshold: 90 is above the maximum 85 (HighCPUUsage.threshold: number, %, "
        "0\u201385)"
    )
    assert export(api) == before


def test_a_document_without_parameters_infers_them(second: TestClient) -> None:
    document = {
        "apiVersion": "aami/v1",
        "kind": "Configuration",
        "alert_templates": {
            "load": {
                "name": "HighLoad",
                "query_template": "node_load1 > {{.threshold}}",
                "default_config": {"threshold": 2},
            }
        },
    }
    apply(second, document)
    exported = export(second)
    assert exported["alert_templates"]["load"]["parameters"] == {
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
