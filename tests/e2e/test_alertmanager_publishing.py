"""The Alertmanager config through the publisher, with the real Alertmanager: nothing is
written or saved while Alertmanager cannot confirm it, and a batch of changes is one
reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def _am_status(api: httpx.Client) -> dict[str, Any]:
    answer: dict[str, Any] = api.get("/api/v1/alertmanager/status").json()
    return answer


def _am_history(api: httpx.Client) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.get("/api/v1/alertmanager/history?limit=100").json()["data"]
    return rows


def _restart(process: Any, url: str) -> None:
    process.stop()
    process.start()
    process.wait_http(url)


def test_alertmanager_down_at_start_nothing_is_written_or_saved(tmp_path: Path) -> None:
    stack: Stack = start_stack(
        tmp_path, with_alertmanager=True, server_env={"AAMI_PUBLISH_RETRY_MAX": "3s"}
    )
    alertmanager, server = stack.processes[0], stack.server
    config = tmp_path / "alertmanager" / "alertmanager.yml"
    base = (tmp_path / "alertmanager" / "base.yml").read_text()
    try:
        with stack.api as api:
            wait_for(lambda: _am_status(api)["in_sync"], timeout=30, what="the first publish")
        assert "# aami: revision=" in config.read_text()

        # A first start as on a new host: the operator's own file, Alertmanager down.
        server.stop()
        alertmanager.stop()
        config.write_text(base)
        server.start()
        server.wait_http(f"{stack.server_url}/health/ready")
        with stack.api as api:
            audit_before = api.get("/api/v1/audit").json()["pagination"]["total"]
            row = wait_for(
                lambda: next(
                    (r for r in _am_history(api) if r["result"] == "pending_reload"), None
                ),
                timeout=30,
                what="the publisher to find Alertmanager down",
            )
            assert "written once Alertmanager answers" in row["error"]
            assert config.read_text() == base  # nothing written
            status = _am_status(api)
            assert status["reachable"] is False
            assert status["in_sync"] is False

            response = api.post(
                "/api/v1/notification-channels",
                json={
                    "name": "pager",
                    "type": "webhook",
                    "settings": {"url": "http://127.0.0.1:9/"},
                },
            )
            assert response.status_code == 503, response.text
            assert "nothing was changed" in response.json()["detail"]
            assert api.get("/api/v1/notification-channels").json() == []
            assert api.get("/api/v1/audit").json()["pagination"]["total"] == audit_before
            assert config.read_text() == base

            # Alertmanager is back: the publisher writes, reloads and confirms by itself.
            assert stack.alertmanager_url is not None
            alertmanager.start()
            alertmanager.wait_http(f"{stack.alertmanager_url}/-/ready")
            status = wait_for(
                lambda: (answer := _am_status(api))["in_sync"] and answer,
                timeout=30,
                what="Alertmanager in sync",
            )
            assert status["config"]["written_revision"] == status["config"]["loaded_revision"]
            assert "# aami: revision=" in config.read_text()
    finally:
        stop_stack(stack)


def test_a_config_apply_with_several_notification_changes_reloads_alertmanager_once(
    alert_stack: Stack,
) -> None:
    with alert_stack.api as api:
        wait_for(lambda: _am_status(api)["in_sync"], timeout=30, what="the first publish")
        before = {row["id"] for row in _am_history(api)}
        document = api.get("/api/v1/config/export").json()
        hook = "http://127.0.0.1:9/hook"
        document["notification_channels"] = {
            f"ch-{n}": {"type": "webhook", "settings": {"url": hook}} for n in range(3)
        }
        document["notification_routes"] = {
            "production": {
                "matchers": [{"name": "group", "value": "production", "is_regex": False}],
                "receiver": "ch-0",
            }
        }
        response = api.post("/api/v1/config/apply", json=document)
        assert response.status_code == 200, response.text
        status = wait_for(
            lambda: (
                (answer := _am_status(api))["in_sync"]
                and answer["config"]["loaded_revision"] == answer["config"]["desired_revision"]
                and answer
            ),
            timeout=30,
            what="the applied config running",
        )
        assert status["config"]["desired_revision"] is not None
        new = [row for row in _am_history(api) if row["id"] not in before]
        reloads = [row for row in new if row["reload"] == "ok"]
        assert len(reloads) == 1, new
        assert reloads[0]["files_written"] == ["alertmanager.yml"]
        running = httpx.get(f"{alert_stack.alertmanager_url}/api/v2/status").json()
        assert all(f"name: ch-{n}" in running["config"]["original"] for n in range(3))
