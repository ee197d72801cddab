"""``aami registrations`` and ``aami agent register`` against a live server process: a
queued registration is listed, approved or rejected by the admin's CLI, and the waiting
agent collects its node token (or learns it was refused)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from aami.cli.main import app
from tests.support.ports import free_port
from tests.support.processes import aami_server

TOKEN = "cli-registrations-token-0123"
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("registrations")
    port = free_port()
    process = aami_server(
        tmp,
        port=port,
        token=TOKEN,
        env={"PROMETHEUS_RELOAD_ENABLED": "false", "ALERTMANAGER_URL": "http://127.0.0.1:1"},
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/health/ready")
        with _api(url) as api:
            api.post("/api/v1/groups", json={"id": "grp-a", "name": "a"}).raise_for_status()
        yield url
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("AAMI_SERVER", "AAMI_TOKEN", "AAMI_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})


def aami(server: str, *args: str, code: int = 0) -> Result:
    result = runner.invoke(app, [*args, "--server", server, "--token", TOKEN])
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    if code:
        assert result.output.startswith("error: "), result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    return result


def _bootstrap(server: str, name: str) -> str:
    with _api(server) as api:
        answer = api.post("/api/v1/bootstrap-tokens", json={"name": name, "group_id": "grp-a"})
        answer.raise_for_status()
        return str(answer.json()["token"])


def _queue(server: str, token: str, hostname: str) -> dict[str, Any]:
    """A registration from 127.0.0.1 claiming another address: it waits for an admin."""
    answer = httpx.post(
        f"{server}/api/v1/bootstrap/register",
        json={"hostname": hostname, "ip_address": "10.0.0.9"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def _pending(server: str, hostname: str) -> list[dict[str, Any]]:
    with _api(server) as api:
        rows = api.get("/api/v1/registrations/pending", params={"limit": 1000}).json()["data"]
    return [r for r in rows if r["hostname"] == hostname]


def test_list_approve_reject(server: str) -> None:
    token = _bootstrap(server, "cli-list")
    first = _queue(server, token, "cli-node-01")
    second = _queue(server, token, "cli-node-02")

    table = aami(server, "registrations", "list").stdout
    assert first["registration_id"] in table
    assert "cli-node-01" in table
    assert "10.0.0.9" in table
    assert "new node" in table
    listed = json.loads(aami(server, "registrations", "list", "-o", "json").stdout)
    assert {first["registration_id"], second["registration_id"]} <= {
        r["id"] for r in listed["data"]
    }

    approved = aami(server, "registrations", "approve", first["registration_id"])
    assert f"approved {first['registration_id']}: cli-node-01 is target tgt-" in approved.stdout
    with _api(server) as api:
        target = api.get("/api/v1/targets/cli-node-01").json()
    assert target["ip_address"] == "10.0.0.9"
    assert target["group_ids"] == ["grp-a"]
    refused = aami(server, "registrations", "reject", first["registration_id"], code=7)
    assert "409" in refused.output
    assert "not pending" in refused.output

    rejected = aami(
        server, "registrations", "reject", second["registration_id"], "--reason", "who is this"
    )
    assert rejected.stdout.strip() == f"rejected {second['registration_id']} (cli-node-02)"
    shown = json.loads(
        aami(server, "registrations", "get", second["registration_id"], "-o", "json").stdout
    )
    assert shown["status"] == "rejected"
    assert shown["decision_reason"] == "who is this"
    with _api(server) as api:
        assert api.get("/api/v1/targets/cli-node-02").status_code == 404
    aami(server, "registrations", "approve", "reg-does-not-exist", code=4)
    left = json.loads(aami(server, "registrations", "list", "-o", "json").stdout)["data"]
    assert not {"cli-node-01", "cli-node-02"} & {r["hostname"] for r in left}


def _agent_register(server: str, token: str, config: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aami",
        "agent",
        "register",
        "--server",
        server,
        "--insecure-http",
        "--bootstrap-token",
        token,
        "--hostname",
        "agent-node-01",
        "--ip-address",
        "10.0.0.9",
        "--config",
        str(config),
        "--cache-dir",
        str(config.parent / "cache"),
        *extra,
    ]


def test_the_agent_waits_resumes_and_collects_its_token_once_approved(
    server: str, tmp_path: Path
) -> None:
    token = _bootstrap(server, "agent-approve")
    config = tmp_path / "agent.yaml"
    state = tmp_path / "agent.yaml.pending"

    # not waiting: exit 3, and the wait is remembered (privately) for the next run
    quick = subprocess.run(
        _agent_register(server, token, config, "--wait", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert quick.returncode == 3, quick.stderr
    assert "waits for an admin's approval" in quick.stderr
    assert "is not the address the request came from (127.0.0.1)" in quick.stderr
    assert "still waiting for an admin's approval after 0s" in quick.stderr
    assert not config.exists()
    assert state.stat().st_mode & 0o777 == 0o600
    [pending] = _pending(server, "agent-node-01")

    # again, waiting: the same registration (no second one), approved meanwhile
    agent = subprocess.Popen(
        _agent_register(server, token, config, "--wait", "120"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert agent.stderr is not None
        first_line = agent.stderr.readline()
        assert f"registration {pending['id']} of agent-node-01 still waits" in first_line
        assert [p["id"] for p in _pending(server, "agent-node-01")] == [pending["id"]]
        aami(server, "registrations", "approve", pending["id"])
        out, err = agent.communicate(timeout=60)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0, err
    assert "registered agent-node-01 as target tgt-" in out
    assert not state.exists()
    written = yaml.safe_load(config.read_text())
    node = {"Authorization": f"Bearer {written['token']}"}
    checks = httpx.get(f"{server}/api/v1/checks/target/{written['target_id']}", headers=node)
    assert checks.status_code == 200, checks.text
    with _api(server) as api:
        assert api.get("/api/v1/targets/agent-node-01").json()["ip_address"] == "10.0.0.9"

    # re-registering from its real address: the config's node token proves it is the node
    argv = _agent_register(server, token, config, "--wait", "0")
    argv[argv.index("10.0.0.9")] = "127.0.0.1"
    again = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0, again.stderr
    assert "registered agent-node-01" in again.stdout
    rotated = yaml.safe_load(config.read_text())
    assert rotated["target_id"] == written["target_id"]
    assert rotated["token"] != written["token"]
    with _api(server) as api:
        assert api.get("/api/v1/targets/agent-node-01").json()["ip_address"] == "127.0.0.1"
    old = httpx.get(f"{server}/api/v1/checks/target/{written['target_id']}", headers=node)
    assert old.status_code == 401


def test_the_agent_says_when_its_registration_is_rejected(server: str, tmp_path: Path) -> None:
    token = _bootstrap(server, "agent-reject")
    config = tmp_path / "agent.yaml"
    argv = _agent_register(server, token, config, "--wait", "0")
    argv[argv.index("agent-node-01")] = "agent-node-02"
    assert subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode == 3
    [pending] = _pending(server, "agent-node-02")
    aami(server, "registrations", "reject", pending["id"], "--reason", "not in the inventory")
    argv[argv.index("0")] = "30"
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1, refused.stderr
    assert "not approved (403)" in refused.stderr
    assert "rejected by admin: not in the inventory" in refused.stderr
    assert not (tmp_path / "agent.yaml.pending").exists()
    assert not config.exists()
