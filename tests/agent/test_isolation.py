"""The agent is an island: it imports nothing of the server."""

from __future__ import annotations

import subprocess
import sys

from aami.agent.watchdog import command


def test_agent_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, aami.agent.cli, aami.agent.runner, aami.agent.client\n"
        "bad = sorted(m for m in sys.modules if m.startswith('aami.')"
        " and not m.startswith('aami.agent'))\n"
        "heavy = sorted(m for m in ('fastapi', 'sqlalchemy', 'pydantic', 'alembic')"
        " if m in sys.modules)\n"
        "print(bad, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[] []"


def test_the_watchdog_starts_light() -> None:
    """Every run starts one: it must not pay for logging, subprocess or the agent's imports."""
    *interpreter, script = command()
    result = subprocess.run(
        [*interpreter, "-X", "importtime", script],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "imported package" not in line
    }
    assert {"os", "signal"} <= imported
    heavy = {"logging", "subprocess", "threading", "httpx", "typer", "aami", "aami.agent"}
    assert imported & heavy == set()
