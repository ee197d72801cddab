"""``aami agent register|once|run`` against a real HTTP server on a loopback port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from aami.agent.cli import agent_app
from aami.agent.signing import load_keys
from tests.agent.support import (
    NODE_TOKEN,
    SERVER_KEY,
    FakeServer,
    agent_yaml,
    key_document,
    kid,
    make_check,
    mode,
    raw,
    serve,
    tls_files,
)
from tests.support.ports import free_port
from tests.support.wait import wait_for

BOOTSTRAP_TOKEN = "bootstrap-t0ken-abcdef"
runner = CliRunner()


@pytest.fixture
def registrar() -> Iterator[tuple[str, list[httpx.Request]]]:
    """A server whose register endpoint accepts BOOTSTRAP_TOKEN."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/checks/signing-keys":
            if request.headers.get("authorization") != f"Bearer {NODE_TOKEN}":
                return httpx.Response(401, json={"error": "unauthorized", "detail": "no"})
            return httpx.Response(200, json=key_document(SERVER_KEY))
        if request.url.path != "/api/v1/bootstrap/register":
            return httpx.Response(404, json={"error": "not_found", "detail": "no route"})
        if request.headers.get("authorization") != f"Bearer {BOOTSTRAP_TOKEN}":
            return httpx.Response(
                401, json={"error": "unauthorized", "detail": "invalid bootstrap token"}
            )
        body = json.loads(request.content)
        return httpx.Response(
            201,
            json={
                "target_id": "tgt-7",
                "hostname": body["hostname"],
                "group_ids": ["ml-training-group"],
                "node_token": NODE_TOKEN,
            },
        )

    with serve(handle) as url:
        yield url, seen


def test_register_writes_a_private_config_pins_the_key_and_prints_no_token(
    tmp_path: Path, registrar: tuple[str, list[httpx.Request]]
) -> None:
    url, seen = registrar
    path = tmp_path / "etc" / "aami" / "agent.yaml"
    state = tmp_path / "var" / "lib" / "aami-agent"

    result = runner.invoke(
        agent_app,
        [
            "register",
            "--server",
            url,
            "--bootstrap-token",
            BOOTSTRAP_TOKEN,
            "--hostname",
            "GPU-Node-07",
            "--ip-address",
            "10.0.0.7",
            "--label",
            "rack=r1",
            "--label",
            "type=gpu",
            "--node-exporter-port",
            "9101",
            "--config",
            str(path),
            "--ca-file",
            str(tls_files().ca_file),
            "--cache-dir",
            str(state),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "registered gpu-node-07 as target tgt-7" in result.stdout
    assert f"pinned check-signing keys {kid(SERVER_KEY)}" in result.stdout
    assert NODE_TOKEN not in result.output
    assert BOOTSTRAP_TOKEN not in result.output
    assert mode(path) == 0o600
    assert yaml.safe_load(path.read_text()) == {
        "ca_file": str(tls_files().ca_file),
        "cache_dir": str(state),
        "server_url": url,
        "token": NODE_TOKEN,
        "target_id": "tgt-7",
        "hostname": "gpu-node-07",
    }
    keys = state / "signing-keys.json"
    assert load_keys(keys) == {kid(SERVER_KEY): raw(SERVER_KEY)}
    assert mode(keys) == 0o600
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/api/v1/bootstrap/register"),
        ("GET", "/api/v1/checks/signing-keys"),
    ]
    assert json.loads(seen[0].content) == {
        "hostname": "gpu-node-07",
        "ip_address": "10.0.0.7",
        "labels": {"rack": "r1", "type": "gpu"},
        "node_exporter_port": 9101,
    }


def test_register_keeps_other_settings_and_reads_env(
    tmp_path: Path, registrar: tuple[str, list[httpx.Request]]
) -> None:
    url, _ = registrar
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"textfile_dir: /srv/textfile\ntoken: old-token\ncache_dir: {tmp_path / 'state'}\n"
    )

    result = runner.invoke(
        agent_app,
        ["register", "--hostname", "n1", "--ip-address", "127.0.0.1"],
        env={
            "AAMI_AGENT_CONFIG": str(path),
            "AAMI_AGENT_SERVER_URL": url,
            "AAMI_AGENT_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
            "AAMI_AGENT_CA_FILE": str(tls_files().ca_file),
        },
    )

    assert result.exit_code == 0, result.output
    assert yaml.safe_load(path.read_text()) == {
        "textfile_dir": "/srv/textfile",
        "token": NODE_TOKEN,
        "cache_dir": str(tmp_path / "state"),
        "ca_file": str(tls_files().ca_file),
        "server_url": url,
        "target_id": "tgt-7",
        "hostname": "n1",
    }
    assert kid(SERVER_KEY) in load_keys(tmp_path / "state" / "signing-keys.json")
    assert mode(path) == 0o600


