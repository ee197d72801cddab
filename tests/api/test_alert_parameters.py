"""Typed template parameters and config merge patches through the API, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from aami.alerts.defaults import DEFAULT_ALERT_TEMPLATES
from aami.app import create_app
from aami.config import Settings
from tests.api.test_checks import MOUNT_CHECK
from tests.conftest import AUTH
from tests.support.api import create, error
from tests.support.migrations import migrate

GPU_TEMP = {
    "name": "HighGPUTemp",
    "query_template": (
        'max_over_time(DCGM_FI_DEV_GPU_TEMP{group_id="{{.group_id}}", '
        'mode="{{.mode}}"}[{{.window}}]) > {{.threshold}}'
    ),
    "default_config": {"threshold": 85, "window": "5m", "mode": "any"},
    "parameters": {
        "threshold": {
            "type": "number",
            "min": 0,
            "max": 120,
            "unit": "°C",
            "description": "GPU temperature",
        },
        "mode": {"type": "enum", "choices": ["any", "training", "inference"]},
    },
}


def _rule(client: TestClient, config: dict[str, Any] | None = None) -> dict[str, Any]:
    create(client, "/api/v1/groups", {"id": "prod", "name": "production"})
    create(client, "/api/v1/alert-templates", GPU_TEMP)
    return create(
        client,
        "/api/v1/alert-rules",
        {
            "template_id": "HighGPUTemp",
            "group_id": "prod",
            "config": config or {"threshold": 90, "for_duration": "10m", "window": "10m"},
        },
    )


def test_parameters_are_stored_declared_and_inferred(client: TestClient) -> None:
    template = create(client, "/api/v1/alert-templates", GPU_TEMP)
    parameters = template["parameters"]
    assert parameters["threshold"] == {
        "type": "number",
        "min": 0,
        "max": 120,
        "unit": "°C",
        "description": "GPU temperature",
        "choices": None,
    }
    assert parameters["mode"]["choices"] == ["any", "training", "inference"]
    # Not declared: inferred from its default.
    assert parameters["window"]["type"] == "duration"
    inferred = create(
        client,
        "/api/v1/alert-templates",
        {
            "name": "Inferred",
            "query_template": 'up{job="{{.job}}"} < {{.limit}} and on() vector({{.n}}) > 0',
            "default_config": {"limit": 1, "n": 0.5, "job": "node", "paging": True, "w": "1h"},
        },
    )
    assert {key: spec["type"] for key, spec in inferred["parameters"].items()} == {
        "limit": "number",
        "n": "number",
        "job": "label_value",
        "paging": "enum",
        "w": "duration",
    }
    assert inferred["parameters"]["paging"]["choices"] == [True, False]


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        (
            {"threshold": "sixty"},
            "config.threshold: 'sixty' is not a number "
            "(HighGPUTemp.threshold: number, °C, 0\u2013120)",
        ),
        (
            {"threshold": "abc"},
            "config.threshold: 'abc' is not a number "
            "(HighGPUTemp.threshold: number, °C, 0\u2013120)",
        ),
        (
            {"threshold": 130},
            "config.threshold: 130 is above the maximum 120 "
            "(HighGPUTemp.threshold: number, °C, 0\u2013120)",
        ),
        (
            {"threshold": -1},
            "config.threshold: -1 is below the minimum 0 "
            "(HighGPUTemp.threshold: number, °C, 0\u2013120)",
        ),
        (
            {"threshold": True},
            "config.threshold: True is not a number "
            "(HighGPUTemp.threshold: number, °C, 0\u2013120)",
        ),
        (
            {"mode": "batch"},
            "config.mode: 'batch' is not one of 'any', 'training', 'inference' "
            "(HighGPUTemp.mode: one of any, training, inference)",
        ),
        (
            {"window": "5 minutes"},
            "config.window: '5 minutes' is not a duration such as '30s', '5m' or '1h30m' "
            "(HighGPUTemp.window: duration)",
        ),
    ],
)
def test_a_typed_value_is_refused_and_nothing_changes(
    client: TestClient, config: dict[str, Any], detail: str
) -> None:
    rule = _rule(client)
    audit_before = client.get("/api/v1/audit").json()["pagination"]["total"]
    assert error(client.put(f"/api/v1/alert-rules/{rule['id']}", json={"config": config}), 422) == (
        detail
    )
    after = client.get(f"/api/v1/alert-rules/{rule['id']}").json()
    assert after["config"] == rule["config"]
    assert after["rendered"] == rule["rendered"]
    assert after["updated_at"] == rule["updated_at"]
    assert client.get("/api/v1/audit").json()["pagination"]["total"] == audit_before
    # On create too: a second group's rule with the same config is refused, none is made.
    create(client, "/api/v1/groups", {"id": "dev", "name": "dev"})
    body = {"template_id": "HighGPUTemp", "group_id": "dev", "config": config}
    assert error(client.post("/api/v1/alert-rules", json=body), 422) == detail
    assert client.get("/api/v1/alert-rules").json()["pagination"]["total"] == 1


def test_numbers_as_text_and_bounds_inclusive_are_accepted(client: TestClient) -> None:
    rule = _rule(client, {"threshold": "120"})
    assert rule["rendered"]["expr"].endswith("> 120")
    edge = client.put(f"/api/v1/alert-rules/{rule['id']}", json={"config": {"threshold": 0}})
    assert edge.status_code == 200, edge.text
    assert edge.json()["rendered"]["expr"].endswith("> 0")


@pytest.mark.parametrize(
    ("parameters", "default_config", "detail"),
    [
        (
            {"threshold": {"type": "number", "min": 10, "max": 5}},
            {"threshold": 7},
            "parameters.threshold: min 10 is greater than max 5; nothing fits",
        ),
        (
            {"threshold": {"type": "enum"}},
            {"threshold": 7},
            "parameters.threshold.choices: an enum needs at least one choice",
        ),
        (
            {"threshold": {"type": "number", "min": 0, "max": 100, "unit": "%"}},
            {"threshold": 150},
            "default_config.threshold: 150 is above the maximum 100 "
            "(Bad.threshold: number, %, 0\u2013100)",
        ),
        (
            {"threshold": {"type": "duration", "max": 5}},
            {"threshold": "5m"},
            "parameters.threshold.max: only a number or integer has bounds",
        ),
        (
            {"threshold": {"type": "number", "choices": [1, 2]}},
            {"threshold": 1},
            "parameters.threshold.choices: only an enum has choices",
        ),
        (
            {"group_id": {"type": "label_value"}},
            {"threshold": 1},
            "parameters.group_id: group_id is filled in by AAMI, not a parameter",
        ),
    ],
)
def test_an_inconsistent_parameter_spec_is_refused(
    client: TestClient, parameters: dict[str, Any], default_config: dict[str, Any], detail: str
) -> None:
    body = {
        "name": "Bad",
        "query_template": "node_load1 > {{.threshold}}",
        "default_config": default_config,
        "parameters": parameters,
    }
    assert error(client.post("/api/v1/alert-templates", json=body), 422) == detail
    assert client.get("/api/v1/alert-templates").json()["pagination"]["total"] == 0


def test_unknown_parameter_type_is_refused(client: TestClient) -> None:
    body = {
        "name": "Bad",
        "query_template": "node_load1 > {{.threshold}}",
        "parameters": {"threshold": {"type": "percent"}},
    }
    detail = error(client.post("/api/v1/alert-templates", json=body), 422)
    assert detail.startswith("parameters.threshold.type:"), detail


def test_narrowing_a_parameter_refuses_when_a_rule_no_longer_fits(client: TestClient) -> None:
    rule = _rule(client)  # threshold 90
    template = client.get("/api/v1/alert-templates/HighGPUTemp").json()
    url = "/api/v1/alert-templates/HighGPUTemp"
    # Below the template's own default: refused for the default first.
    below_default = {"threshold": {"type": "number", "min": 0, "max": 80}}
    assert error(client.put(url, json={"parameters": below_default}), 422) == (
        "default_config.threshold: 85 is above the maximum 80 "
        "(HighGPUTemp.threshold: number, 0\u201380)"
    )
    # Fits the default, not the rule's 90: refused, naming the rule.
    narrowed = {"threshold": {"type": "number", "min": 0, "max": 88}}
    assert error(client.put(url, json={"parameters": narrowed}), 422) == (
        f"the change breaks the rule {rule['id']} (group prod): config.threshold: 90 is above "
        "the maximum 88 (HighGPUTemp.threshold: number, 0\u201388)"
    )
    assert client.get("/api/v1/alert-templates/HighGPUTemp").json() == template


def test_update_merges_config_and_null_removes_a_key(client: TestClient) -> None:
    rule = _rule(client)
    assert rule["config"] == {"threshold": 90, "for_duration": "10m", "window": "10m"}
    one_key = client.put(f"/api/v1/alert-rules/{rule['id']}", json={"config": {"threshold": 60}})
    assert one_key.status_code == 200, one_key.text
    assert one_key.json()["config"] == {"threshold": 60, "for_duration": "10m", "window": "10m"}
    assert one_key.json()["rendered"]["for"] == "10m"
    removed = client.put(
        f"/api/v1/alert-rules/{rule['id']}", json={"config": {"window": None, "mode": "training"}}
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["config"] == {"threshold": 60, "for_duration": "10m", "mode": "training"}
    # The template's default comes back for the removed key.
    assert "[5m]" in removed.json()["rendered"]["expr"]
    assert (
        client.get(f"/api/v1/alert-rules/{rule['id']}").json()["config"]
        == (removed.json()["config"])
    )
    # Removing a key that is not there changes nothing; a null config is still refused.
    again = client.put(f"/api/v1/alert-rules/{rule['id']}", json={"config": {"nope": None}})
    assert again.json()["config"] == removed.json()["config"]
    error(client.put(f"/api/v1/alert-rules/{rule['id']}", json={"config": None}), 422)


def test_policy_update_merges_config_and_null_removes_a_key(client: TestClient) -> None:
    create(client, "/api/v1/script-templates", MOUNT_CHECK)
    policy = create(
        client,
        "/api/v1/script-policies",
        {"template_id": "mount-check", "scope": "global", "config": {"paths": "/a", "x": 1}},
    )
    url = f"/api/v1/script-policies/{policy['id']}"
    merged = client.put(url, json={"config": {"paths": "/b"}})
    assert merged.status_code == 200, merged.text
    assert merged.json()["config"] == {"paths": "/b", "x": 1}
    removed = client.put(url, json={"config": {"x": None}})
    assert removed.json()["config"] == {"paths": "/b"}


def test_the_shipped_templates_declare_typed_thresholds(client: TestClient) -> None:
    seeded = client.post("/api/v1/seed")
    assert seeded.status_code in (200, 201), seeded.text
    with_threshold = [t for t in DEFAULT_ALERT_TEMPLATES if "threshold" in t["default_config"]]
    assert with_threshold
    for item in with_threshold:
        template = client.get(f"/api/v1/alert-templates/{item['name']}").json()
        threshold = template["parameters"]["threshold"]
        assert threshold["type"] == "number", item["name"]
        assert threshold["unit"], item["name"]
        assert threshold["min"] == 0, item["name"]


def test_the_migration_infers_parameters_of_existing_templates(
    database_url: str, settings: Settings
) -> None:
    migrate(database_url, "0007")  # before typed parameters
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO alert_templates (id, name, description, query_template, "
                "default_config, severity, for_duration, labels, annotations, created_at, "
                "updated_at) VALUES ('old', 'OldDisk', '', :query, :defaults, 'warning', '5m', "
                "'{}', '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ),
            {
                "query": 'node_filesystem_avail_bytes{fstype!~"{{.fs}}"} < {{.threshold}}',
                "defaults": json.dumps(
                    {"threshold": 20, "ratio": 0.5, "window": "5m", "fs": "nfs", "page": False}
                ),
            },
        )
    engine.dispose()
    migrate(database_url, "head")
    with TestClient(create_app(settings), headers=AUTH) as client:
        template = client.get("/api/v1/alert-templates/OldDisk").json()
        assert {key: spec["type"] for key, spec in template["parameters"].items()} == {
            "threshold": "number",
            "ratio": "number",
            "window": "duration",
            "fs": "label_value",
            "page": "enum",
        }
        assert template["parameters"]["page"]["choices"] == [True, False]
        assert template["parameters"]["threshold"] == {
            "type": "number",
            "min": None,
            "max": None,
            "unit": "",
            "description": "",
            "choices": None,
        }
        # The inferred types are enforced from then on.
        create(client, "/api/v1/groups", {"id": "prod", "name": "production"})
        body = {"template_id": "OldDisk", "group_id": "prod", "config": {"threshold": "abc"}}
        assert error(client.post("/api/v1/alert-rules", json=body), 422) == (
            "config.threshold: 'abc' is not a number (OldDisk.threshold: number)"
        )


def test_a_config_key_the_template_does_not_take_is_refused(client: TestClient) -> None:
    rule = _rule(client)
    before = client.get(f"/api/v1/alert-rules/{rule['id']}", headers=AUTH).json()
    typo = client.put(
        f"/api/v1/alert-rules/{rule['id']}", json={"config": {"treshold": 60}}, headers=AUTH
    )
    detail = error(typo, 422)
    assert detail.startswith("config.treshold: template HighGPUTemp has no parameter 'treshold'")
    assert "threshold" in detail.split("it takes:")[1]
    assert client.get(f"/api/v1/alert-rules/{rule['id']}", headers=AUTH).json() == before
    created = client.post(
        "/api/v1/alert-rules",
        json={"template_id": "HighGPUTemp", "config": {"threshold": 90, "windw": "1m"}},
        headers=AUTH,
    )
    assert error(created, 422).startswith("config.windw: template HighGPUTemp has no parameter")
    # Every key the template declares or uses is taken, and so are for and severity.
    fine = client.put(
        f"/api/v1/alert-rules/{rule['id']}",
        json={"config": {"mode": "training", "severity": "critical", "for_duration": "1m"}},
        headers=AUTH,
    )
    assert fine.status_code == 200, fine.text
