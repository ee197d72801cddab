"""POST /api/v1/notification-routes/test: Alertmanager's own routing (amtool) on the config
AAMI renders from the shipped alertmanager.yml and its managed routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from aami.alertmanager.routing import parse_tree
from aami.app import create_app
from aami.config import Settings
from tests.conftest import AUTH

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"


@pytest.fixture
def shipped(settings: Settings) -> Iterator[TestClient]:
    """The API over the shipped config, plus a managed ``ml`` route to the ``ml-team``
    channel (position 10) ahead of it."""
    app = create_app(settings.model_copy(update={"alertmanager_base_config": SHIPPED}))
    with TestClient(app, headers=AUTH) as client:
        assert client.post(
            "/api/v1/notification-channels",
            json={"name": "ml-team", "type": "webhook", "settings": {"url": "http://127.0.0.1:9/"}},
        ).is_success
        assert client.post(
            "/api/v1/notification-routes",
            json={
                "name": "ml",
                "matchers": [{"name": "group", "value": 'ml "x", y'}],
                "receiver": "ml-team",
                "position": 10,
            },
        ).is_success
        yield client


def _test(client: TestClient, labels: dict[str, str]) -> dict[str, Any]:
    response = client.post("/api/v1/notification-routes/test", json={"labels": labels})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _rendered_routes() -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = yaml.safe_load(SHIPPED.read_text())["route"]["routes"]
    return routes


def test_default_group_and_severity_routes(shipped: TestClient) -> None:
    shipped_routes = {r["receiver"]: r["matchers"] for r in _rendered_routes()}
    # The default route: no child matches.
    default = _test(shipped, {"alertname": "Whatever"})
    assert default["receivers"] == ["default"]
    assert default["routes"] == [
        {"receiver": "default", "path": ["default-route"], "managed_route": None}
    ]
    # A group route of the shipped config (continue: true), then its severity route.
    production = _test(
        shipped, {"alertname": "NodeDown", "group": "production", "severity": "critical"}
    )
    assert production["receivers"] == ["production-team", "oncall"]
    assert [r["path"] for r in production["routes"]] == [
        ["default-route", "{" + shipped_routes["production-team"][0] + "}"],
        ["default-route", "{" + shipped_routes["oncall"][0] + "}"],
    ]
    assert [r["managed_route"] for r in production["routes"]] == [None, None]
    # A severity route alone.
    info = _test(shipped, {"alertname": "Digest", "severity": "info", "group": "dev"})
    assert info["receivers"] == ["info"]
    assert info["routes"][0]["path"] == ["default-route", '{severity="info"}']


def test_a_managed_group_route_comes_first(shipped: TestClient) -> None:
    routed = _test(shipped, {"group": 'ml "x", y', "severity": "critical"})
    # The managed route does not continue: the shipped critical route is not reached.
    assert routed["receivers"] == ["ml-team"]
    assert routed["routes"] == [
        {
            "receiver": "ml-team",
            "path": ["default-route", '{group="ml \\"x\\", y"}'],
            "managed_route": "ml",
        }
    ]
    route_id = shipped.get("/api/v1/notification-routes").json()[0]["id"]
    assert shipped.put(
        f"/api/v1/notification-routes/{route_id}", json={"continue": True}
    ).is_success
    routed = _test(shipped, {"group": 'ml "x", y', "severity": "critical"})
    assert routed["receivers"] == ["ml-team", "oncall"]
    assert [r["managed_route"] for r in routed["routes"]] == ["ml", None]
    # A value that only looks like the matcher does not match it.
    assert _test(shipped, {"group": "ml", "severity": "warning"})["receivers"] == ["default"]


@pytest.mark.parametrize(
    "labels",
    [
        {"1abc": "x"},
        {"a-b": "x"},
        {"-x": "1"},
        {"a" * 101: "x"},
        {"a": "x" * 1001},
        {"a": "line\nbreak"},
        {f"l{i}": "v" for i in range(51)},
    ],
)
def test_bad_labels_are_422(client: TestClient, labels: dict[str, str]) -> None:
    response = client.post("/api/v1/notification-routes/test", json={"labels": labels})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"


def test_bad_bodies_are_4xx(client: TestClient, anon: TestClient) -> None:
    url = "/api/v1/notification-routes/test"
    assert client.post(url, json={"labels": ["a=b"]}).status_code == 422
    assert client.post(url, json={"labels": {"a": 1}}).status_code == 422
    assert client.post(url, json={"labels": {}, "extra": 1}).status_code == 422
    assert client.post(url, content=b"not json").status_code in (400, 422)
    assert anon.post(url, json={"labels": {}}).status_code == 401


def test_parse_tree_reads_nested_routes() -> None:
    output = (
        "Matching routes:\n.\n└── default-route\n"
        '    ├── {group="ml",severity=~"crit.*"}\n'
        '    │   └── {team="a b"}  receiver: a\n'
        '    └── {group="ml"}  receiver: ml\n\n\na,ml\n'
    )
    receivers, matches = parse_tree(output)
    assert receivers == ["a", "ml"]
    assert [m.path for m in matches] == [
        ("default-route", '{group="ml",severity=~"crit.*"}', '{team="a b"}'),
        ("default-route", '{group="ml"}'),
    ]
    assert [m.branch for m in matches] == [0, 1]
    # A tree that does not read back still gives amtool's receivers.
    assert parse_tree("garbage\nx,y\n")[0] == ["x", "y"]
    assert [m.path for m in parse_tree("garbage\nx,y\n")[1]] == [(), ()]
