"""Alert history end to end, all real: node_exporter's textfile metric flips, Prometheus
fires and resolves, Alertmanager (with the config AAMI writes, history receiver included)
posts to AAMI's webhook with the history token, and the history shows each transition
and the flap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

HISTORY_TOKEN = "e2e-history-token-0123456789"
ALERT = "Flappy_Production"


@pytest.fixture
def history_stack(tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(
        tmp_path, node_exporters=1, with_alertmanager=True, history_token=HISTORY_TOKEN
    )
    try:
        yield running
    finally:
        stop_stack(running)


def _transitions(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/api/v1/alert-history", params={"alertname": ALERT})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return list(reversed(data))  # oldest first


def _statuses(api: httpx.Client) -> list[str]:
    return [t["status"] for t in _transitions(api)]


def test_fire_resolve_fire_is_recorded_with_its_flap(history_stack: Stack) -> None:
    stack = history_stack
    assert stack.alertmanager_url is not None
    exporter = stack.node_exporters[0]
    with stack.api as api:
        # The config AAMI writes and Alertmanager runs has the history receiver first.
        def running_config() -> dict[str, Any] | None:
            status = httpx.get(f"{stack.alertmanager_url}/api/v2/status", timeout=5).json()
            config: dict[str, Any] = yaml.safe_load(status["config"]["original"])
            names = [r["name"] for r in config["receivers"]]
            return config if "aami-history" in names else None

        config = wait_for(running_config, timeout=60, what="Alertmanager running AAMI's config")
        first = config["route"]["routes"][0]
        assert first["receiver"] == "aami-history"
        assert first["continue"] is True
        (hook,) = next(r for r in config["receivers"] if r["name"] == "aami-history")[
            "webhook_configs"
        ]
        assert hook["url"] == f"{stack.server_url}/api/v1/alert-history/webhook"
        assert HISTORY_TOKEN not in status_text(stack)  # the token is in a file, not the config

        exporter.write_metric("flap", "aami_test_flap 1\n")
        assert api.post("/api/v1/groups", json={"id": "prod", "name": "production"}).status_code
        target = api.post(
            "/api/v1/targets",
            json={
                "hostname": "node-f",
                "ip_address": "127.0.0.1",
                "group_ids": ["prod"],
                "exporters": [{"type": "node_exporter", "port": exporter.port}],
            },
        )
        assert target.status_code == 201, target.text
        template = {
            "name": "Flappy",
            "query_template": 'aami_test_flap{group_id="{{.group_id}}"} > {{.threshold}}',
            "default_config": {"threshold": 0},
            "severity": "warning",
            "for_duration": "0s",
        }
        assert api.post("/api/v1/alert-templates", json=template).status_code == 201
        rule = api.post("/api/v1/alert-rules", json={"template_id": "Flappy", "group_id": "prod"})
        assert rule.status_code == 201, rule.text

        wait_for(lambda: _statuses(api)[:1] == ["firing"], timeout=90, what="the firing transition")
        fired = _transitions(api)[0]
        assert fired["instance"] == "node-f"
        assert fired["group_id"] == "prod"
        assert fired["labels"]["aami_template"] == "Flappy"
        assert fired["receiver"] == "aami-history"

        exporter.write_metric("flap", "aami_test_flap 0\n")
        wait_for(
            lambda: _statuses(api)[:2] == ["firing", "resolved"],
            timeout=90,
            what="the resolved transition",
        )
        resolved = _transitions(api)[1]
        assert resolved["starts_at"] == fired["starts_at"]  # the same episode
        assert resolved["ends_at"] is not None

        exporter.write_metric("flap", "aami_test_flap 1\n")
        wait_for(
            lambda: _statuses(api)[:3] == ["firing", "resolved", "firing"],
            timeout=90,
            what="the alert firing again",
        )
        summary = api.get("/api/v1/alert-history/summary", params={"alertname": ALERT}).json()
        statuses = _statuses(api)
        (alert,) = summary["alerts"]
        # A scrape missed on a loaded machine is a real flap too: count what was recorded.
        firings, resolutions = statuses.count("firing"), statuses.count("resolved")
        assert (alert["fired"], alert["resolved"]) == (firings, resolutions), statuses
        assert alert["flaps"] == firings - 1 >= 1
        assert summary["targets"][0]["name"] == "node-f"
        assert summary["targets"][0]["flaps"] == firings - 1
        assert summary["groups"][0]["name"] == "prod"


def status_text(stack: Stack) -> str:
    return httpx.get(f"{stack.alertmanager_url}/api/v2/status", timeout=5).text
