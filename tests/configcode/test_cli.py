from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
import yaml
from typer.testing import CliRunner

from aami.cli.configcode import dump_yaml, register
from tests.configcode.fixtures import SECRET, SECRET_ENV, populate
from tests.support.ports import free_port
from tests.support.processes import Process

TOKEN = "configcode-admin-token-0123456789"
runner = CliRunner()
cli = typer.Typer()
register(cli)


def start(tmp: Path, *, secret: bool) -> tuple[Process, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "AAMI_ADMIN_TOKEN": TOKEN,
        "AAMI_DATABASE_URL": f"sqlite:///{tmp / 'aami.db'}",
        "PROMETHEUS_RULE_PATH": str(tmp / "rules"),
        "PROMETHEUS_RELOAD_ENABLED": "false",
        "PROMETHEUS_URL": "http://127.0.0.1:1",
        "ALERTMANAGER_URL": "http://127.0.0.1:1",
    }
    env.pop(SECRET_ENV, None)
    if secret:
        env[SECRET_ENV] = SECRET
    process = Process(
        "aami-configcode-server",
        [sys.executable, "-m", "tests.configcode.server", "--port", str(port)],
        tmp / "server.log",
        env=env,
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/health/ready")
    except BaseException:
        process.stop()
        raise
    return process, url


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    first, first_url = start(tmp_path / "first", secret=False)
    try:
        second, second_url = start(tmp_path / "second", secret=True)
        try:
            yield first_url, second_url
        finally:
            second.stop()
    finally:
        first.stop()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env={"AAMI_TOKEN": TOKEN})
    return result.exit_code, result.output


def test_export_diff_apply_against_real_servers(servers: tuple[str, str], tmp_path: Path) -> None:
    first, second = servers

    with httpx.Client(base_url=first, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        populate(api)  # type: ignore[arg-type]

    path = tmp_path / "config.yaml"
    code, output = invoke("export", "--server", first, "--file", str(path))
    assert code == 0, output
    text = path.read_text()
    assert text.startswith("apiVersion: aami/v1\nkind: Configuration\n")
    assert SECRET not in text
    assert "script_content: |" in text  # scripts stay readable

    code, output = invoke("diff", "--server", first, "-f", str(path))
    assert code == 0, output
    assert output.strip() == "nothing changed: the server matches the file"

    code, output = invoke("diff", "--server", second, "-f", str(path), "--exit-code")
    assert code == 3, output
    assert 'create   groups["grp-123"]' in output
    assert "rule file group-grp-123.yml: would change" in output

    code, output = invoke("apply", "--server", second, "-f", str(path))
    assert code == 0, output
    assert 'create   alert_rules["HighCPUUsage@grp-123"]' in output
    assert "           new alert HighCPUUsage_Production in group-grp-123.yml" in output
    assert "rule file global.yml: written" in output
    code, output = invoke("export", "--server", second)
    assert code == 0, output
    assert output == text
    code, output = invoke("diff", "--server", second, "-f", str(path), "--exit-code")
    assert (code, output.strip()) == (0, "nothing changed: the server matches the file")

    # The diff shows each changed field, old and new, and the PromQL before and after.
    document = yaml.safe_load(text)
    document["alert_rules"]["HighCPUUsage@grp-123"]["config"]["threshold"] = 95
    path.write_text(dump_yaml(document))
    code, output = invoke("diff", "--server", second, "-f", str(path), "--exit-code")
    assert code == 3, output
    expr = (
        '100 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",group_id="grp-123"}'
        "[5m])) * 100 > "
    )
    assert output.splitlines() == [
        'update   alert_rules["HighCPUUsage@grp-123"]',
        "           config.threshold: 90 \u2192 95",
        "           alert HighCPUUsage_Production in group-grp-123.yml",
        f"             expr before: {expr}90",
        f"             expr after:  {expr}95",
        "rule file group-grp-123.yml: would change",
    ]
    code, output = invoke("diff", "--server", second, "-f", str(path), "-o", "json")
    assert code == 0, output
    [change] = json.loads(output)["changes"]
    assert change["fields"] == [{"field": "config.threshold", "old": 90, "new": 95}]
    assert change["rules"][0]["after"]["expr"] == f"{expr}95"
    code, output = invoke("apply", "--server", second, "-f", str(path))
    assert code == 0, output
    code, output = invoke("diff", "--server", second, "-f", str(path), "--exit-code")
    assert (code, output.strip()) == (0, "nothing changed: the server matches the file")

    # --prune deletes what the file lacks.
    del document["alert_rules"]["HighCPUUsage@grp-456"]
    path.write_text(yaml.safe_dump(document))
    code, output = invoke("diff", "--server", second, "-f", str(path))
    assert code == 0, output
    assert "kept     alert_rules: HighCPUUsage@grp-456" in output
    code, output = invoke("apply", "--server", second, "-f", str(path), "--prune")
    assert code == 0, output
    assert 'delete   alert_rules["HighCPUUsage@grp-456"]' in output
    assert "           alert HighCPUUsage_Development leaves group-grp-456.yml" in output
    assert "rule file group-grp-456.yml: removed" in output


def test_errors_are_one_line(servers: tuple[str, str], tmp_path: Path) -> None:
    first, _ = servers
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: aami/v1\nkind: Configuration\nalert_templates:\n"
        "  Broken:\n    query_template: 'rate(x[5m]) > >'\n"
    )
    code, output = invoke("apply", "--server", first, "-f", str(path))
    assert code == 2
    assert output.startswith("error: 422 Unprocessable Entity: ")
    assert 'alert_templates["Broken"]' in output
    assert output.count("\n") == 1
    assert "Traceback" not in output
    code, output = invoke("export", "--server", first, "--token", "wrong-token-0123456789")
    assert code == 5
    assert "401" in output
    code, output = invoke("diff", "--server", f"http://127.0.0.1:{free_port()}", "-f", str(path))
    assert (code, "cannot reach" in output) == (6, True)
