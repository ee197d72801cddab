"""docs/api.md matches the OpenAPI schema; docs/configuration.md names every setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aami.agent.config import ENV_PREFIX, KEYS, AgentConfig
from aami.config import Settings
from tests.docs.blocks import ROOT

API_DOC = ROOT / "docs" / "api.md"
CONFIG_DOC = ROOT / "docs" / "configuration.md"


def test_api_doc_is_up_to_date(tmp_path: Path) -> None:
    fresh = tmp_path / "api.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-api-docs"), str(fresh)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert fresh.read_text() == API_DOC.read_text(), (
        "docs/api.md is stale: run .venv/bin/python scripts/gen-api-docs"
    )


def test_api_doc_lists_every_route() -> None:
    text = API_DOC.read_text()
    assert "### `GET /api/v1/prometheus/status`" in text
    assert "### `GET /api/v1/checks/target/{target_id}/explain`" in text
    assert text.count("\n### `") >= 70


def _row(text: str, name: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"{name} is not a row of docs/configuration.md"
    return rows[0]


def test_every_server_setting_is_documented_with_its_default() -> None:
    text = CONFIG_DOC.read_text()
    for name, field in Settings.model_fields.items():
        env = field.alias or f"AAMI_{name.upper()}"
        row = _row(text, env)
        default = field.default
        if default is None:
            assert "none" in row or "unset" in row, row
        elif isinstance(default, bool):
            assert f"`{str(default).lower()}`" in row, row
        elif env == "PROMETHEUS_RELOAD_TIMEOUT":
            assert "`120s`" in row, row
        else:
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert f"`{shown}`" in row, (env, shown, row)


def test_every_agent_setting_is_documented() -> None:
    text = CONFIG_DOC.read_text()
    defaults = AgentConfig(server_url="http://x", token="t")
    for key in KEYS:
        row = _row(text, key)
        assert f"`{ENV_PREFIX}{key.upper()}`" in row
        default = getattr(defaults, key, None)
        if isinstance(default, int | float) and key != "hostname":
            shown = str(int(default)) if float(default).is_integer() else str(default)
            assert f"`{shown}`" in row, row
        elif isinstance(default, Path):
            assert f"`{default}`" in row, row
