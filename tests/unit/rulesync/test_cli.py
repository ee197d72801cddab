"""``aami rules sync`` as a command: its refusals, and the token kept out of its output."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aami.cli.main import app

TOKEN = "evaluator-token-never-shown-0123"


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["rules", "sync", "--rules-dir", str(tmp_path / "rules"), *args],
        env={"AAMI_EVALUATOR_TOKEN": "", "AAMI_EVALUATOR_TOKEN_FILE": "", **(env or {})},
    )
    return result.exit_code, result.output


def test_no_token_is_a_usage_error(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "--server", "http://127.0.0.1:1", "--evaluator", "prom-a")
    assert code == 2
    assert "no token" in output


def test_an_unsafe_evaluator_name_is_refused(tmp_path: Path) -> None:
    code, output = _run(
        tmp_path,
        "--server",
        "http://127.0.0.1:1",
        "--evaluator",
        "../admin",
        env={"AAMI_EVALUATOR_TOKEN": TOKEN},
    )
    assert code == 2
    assert "--evaluator" in output


def test_once_fails_when_aami_is_unreachable_and_never_prints_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    code, output = _run(
        tmp_path,
        "--server",
        "http://127.0.0.1:1",
        "--evaluator",
        "prom-a",
        "--token-file",
        str(token_file),
        "--once",
    )
    assert code == 1
    assert "AAMI" in output
    assert TOKEN not in output
    assert list((tmp_path / "rules").iterdir()) == []
