"""The shipped systemd units and cron file for the agent: valid, and calling real commands."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from configparser import ConfigParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aami.agent.cli import agent_app

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = ["aami-agent.service", "aami-agent.timer", "aami-agent-loop.service"]
AAMI = "/opt/aami/bin/aami"


def unit(name: str) -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SYSTEMD / name)
    return parser


def test_systemd_analyze_accepts_the_units() -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed (Debian package: systemd)"
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(str(SYSTEMD / name) for name in UNITS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"},
    )
    # The one complaint allowed: the binary is not installed on the test machine.
    complaints = [
        line
        for line in result.stderr.splitlines()
        if line and f"Command {AAMI} is not executable" not in line
    ]
    assert complaints == []


def test_timer_runs_the_oneshot_service_every_minute() -> None:
    timer, service = unit("aami-agent.timer"), unit("aami-agent.service")
    assert timer["Timer"]["Unit"] == "aami-agent.service"
    assert timer["Timer"]["OnUnitActiveSec"] == "60s"
    assert "OnBootSec" in timer["Timer"]
    assert timer["Timer"]["RandomizedDelaySec"] == "10s"
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ProtectSystem"] == "full"
    assert service["Service"]["PrivateTmp"] == "yes"
    assert "NoNewPrivileges" not in service["Service"]
    loop = unit("aami-agent-loop.service")
    assert loop["Service"]["Restart"] == "always"


@pytest.mark.parametrize(
    ("name", "command"), [("aami-agent.service", "once"), ("aami-agent-loop.service", "run")]
)
def test_units_call_an_existing_agent_command(name: str, command: str) -> None:
    argv = shlex.split(unit(name)["Service"]["ExecStart"])
    assert argv == [AAMI, "agent", command, "--config", "/etc/aami/agent.yaml"]
    help_text = CliRunner().invoke(agent_app, [command, "--help"])
    assert help_text.exit_code == 0
    assert "--config" in help_text.output


def test_cron_file_runs_once_every_minute_under_flock() -> None:
    lines = [
        line
        for line in (ROOT / "deploy" / "cron" / "aami-agent").read_text().splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 1
    fields = lines[0].split(None, 6)
    assert fields[:6] == ["*", "*", "*", "*", "*", "root"]
    command = shlex.split(fields[6])
    assert command[:3] == ["/usr/bin/flock", "-n", "/run/lock/aami-agent.lock"]
    assert command[3:9] == [AAMI, "agent", "once", "--config", "/etc/aami/agent.yaml", "2>&1"]
    assert "%" not in fields[6]  # cron turns % into a newline
    assert (ROOT / "deploy" / "cron" / "aami-agent").read_text().endswith("\n")
