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
        status = wait_for(
            lambda: (answer := api.get("/api/v1/prometheus/status").json())["in_sync"] and answer,
            timeout=15,
            what="the status to say in sync",
        )
        assert status["last_publish"]["result"] == "ok"
        assert set(status["groups"]) == {"grp-b"}
        group_b = status["groups"]["grp-b"]
        assert group_b["desired_revision"] == group_b["written_revision"]
        assert group_b["written_revision"] == group_b["loaded_revision"]


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
        pending_at = next(i for i, h in enumerate(history) if h["result"] == "pending_reload")
        assert any(h["reload"] == "ok" and h["actor"] == "publisher" for h in history[:pending_at])
        assert stack.webhook is not None
        stack.webhook.wait_for_alert(alertname="GPUHot_Training")


def test_a_poisoned_annotation_is_refused_and_never_blocks_other_groups(
    alert_stack: Stack,
) -> None:
    stack = alert_stack
    with stack.api as api:
        _fleet(stack, api)
        assert api.post("/api/v1/alert-templates", json=TEMPLATE).status_code == 201
        for group_id in ("grp-a", "grp-b"):
            response = api.post(
                "/api/v1/alert-rules",
                json={"template_id": "GPUHot", "group_id": group_id, "config": {"threshold": 95}},
            )
            assert response.status_code == 201, response.text
        wait_for(
            lambda: {"aami-grp-a", "aami-grp-b"} <= set(_rule_names(stack)),
            timeout=30,
            what="rules loaded",
        )

        # Through the API, an annotation Prometheus's template engine refuses is a 422 that
        # names the field, and nothing changes.
        files = {p.name: p.read_bytes() for p in stack.rules_dir.glob("*.yml")}
        poison = {"summary": "{{ no_such_function $value }}"}
        response = api.put("/api/v1/alert-templates/GPUHot", json={"annotations": poison})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail.startswith("annotations.summary: promtool rejects it")
        assert "no_such_function" in detail
        rule_a = api.get("/api/v1/alert-rules?group_id=grp-a").json()["data"][0]
        response = api.put(f"/api/v1/alert-rules/{rule_a['id']}", json={"annotations": poison})
        assert response.status_code == 422, response.text
        assert "annotations.summary" in response.json()["detail"]
        assert {p.name: p.read_bytes() for p in stack.rules_dir.glob("*.yml")} == files

        # Behind the API's back (a hand-edited database), group a's rule is poisoned and
        # marked changed: its file cannot be published, visibly, and group b goes on.
        good = (stack.rules_dir / "group-grp-a.yml").read_bytes()
        with sqlite3.connect(stack.tmp / "aami.db") as db:
            db.execute(
                "UPDATE alert_rules SET annotations = ? WHERE scope_key = 'grp-a'",
                ('{"summary": "{{ no_such_function $value }}"}',),
            )
            db.execute("UPDATE config_revisions SET revision = revision + 1 WHERE name = 'rules'")
            db.execute(
                "UPDATE rule_scope_revisions SET revision = "
                "(SELECT revision FROM config_revisions WHERE name = 'rules') "
                "WHERE scope = 'grp-a'"
            )
        result = api.post("/api/v1/prometheus/rules/regenerate/grp-a?wait=20").json()
        assert result["validation"] == "failed"
        assert "no_such_function" in result["files_rejected"]["group-grp-a.yml"]
        assert result["files_written"] == []
        assert result["result"] == "failed"
        assert (stack.rules_dir / "group-grp-a.yml").read_bytes() == good
        assert not list((stack.rules_dir).glob(".*.tmp"))

        # Group b's threshold drops to 70: published, loaded, firing, while a stays stuck.
        rule_b = api.get("/api/v1/alert-rules?group_id=grp-b").json()["data"][0]
        response = api.put(
            f"/api/v1/alert-rules/{rule_b['id']}", json={"config": {"threshold": 70}}
        )
        assert response.status_code == 200, response.text
        assert stack.webhook is not None
        stack.webhook.wait_for_alert(alertname="GPUHot_Inference")

        def settled() -> dict[str, Any] | None:
            status = api.get("/api/v1/prometheus/status").json()
            return status if status["groups"]["grp-b"]["in_sync"] else None

        status = wait_for(settled, timeout=30, what="group b in sync")
        assert status["in_sync"] is False
        assert status["out_of_sync"] == ["grp-a"]
        group_a = status["groups"]["grp-a"]
        assert group_a["desired_revision"] > group_a["written_revision"]
        assert group_a["written_revision"] == group_a["loaded_revision"]
        assert "no_such_function" in group_a["error"]
        # Prometheus keeps evaluating group a's previous rules
        rules = stack.loaded_rules()["aami-grp-a"]
        assert rules[0]["annotations"]["summary"] == "GPU at {{ $value }} on {{ $labels.instance }}"
        # and /metrics says one group is out of sync
        metrics = httpx.get(f"{stack.server_url}/metrics", timeout=5).text
        assert 'aami_publish_out_of_sync_scopes{target="prometheus"} 1.0' in metrics
        assert 'aami_publish_in_sync{target="prometheus"} 0.0' in metrics
