"""Fixtures: a migrated database per test (SQLite and a real PostgreSQL) and an API client."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from aami.app import create_app
from aami.config import Settings
from aami.db.migrate import upgrade
from aami.db.session import make_engine
from tests.support.postgres import PostgresServer

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_counter = itertools.count()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server with a migrated template database."""
    server = PostgresServer.start()
    try:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE aami_template"))
        admin.dispose()
        engine = make_engine(server.url("aami_template"))
        upgrade(engine)
        engine.dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated, empty database of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "aami.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"aami_test_{next(_counter)}"
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE aami_template"))
    admin.dispose()
    return server.url(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=TOKEN,
        PROMETHEUS_RULE_PATH=tmp_path / "rules",
        PROMETHEUS_URL="http://127.0.0.1:1",
        PROMETHEUS_RELOAD_ENABLED=False,
        ALERTMANAGER_URL="http://127.0.0.1:1",
        # Passes run on changes and requests only, so a test sees what it asked for.
        publish_check_interval=3600,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """An API client with the admin token."""
    with TestClient(create_app(settings), headers=AUTH) as test_client:
        yield test_client


@pytest.fixture
def anon(client: TestClient) -> TestClient:
    """The same app without credentials."""
    return TestClient(client.app)
