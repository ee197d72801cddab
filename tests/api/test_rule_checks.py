"""The rule preview, the backtest and a template change's impact through the API: what
is refused (and why), what is answered when Prometheus is not there, and the impact."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import create, error

TEMPLATE = {
    "name": "HotGpu",
    "query_template": 'max by (instance) (gpu_temp{group_id="{{.group_id}}"}) > {{.threshold}}',
    "default_config": {"threshold": 80},
    "parameters": {"threshold": {"type": "number", "min": 0, "max": 120, "unit": "°C"}},
    "for_duration": "1m",
}


@pytest.fixture
def rule(client: TestClient) -> dict[str, Any]:
    create(client, "/api/v1/groups", {"id": "prod", "name": "production"})
    create(client, "/api/v1/groups", {"id": "dev", "name": "development"})
    create(client, "/api/v1/alert-templates", TEMPLATE)
    create(
        client,
        "/api/v1/alert-rules",
        {"template_id": "HotGpu", "group_id": "dev", "config": {"threshold": 90}},
    )
    return create(
        client,
        "/api/v1/alert-rules",
        {"id": "hot-prod", "template_id": "HotGpu", "group_id": "prod", "config": {}},
    )


def test_the_preview_says_prometheus_is_unreachable_without_failing(
    client: TestClient, rule: dict[str, Any]
) -> None:
    response = client.get("/api/v1/alert-rules/hot-prod/preview")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is True
    assert body["rule"]["expr"] == 'max by (instance) (gpu_temp{group_id="prod"}) > 80'
    assert body["evaluation"]["state"] == "unreachable"
    assert "Prometheus unreachable" in body["evaluation"]["summary"]

    draft = client.post(
        "/api/v1/alert-rules/preview",
        json={"template_id": "HotGpu", "group_id": "production", "config": {"threshold": 70}},
    )
    assert draft.status_code == 200, draft.text
    assert draft.json()["rule"]["expr"].endswith("> 70")
    assert draft.json()["evaluation"]["state"] == "unreachable"


def test_a_backtest_without_prometheus_says_so_per_config(
    client: TestClient, rule: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/alert-rules/hot-prod/backtest", json={"config": {"threshold": 70}, "hours": 2}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["hours"] == 2
    assert body["step_seconds"] == 15
    assert body["current_source"] == "saved rule hot-prod"
    assert body["current"]["expr"].endswith("> 80")
    assert body["proposed"]["expr"].endswith("> 70")
    for run in (body["current"], body["proposed"]):
        assert run["error"].startswith("Prometheus unreachable")
        assert run["episodes"] == 0


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/api/v1/alert-rules/hot-prod/backtest", {"hours": 0}, "hours"),
        ("/api/v1/alert-rules/hot-prod/backtest", {"hours": 169}, "hours"),
        ("/api/v1/alert-rules/hot-prod/backtest", {"hours": 1, "step": 0.5}, "step"),
        ("/api/v1/alert-rules/hot-prod/backtest", {"hours": 168, "step": 10}, "at least 55 s"),
        (
            "/api/v1/alert-rules/hot-prod/backtest",
            {"config": {"threshold": "hot"}},
            "config.threshold: 'hot' is not a number",
        ),
        (
            "/api/v1/alert-rules/hot-prod/backtest",
            {"config": {"threshold": 500}},
            "above the maximum 120",
        ),
        (
            "/api/v1/alert-rules/hot-prod/backtest",
            {"config": {"treshold": 70}},
            "config.treshold: template HotGpu has no parameter",
        ),
        (
            "/api/v1/alert-rules/backtest",
            {"template_id": "HotGpu", "group_id": "prod", "config": {"threshold": [1]}},
            "only strings, numbers and booleans",
        ),
        (
            "/api/v1/alert-rules/preview",
            {"template_id": "HotGpu", "config": {"threshold": "80) or vector(1"}},
            "is not a number",
        ),
        ("/api/v1/alert-rules/preview", {"template_id": "HotGpu", "near": 51}, "near"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    client: TestClient, rule: dict[str, Any], path: str, body: dict[str, Any], expected: str
) -> None:
    assert expected in error(client.post(path, json=body), 422)


def test_unknown_rules_templates_and_groups_are_not_found(
    client: TestClient, rule: dict[str, Any]
) -> None:
    assert "nope" in error(client.get("/api/v1/alert-rules/nope/preview"), 404)
    assert "nope" in error(client.post("/api/v1/alert-rules/nope/backtest", json={}), 404)
    missing_group = {"template_id": "HotGpu", "group_id": "nowhere"}
    assert "nowhere" in error(client.post("/api/v1/alert-rules/backtest", json=missing_group), 404)
    missing_template = {"template_id": "Nothing"}
    assert "Nothing" in error(
        client.post("/api/v1/alert-rules/preview", json=missing_template), 404
    )
    assert "Nothing" in error(client.post("/api/v1/alert-templates/Nothing/impact", json={}), 404)


def test_the_impact_of_a_template_change_lists_each_rule_before_and_after(
    client: TestClient, rule: dict[str, Any]
) -> None:
    change = {
        "query_template": 'avg by (instance) (gpu_temp{group_id="{{.group_id}}"}) > {{.threshold}}',
        "for_duration": "5m",
        "severity": "critical",
    }
    before = client.get("/api/v1/alert-templates/HotGpu").json()
    response = client.post("/api/v1/alert-templates/HotGpu/impact", json=change)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is True
    assert body["error"] is None
    by_group = {r["group_id"]: r for r in body["rules"]}
    assert set(by_group) == {"prod", "dev"}
    prod = by_group["prod"]
    assert prod["before"]["expr"] == 'max by (instance) (gpu_temp{group_id="prod"}) > 80'
    assert prod["after"]["expr"] == 'avg by (instance) (gpu_temp{group_id="prod"}) > 80'
    assert (prod["before"]["for"], prod["after"]["for"]) == ("1m", "5m")
    assert prod["after"]["labels"]["severity"] == "critical"
    assert prod["changed"] == ["expr", "for", "severity"]
    assert by_group["dev"]["after"]["expr"].endswith("> 90")
    # Nothing was saved.
    assert client.get("/api/v1/alert-templates/HotGpu").json() == before


def test_an_impact_that_breaks_a_rule_is_not_valid_and_says_which(
    client: TestClient, rule: dict[str, Any]
) -> None:
    change = {"parameters": {"threshold": {"type": "number", "min": 0, "max": 85}}}
    body = client.post("/api/v1/alert-templates/HotGpu/impact", json=change).json()
    assert body["valid"] is False
    assert "dev" in body["error"]
    assert "above the maximum 85" in body["error"]
    dev = next(r for r in body["rules"] if r["group_id"] == "dev")
    assert dev["after"] is None
    assert "above the maximum 85" in dev["after_error"]
    assert dev["changed"] == ["breaks"]
    # The PUT refuses the same change.
    assert "above the maximum 85" in error(
        client.put("/api/v1/alert-templates/HotGpu", json=change), 422
    )
    assert "hours" in error(
        client.post("/api/v1/alert-templates/HotGpu/impact", json={"hours": 1}), 422
    )
