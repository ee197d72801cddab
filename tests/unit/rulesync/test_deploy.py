"""deploy/systemd/aami-rules-sync.service and its environment file."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from configparser import ConfigParser
from pathlib import Path

import typer

from aami.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "deploy" / "systemd" / "aami-rules-sync.service"
DEFAULTS = ROOT / "deploy" / "systemd" / "aami-rules-sync.default"
AAMI = "/opt/aami/bin/aami"


def _unit() -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def _sync_envvars() -> set[str]:
    command = typer.main.get_command(app)
    rules = command.commands["rules"]  # type: ignore[attr-defined]
    sync = rules.commands["sync"]
    found: set[str] = set()
    for param in sync.params:
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str):
            found.add(envvar)
        elif envvar:
            found.update(envvar)
    return found


def test_systemd_analyze_accepts_the_unit() -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed (Debian package: systemd)"
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"},
    )
    complaints = [
        line
        for line in result.stderr.splitlines()
        if line and f"Command {AAMI} is not executable" not in line
    ]
    assert complaints == []


def test_the_unit_runs_the_command_as_prometheus_from_its_environment_file() -> None:
    service = _unit()["Service"]
    assert shlex.split(service["ExecStart"]) == [AAMI, "rules", "sync"]
    assert service["EnvironmentFile"] == "/etc/default/aami-rules-sync"
    assert service["User"] == "prometheus"
    assert service["Restart"] == "always"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    # It may write the rules directory the environment file names, and nothing else.
    defaults = dict(
        line.split("=", 1)
        for line in DEFAULTS.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert service["ReadWritePaths"] == "-" + defaults["AAMI_RULES_DIR"]


def test_every_setting_of_the_environment_file_is_an_option_of_the_command() -> None:
    names = {
        line.lstrip("# ").split("=", 1)[0]
        for line in DEFAULTS.read_text().splitlines()
        if line.lstrip("# ").startswith("AAMI_") and "=" in line
    }
    assert names
    assert names <= _sync_envvars()
    assert {"AAMI_SERVER", "AAMI_EVALUATOR", "AAMI_EVALUATOR_TOKEN_FILE"} <= names
