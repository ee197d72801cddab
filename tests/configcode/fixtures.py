"""A configuration with one of everything, created through the ordinary API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

SECRET_ENV = "AAMI_SECRET_OPS_SLACK"
SECRET = "https://hooks.slack.example/T000/B000/XXXX-do-not-leak"

MOUNT_SCRIPT = """#!/bin/bash
# Report whether a path is mounted.
path="${1:-/mnt/data}"
if mountpoint -q "$path"; then v=1; else v=0; fi
echo "aami_mount_up{path=\\"$path\\"} $v"
"""


def post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/api/v1{path}", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def populate(client: TestClient) -> None:
    """Groups, targets, alert templates and rules, checks, channels and a route."""
    post(client, "/groups", {"id": "grp-123", "name": "production", "labels": {"env": "prod"}})
    post(client, "/groups", {"id": "grp-456", "name": "development"})
    post(
        client,
        "/targets",
        {
            "id": "gpu-node-01",
            "hostname": "gpu-node-01",
            "ip_address": "10.0.0.1",
            "group_ids": ["grp-123", "grp-456"],
            "labels": {"type": "gpu"},
            "exporters": [{"type": "dcgm_exporter"}, {"type": "node_exporter"}],
        },
    )
    post(
        client,
        "/targets",
        {"id": "cpu-node-01", "hostname": "cpu-node-01", "ip_address": "10.0.0.2"},
    )
    post(
        client,
        "/alert-templates",
        {
            "id": "high-cpu",
            "name": "HighCPUUsage",
            "query_template": (
                '100 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",'
                'group_id="{{.group_id}}"}[5m])) * 100 > {{.threshold}}'
            ),
            "default_config": {"threshold": 80},
            "severity": "warning",
            "annotations": {"summary": "CPU on {{ $labels.instance }} is {{ $value }}%"},
        },
    )
    post(
        client,
        "/alert-templates",
        {
            "id": "node-down",
            "name": "NodeDown",
            "query_template": 'up{job="node-exporter"} == 0',
            "severity": "critical",
            "for_duration": "1m",
        },
    )
    post(
        client,
        "/alert-rules",
        {
            "id": "cpu-prod",
            "template_id": "high-cpu",
            "group_id": "grp-123",
            "config": {"threshold": 90, "for_duration": "10m"},
        },
    )
    post(
        client, "/alert-rules", {"id": "cpu-dev", "template_id": "high-cpu", "group_id": "grp-456"}
    )
    post(client, "/alert-rules", {"id": "node-down-all", "template_id": "node-down"})
    post(
        client,
        "/script-templates",
        {
            "id": "mount-check",
            "name": "mount-check",
            "script_type": "mount",
            "script_content": MOUNT_SCRIPT,
            "default_config": {"path": "/mnt/data"},
        },
    )
    post(
        client,
        "/script-policies",
        {"id": "mount-all", "template_id": "mount-check", "scope": "global"},
    )
    post(
        client,
        "/script-policies",
        {
            "id": "mount-prod",
            "template_id": "mount-check",
            "scope": "group",
            "group_id": "grp-123",
            "config": {"path": "/mnt/prod"},
            "priority": 0,
        },
    )
    post(
        client,
        "/script-policies",
        {
            "id": "mount-gpu1",
            "template_id": "mount-check",
            "scope": "target",
            "target_id": "gpu-node-01",
            "is_active": False,
        },
    )
    post(
        client,
        "/notification-channels",
        {
            "id": "ops-hook",
            "name": "ops-hook",
            "type": "webhook",
            "settings": {"url": "http://127.0.0.1:9/hook"},
        },
    )
    post(
        client,
        "/notification-channels",
        {
            "id": "ops-slack",
            "name": "ops-slack",
            "type": "slack",
            "settings": {"channel": "#ops"},
            "secret": SECRET,
        },
    )
    post(
        client,
        "/notification-routes",
        {
            "id": "prod-route",
            "name": "production",
            "matchers": [{"name": "group", "value": "production"}],
            "receiver": "ops-slack",
            "group_wait": "0s",
            "continue": True,
        },
    )
