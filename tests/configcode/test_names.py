"""The document is keyed by names: stable, idempotent, with a field-level plan."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from fastapi.testclient import TestClient

from aami.cli.configcode import dump_yaml
from tests.configcode.fixtures import populate
from tests.configcode.test_api import apply, export, plan

# A document written by hand: names only, no id but the groups' (which people choose).
HAND_WRITTEN = """
apiVersion: aami/v1
kind: Configuration
groups:
  prod:
    name: production
targets:
  gpu-01.example.com:
    ip_address: 10.1.0.1
    group_ids: [prod]
    exporters:
      - type: node_exporter
alert_templates:
  HighCPUUsage:
    query_template: >-
      100 - avg by (instance)
      (rate(node_cpu_seconds_total{mode="idle",group_id="{{.group_id}}"}[5m])) * 100
      > {{.threshold}}
    default_config: {threshold: 80}
  NodeDown:
    query_template: up == 0
    severity: critical
    for_duration: 1m
alert_rules:
  HighCPUUsage@prod:
    config: {threshold: 80}
  NodeDown@global: {}
script_templates:
  mount-check:
    script_content: |
      #!/bin/sh
      echo "aami_mount_up 1"
script_policies:
  mount-check@target:gpu-01.example.com:
    config: {path: /data}
notification_channels:
  ops-hook:
    type: webhook
    settings: {url: "http://127.0.0.1:9/hook"}
notification_routes:
  critical:
    matchers: [{name: severity, value: critical}]
    receiver: ops-hook
