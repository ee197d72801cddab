from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from aami.cli.main import app
from tests.support.ports import free_port
from tests.support.wait import wait_for

runner = CliRunner()


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = runner.invoke(app, ["db", "upgrade"], env={"AAMI_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"groups", "targets", "target_groups", "exporters", "audit_records"} <= tables
    again = runner.invoke(app, ["db", "upgrade"], env={"AAMI_DATABASE_URL": url})
    assert again.exit_code == 0


def test_db_upgrade_on_postgresql(postgres_server) -> None:  # type: ignore[no-untyped-def]
    admin = create_engine(postgres_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("CREATE DATABASE cli_upgrade")
    admin.dispose()
    url = postgres_server.url("cli_upgrade")
    result = runner.invoke(app, ["db", "upgrade"], env={"AAMI_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    engine = create_engine(url)
    assert "groups" in inspect(engine).get_table_names()
    engine.dispose()


def test_server_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AAMI_ADMIN_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "aami", "server", "--port", str(free_port())],
        env={**env, "AAMI_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "AAMI_ADMIN_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_short_token_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["db", "upgrade"], env={"AAMI_ADMIN_TOKEN": "short", "AAMI_DATABASE_URL": "sqlite://"}
    )
    assert result.exit_code == 2
    assert "16 characters" in result.output


def test_dev_mode_generates_and_prints_a_working_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AAMI_ADMIN_TOKEN"}
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "aami", "server", "--dev", "--port", str(port)],
            env={**env, "AAMI_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        line = wait_for(
            lambda: next((x for x in log.read_text().splitlines() if "admin token:" in x), None),
            timeout=30,
            what="the printed development token",
        )
        token = line.split("admin token:")[1].strip()
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: httpx.get(f"{base}/health/ready").status_code == 200,
            timeout=30,
            what="server ready",
        )
        assert httpx.get(f"{base}/api/v1/groups").status_code == 401
        ok = httpx.get(f"{base}/api/v1/groups", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    finally:
        server.terminate()
        server.wait(10)
