"""The one notification path with the shipped Alertmanager config, all real: routing,
silences through AAMI, expire_on_resolve, inhibition, managed routes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def _template(name: str, severity: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "query_template": query,
        "default_config": {"threshold": 70},
        "severity": severity,
        "for_duration": "0s",
    }


def _nodes(stack: Stack, api: httpx.Client, temperatures: dict[str, int]) -> None:
    """node-a and node-b in group production, with the given temperatures."""
    api.post("/api/v1/groups", json={"id": "grp-prod", "name": "production"})
    for index, (host, value) in enumerate(temperatures.items()):
        exporter = stack.node_exporters[index]
        exporter.write_metric("gpu", f"aami_test_gpu_temperature {value}\n")
        response = api.post(
            "/api/v1/targets",
            json={
                "hostname": host,
                "ip_address": "127.0.0.1",
                "group_ids": ["grp-prod"],
                "exporters": [{"type": "node_exporter", "port": exporter.port}],
            },
        )
        assert response.status_code == 201, response.text
    wait_for(
        lambda: len(stack.query("aami_test_gpu_temperature")) == len(temperatures),
        timeout=30,
        what="the nodes scraped",
    )


def _alerts(api: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = api.get("/api/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_silences_through_aami(alert_stack: Stack) -> None:
    stack = alert_stack
    hook = stack.webhook
    assert hook is not None
    with stack.api as api:
        _nodes(stack, api, {"node-a": 80, "node-b": 80})
        api.post(
            "/api/v1/alert-templates",
            json=_template(
                "GPUHot",
                "critical",
                'aami_test_gpu_temperature{group_id="{{.group_id}}"} > {{.threshold}}',
            ),
        )
        assert (
            api.post(
                "/api/v1/alert-rules", json={"template_id": "GPUHot", "group_id": "production"}
            ).status_code
            == 201
        )

        # critical: on-call gets it at once (group_wait 0s), production team too
        alert = hook.wait_for_alert(alertname="GPUHot_Production", instance="node-a")
        assert alert["labels"]["severity"] == "critical"
        assert {a["labels"]["instance"] for a in hook.alerts(path="/oncall")} == {
            "node-a",
            "node-b",
        }
        assert hook.alerts(path="/production-team")

        # a silence that would mute every firing alert is refused, with the count
        response = api.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "severity", "value": "critical"}],
                "duration": "1h",
                "created_by": "ops",
                "comment": "too broad",
            },
        )
        assert response.status_code == 422
        assert "2 of the 2 firing alerts" in response.json()["detail"]

        silence = api.post(
            "/api/v1/silences",
            json={
                "matchers": [
                    {"name": "alertname", "value": "GPUHot_Production"},
                    {"name": "instance", "value": "node-a"},
                ],
                "duration": "1h",
                "created_by": "ops",
                "comment": "node-a maintenance",
            },
        )
        assert silence.status_code == 201, silence.text
        silence_id = silence.json()["id"]
        silenced = wait_for(
            lambda: _alerts(api, state="silenced"), timeout=30, what="the alert shown as silenced"
        )
        assert [a["labels"]["instance"] for a in silenced] == ["node-a"]
        assert silenced[0]["silenced_by"] == [silence_id]

        # while silenced, a new notification for node-a's group does not go out: make both
        # alerts resolve and fire again; node-b's comes back, node-a's does not
        before = len(hook.alerts())
        for exporter in stack.node_exporters:
            exporter.write_metric("gpu", "aami_test_gpu_temperature 20\n")
        wait_for(
            lambda: any(
                a["labels"].get("instance") == "node-b" for a in hook.alerts(status="resolved")
            ),
            timeout=60,
            what="node-b's alert resolved",
        )
        for exporter in stack.node_exporters:
            exporter.write_metric("gpu", "aami_test_gpu_temperature 85\n")
        mark = len(hook.alerts())
        wait_for(
            lambda: any(
                a["labels"].get("instance") == "node-b" and a["status"] == "firing"
                for a in hook.alerts()[mark:]
            ),
            timeout=60,
            what="node-b firing again",
        )
        assert not [
            a
            for a in hook.alerts()[before:]
            if a["labels"].get("instance") == "node-a" and a["status"] == "firing"
        ]

        # expiring the silence through AAMI lets node-a's notification through
        assert api.delete(f"/api/v1/silences/{silence_id}").status_code == 204
        mark = len(hook.alerts())
        wait_for(
            lambda: any(
                a["labels"].get("instance") == "node-a" and a["status"] == "firing"
                for a in hook.alerts()[mark:]
            ),
            timeout=60,
            what="node-a's notification after the silence ended",
        )

        # expire_on_resolve: the silence ends by itself once node-b's alert resolves
        target_silence = api.post(
            "/api/v1/silences/target/node-b",
            json={
                "hours": 2,
                "comment": "fan swap",
                "created_by": "ops",
                "expire_on_resolve": True,
            },
        )
        assert target_silence.status_code == 201, target_silence.text
        watched = target_silence.json()["id"]
        assert target_silence.json()["expire_on_resolve"] is True
        wait_for(
            lambda: any(
                a["labels"]["instance"] == "node-b" for a in _alerts(api, state="silenced")
            ),
            timeout=30,
            what="node-b silenced",
        )
        stack.node_exporters[1].write_metric("gpu", "aami_test_gpu_temperature 20\n")
        wait_for(
            lambda: api.get(f"/api/v1/silences/{watched}").json()["state"] == "expired",
            timeout=60,
            what="the expire_on_resolve silence to expire",
        )


def test_group_rule_inhibits_the_global_duplicate(alert_stack: Stack) -> None:
    stack = alert_stack
    hook = stack.webhook
    assert hook is not None
    with stack.api as api:
        _nodes(stack, api, {"node-a": 80})
        api.post(
            "/api/v1/alert-templates",
            json=_template("GPUWarm", "warning", "aami_test_gpu_temperature > {{.threshold}}"),
        )
        # The group alert fires first: Alertmanager must know an inhibition's source before
        # the alert it mutes arrives, or that one notification can slip through.
        group_rule = api.post(
            "/api/v1/alert-rules",
            json={"template_id": "GPUWarm", "group_id": "production", "config": {"threshold": 60}},
        )
        assert group_rule.status_code == 201
        hook.wait_for_alert(alertname="GPUWarm_Production", instance="node-a")
        global_rule = api.post(
            "/api/v1/alert-rules", json={"template_id": "GPUWarm", "config": {"threshold": 50}}
        )
        assert global_rule.status_code == 201
        wait_for(
            lambda: any(
                r["name"] == "GPUWarm" and r["state"] == "firing"
                for r in stack.loaded_rules().get("aami-global", [])
            ),
            timeout=30,
            what="the global rule firing in Prometheus",
        )
        inhibited = wait_for(
            lambda: [
                a for a in _alerts(api, state="inhibited") if a["labels"]["alertname"] == "GPUWarm"
            ],
            timeout=30,
            what="the global alert inhibited",
        )
        assert inhibited[0]["labels"]["aami_scope"] == "global"
        assert not [a for a in hook.alerts() if a["labels"]["alertname"] == "GPUWarm"]
        firing = {a["labels"]["alertname"] for a in _alerts(api, state="active")}
        assert "GPUWarm_Production" in firing
        assert "GPUWarm" not in firing


def test_managed_route_and_a_rejected_receiver(alert_stack: Stack) -> None:
    stack = alert_stack
    hook = stack.webhook
    assert hook is not None
    with stack.api as api:
        _nodes(stack, api, {"node-a": 80})
        channel = api.post(
            "/api/v1/notification-channels",
            json={"name": "second", "type": "webhook", "settings": {"url": hook.url("/second")}},
        )
        assert channel.status_code == 201, channel.text
        route = api.post(
            "/api/v1/notification-routes",
            json={
                "name": "production",
                "matchers": [{"name": "group", "value": "production"}],
                "receiver": "second",
                "group_wait": "0s",
                "position": 0,
            },
        )
        assert route.status_code == 201, route.text
        # Written, reloaded and confirmed after the commit, by the publisher.
        status = wait_for(
            lambda: (answer := api.get("/api/v1/alertmanager/status").json())["in_sync"] and answer,
            timeout=30,
            what="Alertmanager to run the managed config",
        )
        assert status["reachable"] is True
        assert status["config"]["loaded_revision"] == status["config"]["desired_revision"]
        assert status["last_publish"]["reload"] == "ok"
        running = httpx.get(f"{stack.alertmanager_url}/api/v2/status").json()["config"]["original"]
        assert "name: second" in running

        api.post(
            "/api/v1/alert-templates",
            json=_template(
                "GPUWarm",
                "warning",
                'aami_test_gpu_temperature{group_id="{{.group_id}}"} > {{.threshold}}',
            ),
        )
        api.post("/api/v1/alert-rules", json={"template_id": "GPUWarm", "group_id": "production"})
        wait_for(
            lambda: hook.alerts(path="/second"),
            timeout=60,
            what="the production alert at the managed receiver",
        )
        alerts = _alerts(api, group_id="production")
        assert alerts[0]["receivers"] == ["second"]
        assert not hook.alerts(path="/default")

        # a receiver amtool refuses: 422 with amtool's words, the running config unchanged
        bad = api.post(
            "/api/v1/notification-channels",
            json={
                "name": "mail",
                "type": "email",
                "settings": {"to": "ops@example.com", "smarthost": "no-port-here"},
            },
        )
        assert bad.status_code == 422
        assert "amtool" in bad.json()["detail"]
        assert (
            httpx.get(f"{stack.alertmanager_url}/api/v2/status").json()["config"]["original"]
            == running
        )
        assert [c["name"] for c in api.get("/api/v1/notification-channels").json()] == ["second"]