"""


def cpu_expr(threshold: int) -> str:
    return (
        '100 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",group_id="prod"}[5m])) '
        f"* 100 > {threshold}"
    )


def hand_written() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(HAND_WRITTEN)
    return document


def audit_total(client: TestClient) -> int:
    total: int = client.get("/api/v1/audit?limit=1").json()["pagination"]["total"]
    return total


def test_export_apply_export_is_byte_identical_and_a_second_apply_changes_nothing(
    api: TestClient,
) -> None:
    populate(api)
    text = dump_yaml(export(api))
    document = yaml.safe_load(text)
    for _ in range(2):
        result = apply(api, document)
        assert result["changed"] is False, result
        assert result["changes"] == []
        assert result["rule_files"] == {"written": [], "removed": []}
        assert dump_yaml(export(api)) == text
    assert plan(api, document)["changed"] is False


def test_a_hand_written_document_of_names_applies_on_an_empty_server(second: TestClient) -> None:
    document = hand_written()
    result = apply(second, document)
    assert result["rule_files"]["written"] == ["global.yml", "group-prod.yml"]
    created = {(c["kind"], c["key"]) for c in result["changes"] if c["action"] == "create"}
    assert ("alert_rules", "HighCPUUsage@prod") in created
    assert ("script_policies", "mount-check@target:gpu-01.example.com") in created
    cpu = next(c for c in result["changes"] if c["key"] == "HighCPUUsage@prod")
    assert cpu["rules"] == [
        {
            "rule": "HighCPUUsage@prod",
            "rule_file": "group-prod.yml",
            "before": None,
            "after": {
                "enabled": True,
                "alert": "HighCPUUsage_Production",
                "expr": cpu_expr(80),
                "for": "5m",
                "labels": {
                    "severity": "warning",
                    "group_id": "prod",
                    "group": "production",
                    "aami_template": "HighCPUUsage",
                    "aami_scope": "group",
                },
                "annotations": {},
            },
        }
    ]

    rows = second.get("/api/v1/alert-rules").json()["data"]
    rendered = {
        (r["template_name"], r["group_id"]): (r["rendered"]["alert"], r["rendered"]["expr"])
        for r in rows
    }
    assert rendered == {
        ("HighCPUUsage", "prod"): ("HighCPUUsage_Production", cpu_expr(80)),
        ("NodeDown", None): ("NodeDown", "up == 0"),
    }
    routes = second.get("/api/v1/notification-routes").json()
    channels = second.get("/api/v1/notification-channels").json()
    assert [(r["name"], r["receiver"]) for r in routes] == [("critical", "ops-hook")]
    assert [c["name"] for c in channels] == ["ops-hook"]

    # No generated id is exported.
    text = dump_yaml(export(second))
    for path in ("alert-rules", "alert-templates", "script-policies", "targets"):
        for row in second.get(f"/api/v1/{path}").json()["data"]:
            assert row["id"] not in text, (path, row["id"])
    for path in ("notification-channels", "notification-routes"):
        for row in second.get(f"/api/v1/{path}").json():
            assert row["id"] not in text, (path, row["id"])

    # The same document again changes nothing; the export is the document, completed.
    again = plan(second, document)
    assert (again["changed"], again["changes"]) == (False, [])
    exported = export(second)
    assert list(exported["alert_rules"]) == ["HighCPUUsage@prod", "NodeDown@global"]
    assert exported["targets"]["gpu-01.example.com"]["group_ids"] == ["prod"]
    assert exported["notification_routes"]["critical"]["receiver"] == "ops-hook"
    assert plan(second, exported)["changed"] is False


def test_the_plan_shows_each_field_old_and_new_and_the_promql_before_and_after(
    second: TestClient,
) -> None:
    document = hand_written()
    apply(second, document)
    document["alert_rules"]["HighCPUUsage@prod"]["config"]["threshold"] = 90
    result = plan(second, document)
    assert result["changed"] is True
    [change] = result["changes"]
    assert (change["kind"], change["key"], change["action"]) == (
        "alert_rules",
        "HighCPUUsage@prod",
        "update",
    )
    assert change["fields"] == [{"field": "config.threshold", "old": 80, "new": 90}]
    [effect] = change["rules"]
    assert effect["rule_file"] == "group-prod.yml"
    assert effect["before"]["alert"] == effect["after"]["alert"] == "HighCPUUsage_Production"
    assert effect["before"]["expr"] == cpu_expr(80)
    assert effect["after"]["expr"] == cpu_expr(90)
    assert result["rule_files"] == {"written": ["group-prod.yml"], "removed": []}

    # A template change shows each rule on it whose rendered rule changes; a group change
    # each rule of the group.
    document = hand_written()
    document["alert_templates"]["NodeDown"]["query_template"] = 'up{job="node"} == 0'
    document["alert_templates"]["NodeDown"]["severity"] = "warning"
    document["groups"]["prod"]["name"] = "production-eu"
    result = plan(second, document)
    changes = {c["key"]: c for c in result["changes"]}
    assert changes["NodeDown"]["fields"] == [
        {"field": "query_template", "old": "up == 0", "new": 'up{job="node"} == 0'},
        {"field": "severity", "old": "critical", "new": "warning"},
    ]
    [effect] = changes["NodeDown"]["rules"]
    assert (effect["rule"], effect["rule_file"]) == ("NodeDown@global", "global.yml")
    assert (effect["before"]["expr"], effect["after"]["expr"]) == ("up == 0", 'up{job="node"} == 0')
    # Renaming a group renames its alerts.
    [effect] = changes["prod"]["rules"]
    assert effect["before"]["alert"] == "HighCPUUsage_Production"
    assert effect["after"]["alert"] == "HighCPUUsage_ProductionEu"
    assert result["rule_files"]["written"] == ["global.yml", "group-prod.yml"]


def test_a_refusal_names_the_entry_and_changes_nothing(second: TestClient) -> None:
    apply(second, hand_written())
    before = export(second)
    audit_before = audit_total(second)

    def refused(document: dict[str, Any]) -> str:
        for path in ("/api/v1/config/plan", "/api/v1/config/apply"):
            response = second.post(path, json=document)
            assert response.status_code == 422, response.text
        assert export(second) == before
        assert audit_total(second) == audit_before
        detail: str = response.json()["detail"]
        return detail

    document = hand_written()
    document["alert_rules"]["HighCPUUsage@prod"]["config"]["threshold"] = "abc"
    assert refused(document) == (
        "alert_rules[\"HighCPUUsage@prod\"].config.threshold: 'abc' is not a number "
        "(HighCPUUsage.threshold: number)"
    )

    document = hand_written()
    document["alert_rules"]["HighCPUUsag@prod"] = {"config": {"threshold": 70}}
    assert refused(document) == (
        "alert_rules[\"HighCPUUsag@prod\"]: unknown alert template 'HighCPUUsag': neither the "
        "document's alert_templates nor the server has it"
    )

    document = hand_written()
    document["notification_routes"]["critical"]["receiver"] = "pager"
    assert "unknown notification channel 'pager'" in refused(document)

    document = hand_written()
    document["alert_rules"]["HighCPUUsage@prod"]["treshold"] = 3
    assert refused(document).startswith(
        'alert_rules["HighCPUUsage@prod"].treshold: unknown field; the fields are annotations, '
        "config, enabled, labels"
    )

    document = hand_written()
    document["alert_rules"]["HighCPUUsage@prod"]["enabled"] = "sometimes"
    assert refused(document).startswith('alert_rules["HighCPUUsage@prod"].enabled: ')

    document = hand_written()
    document["alert_rules"]["HighCPUUsage"] = {}
    assert "write <template name>@<group id> or <template name>@global" in refused(document)


def test_the_id_keyed_shape_is_refused_saying_what_the_key_is(second: TestClient) -> None:
    document = {
        "apiVersion": "aami/v1",
        "kind": "Configuration",
        "alert_rules": {"rule-787570c4243d": {"template_id": "tpl-b5d5", "group_id": None}},
    }
    response = second.post("/api/v1/config/plan", json=document)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "rule-787570c4243d" in detail
    assert "e.g. HighCPUUsage@prod" in detail

    document = {
        "apiVersion": "aami/v1",
        "kind": "Configuration",
        "alert_templates": {"high-cpu": {"name": "HighCPUUsage", "query_template": "up == 0"}},
    }
    response = second.post("/api/v1/config/plan", json=document)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        'alert_templates["high-cpu"].name: unknown field; the key is the template\'s name'
    )


def test_two_policies_with_one_key_are_named_not_merged(second: TestClient) -> None:
    apply(second, hand_written())
    body = {"template_id": "mount-check", "scope": "global"}
    for policy_id in ("pol-a", "pol-b"):
        response = second.post("/api/v1/script-policies", json={**body, "id": policy_id})
        assert response.status_code == 201, response.text
    response = second.get("/api/v1/config/export")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        'script_policies["mount-check@global"]: the server has two of these (pol-a and pol-b); '
        "delete one before exporting or applying a document"
    )


def test_a_removed_config_key_shows_as_unset(second: TestClient) -> None:
    document = hand_written()
    apply(second, document)
    changed = copy.deepcopy(document)
    changed["alert_rules"]["HighCPUUsage@prod"]["config"] = {}
    changed["alert_rules"]["NodeDown@global"] = {"labels": {"team": "infra"}}
    result = plan(second, changed)
    fields = {c["key"]: c["fields"] for c in result["changes"]}
    assert fields == {
        "HighCPUUsage@prod": [{"field": "config.threshold", "old": 80}],
        "NodeDown@global": [{"field": "labels.team", "new": "infra"}],
    }
