from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from aami.alerts.defaults import DEFAULT_ALERT_TEMPLATES
from aami.checks.defaults import DEFAULT_SCRIPT_TEMPLATES
from aami.cli.main import app
from tests.support.ports import free_port
from tests.support.processes import Process, aami_server, binary

TOKEN = "seed-admin-token-0123456789"
runner = CliRunner()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process: Process = aami_server(
        tmp_path, port=port, token=TOKEN, env={"PROMETHEUS_RELOAD_ENABLED": "false"}
    )
    process.start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/health/ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_seed_is_idempotent(server: str) -> None:
    first = runner.invoke(app, ["seed", "--server", server, "--token", TOKEN])
    assert first.exit_code == 0, first.output
    assert f"alert_templates: {len(DEFAULT_ALERT_TEMPLATES)} created, 0 already there" in (
        first.output
    )
    second = runner.invoke(app, ["seed", "--server", server], env={"AAMI_TOKEN": TOKEN})
    assert second.exit_code == 0
    assert f"0 created, {len(DEFAULT_ALERT_TEMPLATES)} already there" in second.output
    assert f"script_templates: 0 created, {len(DEFAULT_SCRIPT_TEMPLATES)} already" in second.output
    names = {
        t["name"]
        for t in httpx.get(
            f"{server}/api/v1/alert-templates", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()["data"]
    }
    assert names == {t["name"] for t in DEFAULT_ALERT_TEMPLATES}


def test_seed_errors_are_one_line(server: str) -> None:
    bad = runner.invoke(app, ["seed", "--server", server, "--token", "wrong-token-0123456789"])
    assert bad.exit_code == 5
    assert "401" in bad.output
    assert "Traceback" not in bad.output
    down = runner.invoke(
        app, ["seed", "--server", f"http://127.0.0.1:{free_port()}", "--token", TOKEN]
    )
    assert down.exit_code == 6
    assert "cannot reach" in down.output


def test_every_default_template_makes_rules_promtool_accepts(server: str, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server, headers=headers) as api:
        api.post("/api/v1/seed")
        api.post("/api/v1/groups", json={"id": "grp-123", "name": "production"})
        for template in DEFAULT_ALERT_TEMPLATES:
            response = api.post(
                "/api/v1/alert-rules", json={"template_id": template["name"], "group_id": "grp-123"}
            )
            assert response.status_code == 201, response.text
        result = api.post("/api/v1/prometheus/rules/regenerate?wait=25", timeout=40).json()
    assert result["validation"] in ("ok", "skipped")
    rule_file = tmp_path / "rules" / "group-grp-123.yml"
    check = subprocess.run(
        [binary("promtool"), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # every template's alert, and the recording rule that stamps the file
    assert f"{len(DEFAULT_ALERT_TEMPLATES) + 1} rules found" in check.stdout
