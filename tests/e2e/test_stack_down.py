"""``aami stack down`` stops a real ``aami stack up`` running in its own session (another
terminal, as far as it can tell), and ``--reset`` removes its state and nothing else."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aami.cli.main import app
from aami.stack.control import RECORD, STATE_ENTRIES, read_record
from tests.support.ports import free_port
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
AAMI = ROOT / ".venv" / "bin" / "aami"
runner = CliRunner()


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    state_dir: Path
    log: Path
    ports: list[int]


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[RunningStack]:
    """``aami stack up --no-demo`` on free ports, in its own session, until it is ready."""
    ports = {
        "AAMI_STACK_SERVER_PORT": free_port(),
        "AAMI_STACK_PROMETHEUS_PORT": free_port(),
        "AAMI_STACK_NODE_EXPORTER_PORT": free_port(),
        "AAMI_STACK_ALERTMANAGER_PORT": free_port(),
        "AAMI_STACK_WEBHOOK_PORT": free_port(),
    }
    state_dir = tmp_path / "stack"
    env = {**os.environ, "AAMI_STATE_DIR": str(state_dir)}
    env.update({key: str(port) for key, port in ports.items()})
    log = tmp_path / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(AAMI), "stack", "up", "--no-demo"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "AAMI stack is ready" in log.read_text() or process.poll() is not None,
            timeout=120,
            what="aami stack up to print that the stack is ready",
        )
        assert process.poll() is None, log.read_text()
        yield RunningStack(process, state_dir, log, list(ports.values()))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.e2e
def test_down_stops_a_stack_from_another_terminal_and_reset_stays_inside(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    state = running_stack.state_dir
    found = read_record(state)
    assert found is not None
    supervisor, children = found
    assert supervisor.pid == running_stack.process.pid
    assert {c.name for c in children} == {
        "aami-server",
        "node_exporter",
        "alertmanager",
        "prometheus",
    }
    assert all(c.alive() for c in children)

    # A second stack on the same state dir, or a reset under a running one, is refused.
    refused = runner.invoke(app, ["stack", "up", "--reset", "--yes", "--state-dir", str(state)])
    assert refused.exit_code == 1, refused.output
    assert f"a stack already runs from {state} (pid {supervisor.pid})" in refused.output
    assert (state / "admin-token").is_file()

    down = runner.invoke(app, ["stack", "down"], env={"AAMI_STATE_DIR": str(state)})
    assert down.exit_code == 0, down.output
    lines = down.output.splitlines()
    assert lines[0] == f"stopped  aami stack up (pid {supervisor.pid})"
    for child in children:
        assert f"stopped  {child.name} (pid {child.pid})" in lines
    assert lines[-1] == f"the stack in {state} is down"
    assert running_stack.process.wait(timeout=10) == 0  # a clean stop, as after Ctrl-C
    assert "AAMI stack stopped" in running_stack.log.read_text()
    assert not any(c.alive() for c in children)
    assert not any(_listening(port) for port in running_stack.ports)
    assert not (state / RECORD).exists()
    again = runner.invoke(app, ["stack", "down", "--state-dir", str(state)])
    assert (again.exit_code, again.output.strip()) == (0, f"no stack is running from {state}")

    # --reset: only the stack's own entries, only inside the state dir, links not followed.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me\n")
    (state / "logs" / "escape").symlink_to(outside)
    (state / "agent.yaml").symlink_to(outside / "precious")
    (state / "notes.txt").write_text("mine\n")
    made = sorted(p.name for p in state.iterdir())
    assert {"aami.db", "admin-token", "tls", "rules", "prometheus-data"} <= set(made)

    declined = runner.invoke(
        app, ["stack", "down", "--reset", "--state-dir", str(state)], input="n\n"
    )
    assert declined.exit_code == 1, declined.output
    assert "error: nothing deleted" in declined.output
    assert sorted(p.name for p in state.iterdir()) == made

    not_a_stack = runner.invoke(
        app, ["stack", "down", "--reset", "--yes", "--state-dir", str(outside)]
    )
    assert not_a_stack.exit_code == 2, not_a_stack.output
    assert "it has no admin-token" in not_a_stack.output
    assert (outside / "precious").read_text() == "keep me\n"

    reset = runner.invoke(app, ["stack", "down", "--reset", "--state-dir", str(state)], input="y\n")
    assert reset.exit_code == 0, reset.output
    assert "kept (not made by the stack): notes.txt" in reset.output
    assert [p.name for p in state.iterdir()] == ["notes.txt"]
    assert set(made) - {"notes.txt"} <= set(STATE_ENTRIES)
    assert [p.name for p in outside.iterdir()] == ["precious"]
    assert (outside / "precious").read_text() == "keep me\n"
