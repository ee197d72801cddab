"""Two server replicas on one database: one publishes, the other's changes still land."""

from __future__ import annotations

from fastapi.testclient import TestClient

from aami.app import create_app
from aami.config import Settings
from tests.conftest import AUTH
from tests.support.api import create, error
from tests.support.wait import wait_for


def _role(client: TestClient) -> str:
    return str(client.get("/api/v1/prometheus/status").json()["publisher"])


def test_one_publisher_and_changes_from_the_other_replica(settings: Settings) -> None:
    rules = settings.prometheus_rule_path
    first = TestClient(create_app(settings), headers=AUTH).__enter__()
    second = TestClient(create_app(settings), headers=AUTH).__enter__()
    try:
        assert _role(first) == "leader"
        assert _role(second) == "standby"
        create(second, "/api/v1/groups", {"id": "g1", "name": "one"})
        create(
            second,
            "/api/v1/alert-templates",
            {"name": "Load", "query_template": 'node_load1{group_id="{{.group_id}}"} > 4'},
        )
        create(second, "/api/v1/alert-rules", {"template_id": "Load", "group_id": "g1"})
        # written by the first replica, which saw the change in the database
        wait_for(
            lambda: (rules / "group-g1.yml").exists(),
            timeout=15,
            what="the leader to publish a change made on the standby",
        )
        detail = error(second.post("/api/v1/prometheus/rules/regenerate"), 409)
        assert "another AAMI replica" in detail
        history = first.get("/api/v1/prometheus/rules/history").json()["data"]
        assert any("group-g1.yml" in h["files_written"] for h in history)

        first.__exit__(None, None, None)  # the leader goes away; the standby takes over
        wait_for(lambda: _role(second) == "leader", timeout=15, what="the standby to take over")
        create(second, "/api/v1/groups", {"id": "g2", "name": "two"})
        create(second, "/api/v1/alert-rules", {"template_id": "Load", "group_id": "g2"})
        wait_for(
            lambda: (rules / "group-g2.yml").exists(), timeout=15, what="the new leader to publish"
        )
    finally:
        second.__exit__(None, None, None)
