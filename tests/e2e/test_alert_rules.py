"""Per-group alert rules through the one alert path: AAMI → rule files → Prometheus →
Alertmanager → webhook, all real."""

from __future__ import annotations

import os
import signal
import sqlite3
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

TEMPLATE = {
    "name": "GPUHot",
    "query_template": 'aami_test_gpu_temperature{group_id="{{.group_id}}"} > {{.threshold}}',
    "default_config": {"threshold": 90},
    "severity": "critical",
    "for_duration": "0s",
    "annotations": {"summary": "GPU at {{ $value }} on {{ $labels.instance }}"},
}


def _fleet(stack: Stack, api: httpx.Client) -> None:
    """Two groups, one node each, both nodes at 80 degrees."""
    for group_id, name in (("grp-a", "training"), ("grp-b", "inference")):
        assert api.post("/api/v1/groups", json={"id": group_id, "name": name}).status_code == 201
    for index, (host, group_id) in enumerate((("node-a", "grp-a"), ("node-b", "grp-b"))):
        exporter = stack.node_exporters[index]
        exporter.write_metric("gpu", "aami_test_gpu_temperature 80\n")
        response = api.post(
            "/api/v1/targets",
            json={
                "hostname": host,
                "ip_address": "127.0.0.1",
                "group_ids": [group_id],
                "exporters": [{"type": "node_exporter", "port": exporter.port}],
            },
        )
        assert response.status_code == 201, response.text
    wait_for(
        lambda: len(stack.query("aami_test_gpu_temperature")) == 2,
        timeout=30,
        what="both nodes scraped",
    )


def _rule_names(stack: Stack) -> dict[str, list[str]]:
    return {name: [r["name"] for r in rules] for name, rules in stack.loaded_rules().items()}


def test_group_thresholds_reach_the_webhook(alert_stack: Stack) -> None:
    stack = alert_stack
    assert stack.webhook is not None
    with stack.api as api:
        _fleet(stack, api)
        assert api.post("/api/v1/alert-templates", json=TEMPLATE).status_code == 201
        hot = api.post(
            "/api/v1/alert-rules",
            json={"template_id": "GPUHot", "group_id": "training", "config": {"threshold": 70}},
        )
        assert hot.status_code == 201, hot.text
        cool = api.post(
            "/api/v1/alert-rules",
            json={"template_id": "GPUHot", "group_id": "inference", "config": {"threshold": 90}},
        )
        assert cool.status_code == 201, cool.text

        wait_for(
            lambda: {"aami-grp-a", "aami-grp-b"} <= set(_rule_names(stack)),
            timeout=30,
            what="both group files loaded by Prometheus",
        )
        alert = stack.webhook.wait_for_alert(alertname="GPUHot_Training")
        assert alert["labels"]["group_id"] == "grp-a"
        assert alert["labels"]["group"] == "training"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["instance"] == "node-a"
        assert alert["annotations"]["summary"] == "GPU at 80 on node-a"
        # group b's node is below its own threshold: Prometheus has the rule, it is inactive
        rules_b = stack.loaded_rules()["aami-grp-b"]
        assert rules_b[0]["name"] == "GPUHot_Inference"
        assert rules_b[0]["state"] == "inactive"
        assert not [a for a in stack.webhook.alerts() if a["labels"]["group_id"] == "grp-b"]

        # lowering group b's threshold through the API makes its alert arrive too
        response = api.put(
            f"/api/v1/alert-rules/{cool.json()['id']}", json={"config": {"threshold": 75}}
        )
        assert response.status_code == 200, response.text
        alert_b = stack.webhook.wait_for_alert(alertname="GPUHot_Inference")
        assert alert_b["labels"]["group_id"] == "grp-b"
        assert alert_b["labels"]["instance"] == "node-b"

        # deleting a rule removes it from Prometheus
        assert api.delete(f"/api/v1/alert-rules/{hot.json()['id']}").status_code == 204
        wait_for(
            lambda: "aami-grp-a" not in _rule_names(stack),
            timeout=30,
            what="group a's rules gone from Prometheus",
        )
        assert not (stack.rules_dir / "group-grp-a.yml").exists()
        status = api.get("/api/v1/prometheus/status").json()
        assert status["rule_groups"]["in_sync"] is True
        assert status["last_publish"]["result"] == "ok"


