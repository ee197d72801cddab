"""The agent is an island: it imports nothing of the server."""

from __future__ import annotations

import subprocess
import sys


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
