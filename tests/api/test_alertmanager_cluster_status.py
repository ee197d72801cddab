"""GET /api/v1/alertmanager/status with ALERTMANAGER_URL naming two members, neither of
which answers (the end-to-end test runs a real cluster): each is named."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from aami.app import create_app
from aami.config import Settings
from tests.conftest import AUTH
from tests.support.api import error

A, B = "http://127.0.0.1:1", "http://127.0.0.1:2"


def test_status_names_every_member_that_does_not_answer(settings: Settings, tmp_path: Path) -> None:
    cluster = settings.model_copy(
        update={
            "alertmanager_url": f"{A},{B}",
            "alertmanager_config_path": tmp_path / "am" / "alertmanager.yml",
        }
    )
    with TestClient(create_app(cluster), headers=AUTH) as client:
        status = client.get("/api/v1/alertmanager/status").json()
        assert status["reachable"] is False
        assert "no member of the Alertmanager cluster answers" in status["error"]
        assert status["managed"] is True
        assert status["in_sync"] is False
        assert status["out_of_sync"] == [f"config@{A}", f"config@{B}"]
        assert set(status["members"]) == {A, B}
        for url, member in status["members"].items():
            assert member["in_sync"] is False
            assert member["loaded_revision"] is None
            assert f"Alertmanager at {url} does not answer" in member["error"]
        assert status["config"]["in_sync"] is False
        assert status["config"]["loaded_revision"] is None
        assert f"{A}: " in status["config"]["error"]
        assert f"{B}: " in status["config"]["error"]
        assert A in status["last_error"]
        assert B in status["last_error"]

        for path in ("/api/v1/alerts", "/api/v1/silences"):
            detail = error(client.get(path), 503)
            assert A in detail
            assert B in detail
        detail = error(
            client.post(
                "/api/v1/notification-channels",
                json={"name": "pager", "type": "webhook", "settings": {"url": "http://x.test/"}},
            ),
            503,
        )
        assert f"the Alertmanager cluster ({A}, {B}) does not answer" in detail
        assert "nothing was changed" in detail
