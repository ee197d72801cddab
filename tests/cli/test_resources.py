"""``aami <resource> list|get|create|update|delete`` against a live server process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from aami.cli.main import app
from aami.cli.resources import RESOURCES
from tests.support.ports import free_port
from tests.support.processes import aami_server

TOKEN = "cli-admin-token-0123456789"
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    process = aami_server(tmp, port=port, token=TOKEN, env={"PROMETHEUS_RELOAD_ENABLED": "false"})
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
    for name in ("AAMI_SERVER", "AAMI_TOKEN", "AAMI_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def aami(server: str, *args: str, code: int = 0, token: str = TOKEN, **kwargs: Any) -> Result:
    result = runner.invoke(app, [*args, "--server", server, "--token", token], **kwargs)
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    if code:
        assert result.output.startswith("error: "), result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_group_round_trip(server: str, tmp_path: Path) -> None:
    created = as_json(
        aami(
            server,
            "groups",
            "create",
            "--set",
            "id=grp-cli",
            "--set",
            "name=cli-production",
            "--set",
            "labels.env=prod",
            "-o",
            "json",
        )
    )
    assert created["labels"] == {"env": "prod"}

    shown = aami(server, "groups", "get", "grp-cli")
    assert "cli-production" in shown.stdout
    assert "env=prod" in shown.stdout

    listed = as_json(
        aami(server, "groups", "list", "--filter", "name=cli-production", "-o", "json")
    )
    assert [g["id"] for g in listed["data"]] == ["grp-cli"]
    assert "grp-cli" in aami(server, "groups", "list").stdout

    # PUT is partial: a file with only the description leaves the name and labels alone.
    patch = tmp_path / "patch.yaml"
    patch.write_text("description: the production fleet\n")
    updated = as_json(aami(server, "groups", "update", "grp-cli", "-f", str(patch), "-o", "json"))
    assert updated["description"] == "the production fleet"
    assert updated["name"] == "cli-production"
    assert updated["labels"]["env"] == "prod"

    # JSON on stdin with --set laid over it.
    piped = aami(
        server,
        "groups",
        "update",
        "grp-cli",
        "-f",
        "-",
        "--set",
        "labels.env=staging",
        "-o",
        "yaml",
        input=json.dumps({"description": "from stdin"}),
    )
    assert yaml.safe_load(piped.stdout)["labels"] == {"env": "staging"}
    assert yaml.safe_load(piped.stdout)["description"] == "from stdin"

    assert aami(server, "groups", "delete", "grp-cli").stdout.strip() == "deleted group grp-cli"
    missing = aami(server, "groups", "get", "grp-cli", code=4)
    assert "error: 404 Not Found: group 'grp-cli' does not exist" in missing.output


def test_targets_from_a_file_and_values_parsed_as_yaml(server: str, tmp_path: Path) -> None:
    aami(server, "groups", "create", "--set", "id=grp-t", "--set", "name=targets-group")
    spec = tmp_path / "target.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "id": "node-1",
                "hostname": "gpu-node-01",
                "ip_address": "10.0.0.1",
                "group_ids": ["grp-t"],
                "exporters": [{"type": "node_exporter"}],
            }
        )
    )
    aami(server, "targets", "create", "-f", str(spec))
    table = aami(server, "targets", "list", "--filter", "group_id=grp-t").stdout
    assert "gpu-node-01" in table
    assert "node_exporter" in table
    exporters = as_json(
        aami(server, "exporters", "list", "--filter", "target_id=node-1", "-o", "json")
    )
    [exporter] = exporters["data"]
    assert exporter["enabled"] is True
    changed = as_json(
        aami(server, "exporters", "update", exporter["id"], "--set", "enabled=false", "-o", "json")
    )
    assert changed["enabled"] is False  # "false" is parsed as a YAML boolean


def test_pagination(server: str) -> None:
    for n in range(3):
        aami(server, "groups", "create", "--set", f"id=grp-page-{n}", "--set", f"name=page-{n}")
    page = as_json(aami(server, "groups", "list", "--limit", "2", "--page", "2", "-o", "json"))
    assert page["pagination"]["limit"] == 2
    assert page["pagination"]["page"] == 2
    assert len(page["data"]) <= 2
    table = aami(server, "groups", "list", "--limit", "2").stdout
    assert "page 1 of" in table


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.name)
def test_every_resource_lists(server: str, resource: Any) -> None:
    answer = as_json(aami(server, resource.name, "list", "-o", "json"))
    assert isinstance(answer, dict if resource.paged else list)
    aami(server, resource.name, "list")
    yaml.safe_load(aami(server, resource.name, "list", "-o", "yaml").stdout)


def test_bootstrap_token_shows_its_secret_once_and_cannot_be_updated(server: str) -> None:
    created = as_json(
        aami(server, "bootstrap-tokens", "create", "--set", "name=rack-1", "-o", "json")
    )
    assert created["token"]
    listed = aami(server, "bootstrap-tokens", "list").stdout
    assert "rack-1" in listed
    assert created["token"] not in listed
    result = runner.invoke(app, ["bootstrap-tokens", "update", created["id"]])
    assert result.exit_code == 2


def test_alert_template_and_rule(server: str) -> None:
    aami(server, "groups", "create", "--set", "id=grp-rules", "--set", "name=rules-group")
    aami(
        server,
        "alert-templates",
        "create",
        "--set",
        "name=CliDisk",
        "--set",
        "default_config.threshold=20",
        "--set",
        'query_template=node_filesystem_avail_bytes{group_id="{{.group_id}}"} < {{.threshold}}',
    )
    rule = as_json(
        aami(
            server,
            "alert-rules",
            "create",
            "--set",
            "template_id=CliDisk",
            "--set",
            "group_id=grp-rules",
            "--set",
            "config.threshold=15",
            "-o",
            "json",
        )
    )
    assert rule["config"] == {"threshold": 15}
    assert rule["rendered"]["alert"] in aami(server, "alert-rules", "list").stdout
    bad = aami(
        server,
        "alert-rules",
        "update",
        rule["id"],
        "--set",
        "config.threshold=1 or vector(1)",
        code=2,
    )
    assert "422" in bad.output


def test_user_errors_are_one_line(server: str, tmp_path: Path) -> None:
    invalid = aami(server, "groups", "create", "--set", "name=", code=2)
    assert "error: 422 Unprocessable Entity: name:" in invalid.output
    unknown = aami(server, "targets", "delete", "no-such-target", code=4)
    assert "404" in unknown.output
    assert "no-such-target" in unknown.output
    assert "401" in aami(server, "groups", "list", token="wrong-token-0123456789", code=5).output
    down = aami(f"http://127.0.0.1:{free_port()}", "groups", "list", code=6)
    assert "cannot reach http://127.0.0.1:" in down.output

    # bad usage: exit 2
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- a\n- b\n")
    aami(server, "groups", "create", "-f", str(not_a_mapping), code=2)
    aami(server, "groups", "create", "-f", str(tmp_path / "missing.yaml"), code=2)
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": ')
    aami(server, "groups", "create", "-f", str(broken), code=2)
    aami(server, "groups", "create", "--set", "no-equals-sign", code=2)
    aami(server, "groups", "create", code=2)
    aami(server, "groups", "list", "--filter", "oops", code=2)


def test_missing_token_is_usage_error(server: str) -> None:
    result = runner.invoke(app, ["groups", "list", "--server", server])
    assert result.exit_code == 2
    assert "no token" in result.output
    assert "Traceback" not in result.output


def test_server_and_token_from_env_config_file_and_local_stack(server: str, tmp_path: Path) -> None:
    by_env = runner.invoke(
        app, ["groups", "list", "-o", "json"], env={"AAMI_SERVER": server, "AAMI_TOKEN": TOKEN}
    )
    assert by_env.exit_code == 0, by_env.output

    config = tmp_path / "config" / "aami" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump({"server": server, "token": TOKEN}))
    by_file = runner.invoke(app, ["groups", "list", "-o", "json"])
    assert by_file.exit_code == 0, by_file.output
    # a flag beats the config file
    flag = runner.invoke(app, ["groups", "list", "--token", "wrong-token-0123456789"])
    assert flag.exit_code == 5
    assert "401" in flag.output

    config.write_text(yaml.safe_dump({"server": server}))
    stack = tmp_path / ".aami-stack"
    stack.mkdir()
    (stack / "admin-token").write_text(TOKEN + "\n")
    by_stack = runner.invoke(app, ["groups", "list", "-o", "json"])
    assert by_stack.exit_code == 0, by_stack.output


def test_update_set_keeps_other_config_keys_and_unset_removes(server: str) -> None:
    aami(server, "groups", "create", "--set", "id=grp-merge", "--set", "name=merge-group")
    aami(
        server,
        "alert-templates",
        "create",
        "--set",
        "name=CliLoad",
        "--set",
        'query_template=avg_over_time(node_load1{group_id="{{.group_id}}"}[{{.window}}])'
        " > {{.threshold}}",
        "--set",
        "default_config.threshold=2",
        "--set",
        "default_config.window=5m",
        "--set",
        "parameters.threshold.type=number",
        "--set",
        "parameters.threshold.min=0",
        "--set",
        "parameters.threshold.max=100",
    )
    rule = as_json(
        aami(
            server,
            "alert-rules",
            "create",
            "--set",
            "template_id=CliLoad",
            "--set",
            "group_id=grp-merge",
            "--set",
            "config.threshold=15",
            "--set",
            "config.for_duration=10m",
            "--set",
            "config.window=10m",
            "-o",
            "json",
        )
    )
    updated = as_json(
        aami(
            server,
            "alert-rules",
            "update",
            rule["id"],
            "--set",
            "config.threshold=60",
            "-o",
            "json",
        )
    )
    assert updated["config"] == {"threshold": 60, "for_duration": "10m", "window": "10m"}
    assert updated["rendered"]["for"] == "10m"
    assert "[10m]" in updated["rendered"]["expr"]
    unset = as_json(
        aami(
            server,
            "alert-rules",
            "update",
            rule["id"],
            "--unset",
            "config.window",
            "-o",
            "json",
        )
    )
    assert unset["config"] == {"threshold": 60, "for_duration": "10m"}
    assert "[5m]" in unset["rendered"]["expr"]  # the template's default again

    # A typed value is refused with the key, the value and the type; nothing changes.
    bad = runner.invoke(
        app,
        [
            *("alert-rules", "update", rule["id"], "--set", "config.threshold=sixty"),
            *("--server", server, "--token", TOKEN),
        ],
    )
    assert bad.exit_code == 2, bad.output  # 422: invalid input
    assert "Traceback" not in bad.output
    assert (
        "config.threshold: 'sixty' is not a number (CliLoad.threshold: number, 0\u2013100)"
        in bad.output
    )
    after = as_json(aami(server, "alert-rules", "get", rule["id"], "-o", "json"))
    assert after["config"] == unset["config"]

    bad_unset = runner.invoke(
        app,
        [
            *("alert-rules", "update", rule["id"], "--unset", "window"),
            *("--server", server, "--token", TOKEN),
        ],
    )
    assert bad_unset.exit_code == 2
    assert "expected config.KEY" in bad_unset.output
