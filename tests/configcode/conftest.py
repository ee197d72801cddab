"""Apps that include the configuration-as-code router, on one or two fresh databases."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aami.app import create_app
from aami.config import Settings
from aami.configcode.endpoints import router
from tests.conftest import AUTH, TOKEN


def make_client(settings: Settings) -> TestClient:
    app = create_app(settings)
    app.include_router(router, prefix="/api/v1")
    return TestClient(app, headers=AUTH)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The first server: SQLite or PostgreSQL, as the settings fixture makes it."""
    with make_client(settings) as client:
        yield client


@pytest.fixture
def second(sqlite_template: Path, tmp_path: Path) -> Iterator[TestClient]:
    """A second, empty server on its own SQLite database and rule directory."""
    path = tmp_path / "second" / "aami.db"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite:///{path}",
        admin_token=TOKEN,
        PROMETHEUS_RULE_PATH=tmp_path / "second" / "rules",
        PROMETHEUS_URL="http://127.0.0.1:1",
        PROMETHEUS_RELOAD_ENABLED=False,
        ALERTMANAGER_URL="http://127.0.0.1:1",
    )
    with make_client(settings) as client:
        yield client
