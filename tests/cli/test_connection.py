"""Where the CLI's token comes from, what each failure exits with, and ``-o`` as the format
(``aami export``'s file has its own flag), against a live server process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from aami.cli.client import ExitCode
from aami.cli.main import app
from tests.support.ports import free_port
from tests.support.processes import aami_server

TOKEN = "cli-connection-token-0123456789"
SD_TOKEN = "aamisd-connection-token-0123456789"
WRONG = "wrong-secret-token-0123456789"
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    process = aami_server(
        tmp,
        port=port,
        token=TOKEN,
        env={
            "PROMETHEUS_RELOAD_ENABLED": "false",
            "AAMI_SD_TOKEN": SD_TOKEN,
            "AAMI_AUTH_FAILURE_LIMIT": "0",  # these tests are wrong on purpose, often
        },
    )
    process.start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/health/ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config file, no local stack token and no AAMI_* variables from the machine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("AAMI_SERVER", "AAMI_TOKEN", "AAMI_ADMIN_TOKEN", "AAMI_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)


def state_dir(where: Path, token: str) -> Path:
    """A directory laid out as `aami stack up` leaves it, as far as the CLI reads it."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "admin-token").write_text(token + "\n")
    return where


def run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> Result:
    result = runner.invoke(app, list(args), env=env)
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    if code:
        assert result.output.startswith("error: "), result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    return result


def test_token_from_the_state_dir_flag_and_variable(server: str, tmp_path: Path) -> None:
    stack = state_dir(tmp_path / "elsewhere" / "state", TOKEN)
    by_flag = run("groups", "list", "--server", server, "--state-dir", str(stack), "-o", "json")
    assert json.loads(by_flag.stdout)["data"] == []
    by_env = run("groups", "list", "--server", server, env={"AAMI_STATE_DIR": str(stack)})
    assert "no groups" in by_env.stdout

    # The state dir beats ./.aami-stack and the config file ...
    state_dir(tmp_path / ".aami-stack", WRONG)
    config = tmp_path / "config" / "aami" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump({"server": server, "token": WRONG}))
    run("groups", "list", "--state-dir", str(stack))
    run("groups", "list", env={"AAMI_STATE_DIR": str(stack)})
    # ... and --token or AAMI_TOKEN beat the state dir.
    run("groups", "list", "--state-dir", str(stack), "--token", WRONG, code=ExitCode.UNAUTHORIZED)
    run("groups", "list", env={"AAMI_STATE_DIR": str(stack), "AAMI_TOKEN": WRONG}, code=5)


def test_a_state_dir_without_a_token_is_a_usage_error(server: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run("groups", "list", "--server", server, "--state-dir", str(empty), code=2)
    assert f"no admin-token in {empty}" in refused.output


def test_401_names_where_the_token_came_from_and_never_the_token(
    server: str, tmp_path: Path
) -> None:
    def refused(*args: str, env: dict[str, str] | None = None) -> str:
        result = run("alerts", "--server", server, *args, env=env, code=ExitCode.UNAUTHORIZED)
        assert WRONG not in result.output
        assert result.output.startswith("error: 401 Unauthorized: invalid bearer token (token ")
        return result.output.strip()

    assert refused("--token", WRONG).endswith("(token from --token)")
    assert refused(env={"AAMI_TOKEN": WRONG}).endswith("(token from AAMI_TOKEN)")
    assert refused(env={"AAMI_ADMIN_TOKEN": WRONG}).endswith("(token from AAMI_ADMIN_TOKEN)")
    stack = state_dir(tmp_path / "state", WRONG)
    expected = f"(token from {stack / 'admin-token'})"
    assert refused("--state-dir", str(stack)).endswith(expected)
    assert refused(env={"AAMI_STATE_DIR": str(stack)}).endswith(expected)
    config = tmp_path / "config" / "aami" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump({"token": WRONG}))
    assert refused().endswith(f"(token from {config})")
    config.unlink()
    local = state_dir(tmp_path / ".aami-stack", WRONG)
    assert refused().endswith(f"(token from {local / 'admin-token'})")

    # 403: a real token that may not do this (the service-discovery token) says it too.
    forbidden = run("groups", "list", "--server", server, "--token", SD_TOKEN, code=5)
    assert forbidden.output.startswith("error: 403 Forbidden: ")
    assert forbidden.output.strip().endswith("(token from --token)")
    assert SD_TOKEN not in forbidden.output