def test_register_with_a_bad_token_says_why_in_one_line(
    tmp_path: Path, registrar: tuple[str, list[httpx.Request]]
) -> None:
    url, _ = registrar
    path = tmp_path / "agent.yaml"
    result = runner.invoke(
        agent_app,
        [
            "register",
            "--server",
            url,
            "--bootstrap-token",
            "wrong",
            "--config",
            str(path),
            "--ca-file",
            str(tls_files().ca_file),
        ],
    )
    assert result.exit_code == 1
    assert result.stderr == "error: registration refused (401): invalid bootstrap token\n"
    assert "Traceback" not in result.output
    assert not path.exists()


def test_register_with_an_unreachable_server(tmp_path: Path) -> None:
    result = runner.invoke(
        agent_app,
        [
            "register",
            "--server",
            f"https://127.0.0.1:{free_port()}",
            "--bootstrap-token",
            BOOTSTRAP_TOKEN,
            "--config",
            str(tmp_path / "agent.yaml"),
        ],
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach https://127.0.0.1:")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--label", "novalue"], "must be key=value"), (["--ip-address", "x.y"], "not an IP")],
)
def test_register_refuses_bad_arguments(tmp_path: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(
        agent_app,
        ["register", "--server", "https://127.0.0.1:1", "--bootstrap-token", "t", *extra],
        env={"AAMI_AGENT_CONFIG": str(tmp_path / "agent.yaml")},
    )
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(("script", "code"), [('echo "fine 1"\n', 0), ("exit 4\n", 1)])
def test_once_exit_code(tmp_path: Path, script: str, code: int) -> None:
    server = FakeServer()
    server.set_checks([make_check("c", script)])
    with serve(server.handle) as url:
        result = runner.invoke(agent_app, ["once", "--config", str(agent_yaml(tmp_path, url))])
    assert result.exit_code == code, result.output
    assert "run: 1 checks (from the server)" in result.stderr
    assert NODE_TOKEN not in result.output
    assert (tmp_path / "textfile" / "aami_agent.prom").exists()


def test_once_without_server_or_cache_fails(tmp_path: Path) -> None:
    config = agent_yaml(tmp_path, f"https://127.0.0.1:{free_port()}")
    result = runner.invoke(agent_app, ["once", "--config", str(config)])
    assert result.exit_code == 1
    assert "server unreachable" in result.stderr
    assert "Traceback" not in result.output


def test_once_flags_override_the_file(tmp_path: Path) -> None:
    server = FakeServer()
    server.set_checks([make_check("c", 'echo "fine 1"\n')])
    elsewhere = tmp_path / "elsewhere"
    with serve(server.handle) as url:
        config = agent_yaml(tmp_path, "https://127.0.0.1:1")
        result = runner.invoke(
            agent_app,
            [
                "once",
                "--config",
                str(config),
                "--server-url",
                url,
                "--textfile-dir",
                str(elsewhere),
            ],
        )
    assert result.exit_code == 0, result.output
    assert (elsewhere / "aami_c.prom").read_text() == "fine 1\n"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["once"], {"AAMI_AGENT_TOKEN": "t"}, "server_url is not set"),
        (["once", "--server-url", "https://s"], {}, "no node token"),
        (
            ["run", "--server-url", "https://s", "--token", "t", "--parallelism", "0"],
            {},
            "positive",
        ),
        (
            ["once", "--server-url", "https://s", "--token", "t", "--ca-file", "/nope"],
            {},
            "ca_file",
        ),
        (["once", "--config", "/nonexistent/agent.yaml"], {}, "does not exist"),
    ],
)
def test_bad_configuration_exits_2(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    env = {"AAMI_AGENT_CONFIG": str(tmp_path / "absent.yaml"), **env}
    result = runner.invoke(agent_app, args, env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


def test_run_loops_until_sigterm(tmp_path: Path) -> None:
    server = FakeServer()
    server.set_checks([make_check("c", 'echo "fine 1"\n')])
    with serve(server.handle) as url:
        config = agent_yaml(tmp_path, url)
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from aami.agent.cli import agent_app; agent_app(prog_name='aami agent')",
                "run",
                "--config",
                str(config),
                "--interval-seconds",
                "0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for(lambda: len(server.statuses) >= 3, timeout=30, what="three runs")
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert server.statuses[:2] == [200, 304]
    assert log.count("run: 1 checks") >= 3
    assert "SIGTERM: stopping after the current run" in log
    assert NODE_TOKEN not in log