def test_prometheus_unreachable_during_a_change(alert_stack: Stack) -> None:
    stack = alert_stack
    with stack.api as api:
        _fleet(stack, api)
        assert api.post("/api/v1/alert-templates", json=TEMPLATE).status_code == 201
        prometheus_pid = stack.prometheus.popen.pid  # type: ignore[union-attr]
        # Frozen, Prometheus accepts connections but never answers: the reload times out.
        os.kill(prometheus_pid, signal.SIGSTOP)
        try:
            response = api.post(
                "/api/v1/alert-rules",
                json={"template_id": "GPUHot", "group_id": "grp-a", "config": {"threshold": 70}},
            )
            assert response.status_code == 201, response.text
            wait_for(
                lambda: (stack.rules_dir / "group-grp-a.yml").exists(),
                timeout=15,
                what="the rule file written while Prometheus is down",
            )

            def pending() -> dict[str, Any] | None:
                status = api.get("/api/v1/prometheus/status").json()
                return status if status["reload_pending"] else None

            status = wait_for(pending, timeout=30, what="the status to show a pending reload")
            assert status["reachable"] is False
            assert status["last_publish"]["result"] == "pending_reload"
            assert status["last_publish"]["files_written"] == ["group-grp-a.yml"]
        finally:
            os.kill(prometheus_pid, signal.SIGCONT)
        # No restart and no manual step: the publisher's retry reloads it.
        wait_for(
            lambda: "aami-grp-a" in _rule_names(stack),
            timeout=60,
            what="the rules loaded after Prometheus answers again",
        )
        status = api.get("/api/v1/prometheus/status").json()
        assert status["reload_pending"] is False
        # the publisher reloaded by itself (its retry, or the next pass) after the pending one
        history = api.get("/api/v1/prometheus/rules/history").json()["data"]
        pending = next(i for i, h in enumerate(history) if h["result"] == "pending_reload")
        assert any(h["reload"] == "ok" and h["actor"] == "publisher" for h in history[:pending])
        assert stack.webhook is not None
        stack.webhook.wait_for_alert(alertname="GPUHot_Training")


def test_a_file_promtool_rejects_never_replaces_the_good_one(alert_stack: Stack) -> None:
    stack = alert_stack
    with stack.api as api:
        _fleet(stack, api)
        assert api.post("/api/v1/alert-templates", json=TEMPLATE).status_code == 201
        response = api.post(
            "/api/v1/alert-rules",
            json={"template_id": "GPUHot", "group_id": "grp-a", "config": {"threshold": 70}},
        )
        assert response.status_code == 201
        wait_for(lambda: "aami-grp-a" in _rule_names(stack), timeout=30, what="rules loaded")
        good = (stack.rules_dir / "group-grp-a.yml").read_bytes()

        # Bypass the API: an annotation Prometheus's template engine refuses.
        with sqlite3.connect(stack.tmp / "aami.db") as db:
            db.execute(
                "UPDATE alert_templates SET annotations = ? WHERE name = 'GPUHot'",
                ('{"summary": "{{ no_such_function $value }}"}',),
            )
        result = api.post("/api/v1/prometheus/rules/regenerate/grp-a").json()
        assert result["validation"] == "failed"
        assert "group-grp-a.yml" in result["files_rejected"]
        assert "no_such_function" in result["files_rejected"]["group-grp-a.yml"]
        assert result["files_written"] == []
        assert result["result"] == "failed"
        assert (stack.rules_dir / "group-grp-a.yml").read_bytes() == good
        assert not list((stack.rules_dir).glob("*.tmp*"))
        # Prometheus keeps the previous rules and keeps evaluating them
        rules = stack.loaded_rules()["aami-grp-a"]
        assert rules[0]["annotations"]["summary"] == "GPU at {{ $value }} on {{ $labels.instance }}"
        assert stack.webhook is not None
        stack.webhook.wait_for_alert(alertname="GPUHot_Training")
