"""``aami stack down`` on recorded processes: SIGKILL after the timeout for one that ignores
SIGTERM, and never a signal to a pid whose start time does not match the record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aami.cli.main import app
from aami.stack.control import RECORD, start_time

runner = CliRunner()
STUBBORN = (
    "import signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ignoring SIGTERM', flush=True)\n"
    "while True:\n"
    "    signal.pause()\n"
)


def record(state_dir: Path, supervisor: tuple[int, int], *children: tuple[str, int, int]) -> None:
    state_dir.mkdir(exist_ok=True)
    (state_dir / "admin-token").write_text("token\n")
    document = {
        "supervisor": {"name": "aami stack up", "pid": supervisor[0], "start_time": supervisor[1]},
        "children": [{"name": n, "pid": p, "start_time": t} for n, p, t in children],
    }
    (state_dir / RECORD).write_text(json.dumps(document))


@pytest.fixture
def stubborn() -> Iterator[subprocess.Popen[str]]:
    """A process that ignores SIGTERM, once it says so."""
    process = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ignoring SIGTERM\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_what_ignores_sigterm_is_killed_after_the_timeout(
    tmp_path: Path, stubborn: subprocess.Popen[str]
) -> None:
    started = start_time(stubborn.pid)
    assert started is not None
    state = tmp_path / "state"
    record(state, (stubborn.pid, started), ("prometheus", stubborn.pid, started))
    result = runner.invoke(app, ["stack", "down", "--state-dir", str(state), "--timeout", "1"])
    assert result.exit_code == 0, result.output
    assert f"killed   aami stack up (pid {stubborn.pid})" in result.output
    assert stubborn.wait(timeout=10) == -9
    assert not (state / RECORD).exists()


def test_a_recycled_pid_is_never_signalled(tmp_path: Path) -> None:
    me = os.getpid()
    started = start_time(me)
    assert started is not None
    state = tmp_path / "state"
    record(state, (me, started - 1), ("aami-server", me, started + 1))  # same pid, not us
    result = runner.invoke(app, ["stack", "down", "--state-dir", str(state), "--timeout", "0"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"no stack is running from {state}"
    assert start_time(me) == started  # still here


def test_down_without_a_record_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stack", "down"], env={"AAMI_STATE_DIR": str(tmp_path / "x")})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"no stack is running from {tmp_path / 'x'}"
