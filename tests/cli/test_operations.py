"""``aami rules|prometheus|checks|silence|alerts`` against a live server process and a real
Alertmanager."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from aami.cli.main import app
from aami.cli.operations import duration_hours, parse_matcher
from tests.support.ports import free_port
from tests.support.processes import aami_server, alertmanager

TOKEN = "cli-ops-token-0123456789"
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("ops")
    port, am_port = free_port(), free_port()
    am_config = tmp / "alertmanager.yml"
    am_config.write_text(
        yaml.safe_dump(
            {
                "route": {"receiver": "null", "group_by": ["alertname"]},
                "receivers": [{"name": "null"}],
            }
        )
    )
    am = alertmanager(tmp, port=am_port, config=am_config)
    process = aami_server(
        tmp,
        port=port,
        token=TOKEN,
        env={
            "PROMETHEUS_RELOAD_ENABLED": "false",
            "ALERTMANAGER_URL": f"http://127.0.0.1:{am_port}",
        },
    )
    am.start()
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        am.wait_http(f"http://127.0.0.1:{am_port}/-/ready")
        process.wait_http(f"{url}/health/ready")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            api.post("/api/v1/seed").raise_for_status()
            api.post("/api/v1/groups", json={"id": "grp-ops", "name": "ops"}).raise_for_status()
            api.post(
                "/api/v1/targets",
                json={
                    "id": "node-ops",
                    "hostname": "ops-node-01",
                    "ip_address": "10.0.0.9",
                    "group_ids": ["grp-ops"],
                },
            ).raise_for_status()
            api.post(
                "/api/v1/alert-rules",
                json={"template_id": "HighCPUUsage", "group_id": "grp-ops"},
            ).raise_for_status()
        yield url
    finally:
        process.stop()
        am.stop()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("AAMI_SERVER", "AAMI_TOKEN", "AAMI_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def aami(server: str, *args: str, code: int = 0, token: str = TOKEN) -> Result:
    result = runner.invoke(app, [*args, "--server", server, "--token", token])
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    if code:
        assert result.output.startswith("error: "), result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_rules(server: str) -> None:
    outcome = as_json(aami(server, "rules", "regenerate", "-o", "json"))
    assert outcome["result"] == "ok"
    one = aami(server, "rules", "regenerate", "grp-ops")
    assert one.stdout.startswith("regenerate: ok")

    files = as_json(aami(server, "rules", "files", "-o", "json"))
    assert "group-grp-ops.yml" in {f["name"] for f in files}
    assert "group-grp-ops.yml" in aami(server, "rules", "files").stdout

    effective = as_json(aami(server, "rules", "effective", "ops-node-01", "-o", "json"))
    assert effective["target_id"] == "node-ops"
    assert [r["alert"] for r in effective["rules"]] == ["HighCPUUsage_Ops"]
    assert "HighCPUUsage_Ops" in aami(server, "rules", "effective", "node-ops").stdout

    status = as_json(aami(server, "rules", "status", "-o", "json"))
    assert status["reload_enabled"] is False
    assert "grp-ops" in status["groups"]
    table = aami(server, "rules", "status").stdout
    assert "reload enabled" in table
    assert "in sync" in table
    # one row per group: desired, written and loaded revisions (loaded unknown here)
    row = next(line for line in table.splitlines() if line.strip("│ ").startswith("grp-ops "))
    group = status["groups"]["grp-ops"]
    assert str(group["desired_revision"]) in row
    assert group["loaded_revision"] is None

    # A remote evaluator that never reported shows under the local groups, out of sync.
    created = as_json(
        aami(
            server,
            "evaluators",
            "create",
            "--set",
            "name=prom-remote",
            "--set",
            "url=http://10.9.0.1:9090",
            "-o",
            "json",
        )
    )
    assert created["token"].startswith("aami_ev_")
    table = aami(server, "rules", "status").stdout
    row = next(line for line in table.splitlines() if "prom-remote" in line)
    assert "│ no " in row
    assert created["desired_revision"][:12] in row
    listed = aami(server, "evaluators", "list").stdout
    assert "prom-remote" in listed
    assert created["token"] not in listed
    aami(server, "evaluators", "delete", "prom-remote")

    history = as_json(aami(server, "rules", "history", "--limit", "2", "-o", "json"))
    assert history["data"]
    assert history["pagination"]["limit"] == 2
    assert "regenerate" in aami(server, "rules", "history").stdout

    assert "404" in aami(server, "rules", "effective", "no-such-node", code=4).output
    assert "404" in aami(server, "rules", "regenerate", "no-such-group", code=4).output


def test_prometheus(server: str) -> None:
    assert "reachable" in yaml.safe_load(aami(server, "prometheus", "status", "-o", "yaml").stdout)
    status = as_json(aami(server, "prometheus", "status", "-o", "json"))
    assert "reachable" in status
    reload = as_json(aami(server, "prometheus", "reload", "-o", "json"))
    assert reload["trigger"] == "reload"
    assert aami(server, "prometheus", "reload").stdout.startswith("reload: ")


def test_alertmanager(server: str) -> None:
    status = as_json(aami(server, "alertmanager", "status", "-o", "json"))
    assert status["reachable"] is True
    assert status["managed"] is False  # AAMI only validates notification changes here
    assert status["in_sync"] is None
    assert "managed" in aami(server, "alertmanager", "status").stdout
    history = as_json(aami(server, "alertmanager", "history", "-o", "json"))
    assert "data" in history


def test_checks(server: str) -> None:
    checks = as_json(aami(server, "checks", "node-ops", "-o", "json"))
    assert isinstance(checks, list)
    aami(server, "checks", "node-ops")
    explained = as_json(aami(server, "checks", "node-ops", "--explain", "-o", "json"))
    assert explained["target_id"] == "node-ops"
    assert "ops-node-01" in aami(server, "checks", "ops-node-01", "--explain").stdout
    missing = aami(server, "checks", "no-such-node", code=4)
    assert "error: 404 Not Found: target 'no-such-node' does not exist" in missing.output


def test_silences(server: str) -> None:
    by_target = as_json(
        aami(
            server,
            "silence",
            "add",
            "--target",
            "node-ops",
            "--duration",
            "1h30m",
            "--comment",
            "disk swap",
            "--created-by",
            "alice",
            "--expire-on-resolve",
            "-o",
            "json",
        )
    )
    assert by_target["created_by"] == "alice"
    assert by_target["expire_on_resolve"] is True
    by_group = aami(server, "silence", "add", "--group", "ops", "-c", "upgrade", "-d", "2h")
    assert by_group.stdout.startswith("silence ")
    by_matchers = as_json(
        aami(
            server,
            "silence",
            "add",
            "-m",
            "alertname=HighCPUUsage_Ops",
            "-m",
            "instance=~ops-.*",
            "-d",
            "30m",
            "-c",
            "noisy",
            "-o",
            "json",
        )
    )
    assert {m["name"] for m in by_matchers["matchers"]} == {"alertname", "instance"}

    listed = as_json(aami(server, "silence", "list", "-o", "json"))
    ids = {s["id"] for s in listed}
    assert {by_target["id"], by_matchers["id"]} <= ids
    assert by_target["id"] in aami(server, "silence", "list").stdout

    expired = aami(server, "silence", "expire", by_target["id"])
    assert expired.stdout.strip() == f"expired silence {by_target['id']}"
    states = {s["id"]: s["state"] for s in as_json(aami(server, "silence", "list", "-o", "json"))}
    assert states[by_target["id"]] == "expired"

    # errors: 422 from the server's guardrails, 404, and usage errors
    regex_only = aami(server, "silence", "add", "-m", "alertname=~.*", "-c", "all", code=2)
    assert "422" in regex_only.output
    assert "404" in aami(server, "silence", "add", "--target", "nope", "-c", "x", code=4).output
    assert (
        "404"
        in aami(server, "silence", "expire", "00000000-0000-0000-0000-000000000000", code=4).output
    )
    aami(server, "silence", "add", "--target", "node-ops", "--group", "ops", "-c", "x", code=2)
    aami(server, "silence", "add", "-c", "x", code=2)
    aami(server, "silence", "add", "--target", "node-ops", "-d", "soon", "-c", "x", code=2)
    aami(server, "silence", "add", "-m", "no operator", "-c", "x", code=2)


def test_alerts(server: str) -> None:
    assert as_json(aami(server, "alerts", "-o", "json")) == []
    assert "no alerts" in aami(server, "alerts", "--group", "ops").stdout


def test_errors_for_every_command_group(server: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    for args in (
        ["rules", "status"],
        ["prometheus", "status"],
        ["checks", "node-ops"],
        ["silence", "list"],
        ["alerts"],
        ["seed"],
    ):
        assert "cannot reach" in aami(down, *args, code=6).output
        assert "401" in aami(server, *args, token="wrong-token-0123456789", code=5).output
        missing = runner.invoke(app, [*args, "--server", server])
        assert missing.exit_code == 2, missing.output
        assert "no token" in missing.output


def test_legacy_token_variable_still_works_for_alerts_and_seed(server: str) -> None:
    result = runner.invoke(
        app, ["alerts", "--server", server, "-o", "json"], env={"AAMI_ADMIN_TOKEN": TOKEN}
    )
    assert result.exit_code == 0, result.output


def test_duration_and_matcher_parsing() -> None:
    assert duration_hours("2h") == 2
    assert duration_hours("1h30m") == 1.5
    assert duration_hours("1d") == 24
    assert parse_matcher("a!=b") == {
        "name": "a",
        "value": "b",
        "is_equal": False,
        "is_regex": False,
    }
    assert parse_matcher("a=~b.*")["is_regex"] is True