def test_each_failure_has_its_exit_code(server: str) -> None:
    def aami(*args: str, code: int) -> str:
        return run(*args, "--server", server, "--token", TOKEN, code=code).output

    assert "404 Not Found: group 'nope' does not exist" in aami(
        "groups", "get", "nope", code=ExitCode.NOT_FOUND
    )
    assert "404" in aami("rules", "effective", "nope", code=4)
    assert "422 Unprocessable Entity" in aami(
        "groups", "create", "--set", "name=", code=ExitCode.USAGE
    )
    aami("groups", "create", "--set", "id=grp-once", "--set", "name=once", code=0)
    assert "409 Conflict" in aami(
        "groups", "create", "--set", "id=grp-once", "--set", "name=once", code=ExitCode.CONFLICT
    )
    assert (
        "401 Unauthorized"
        in run(
            "groups", "list", "--server", server, "--token", WRONG, code=ExitCode.UNAUTHORIZED
        ).output
    )
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    unreachable = run("groups", "list", "--server", closed, "--token", TOKEN, code=6)
    assert f"cannot reach {closed}" in unreachable.output
    # bad usage never reaches the server
    bad_format = runner.invoke(app, ["groups", "list", "--server", server, "-o", "xml"])
    assert bad_format.exit_code == ExitCode.USAGE
    assert "'xml' is not one of" in bad_format.output
    run("groups", "list", "--server", "ftp://example", "--token", TOKEN, code=2)


def test_every_exit_code_is_in_the_help() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for code, words in (
        (0, "ok"),
        (1, "failure"),
        (2, "usage or invalid input (400, 422)"),
        (3, "not done"),
        (4, "not found (404)"),
        (5, "unauthorized or forbidden (401, 403)"),
        (6, "server unreachable"),
        (7, "conflict (409)"),
    ):
        assert f"{code} {words}" in text
    documented = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    for code in ExitCode:
        assert f"| {code.value} |" in documented, code


def test_export_o_is_the_format_and_the_file_has_its_own_flag(server: str, tmp_path: Path) -> None:
    auth = ("--server", server, "--token", TOKEN)
    run("groups", "create", "--set", "id=grp-export", "--set", "name=exported", *auth)

    as_json = json.loads(run("export", "-o", "json", *auth).stdout)
    assert as_json["apiVersion"] == "aami/v1"
    assert "grp-export" in json.dumps(as_json["groups"])
    as_yaml = run("export", *auth).stdout
    assert yaml.safe_load(as_yaml) == as_json
    assert yaml.safe_load(run("export", "-o", "yaml", *auth).stdout) == as_json

    written = tmp_path / "fleet.yaml"
    assert run("export", "--file", str(written), *auth).stdout == ""
    assert written.read_text() == as_yaml
    short = tmp_path / "fleet.json"
    run("export", "-o", "json", "-f", str(short), *auth)
    assert json.loads(short.read_text()) == as_json
    run("export", "--output-file", str(tmp_path / "long.yaml"), *auth)
    assert (tmp_path / "long.yaml").read_text() == as_yaml
    assert not (tmp_path / "json").exists()

    # -o used to take the file: a value that is not a format points to --file, writes nothing.
    refused = run("export", "-o", "backup.yaml", *auth, code=ExitCode.USAGE)
    assert "--file backup.yaml" in refused.output
    assert not (tmp_path / "backup.yaml").exists()
    run("export", "-o", "table", *auth, code=2)

    # diff and apply take -o too, and read the file back in either format.
    plan = json.loads(run("diff", "-f", str(short), "-o", "json", *auth).stdout)
    assert plan["changed"] is False
    assert run("diff", "-f", str(written), "--exit-code", *auth).stdout.startswith(
        "nothing changed"
    )
    applied = yaml.safe_load(run("apply", "-f", str(written), "-o", "yaml", *auth).stdout)
    assert applied["changed"] is False
