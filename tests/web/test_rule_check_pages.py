"""The rule form's Preview and Backtest buttons and the template save's confirmation,
without a browser: what is shown when Prometheus is not there, what is refused, and that
nothing is saved before Confirm."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Ui

TEMPLATE = {
    "name": "HotGpu",
    "query_template": 'max by (instance) (gpu_temp{group_id="{{.group_id}}"}) > {{.threshold}}',
    "default_config": {"threshold": 80},
    "parameters": {"threshold": {"type": "number", "min": 0, "max": 120}},
    "for_duration": "1m",
}


@pytest.fixture
def rule(ui: Ui) -> dict[str, Any]:
    assert ui.api("POST", "/api/v1/groups", json={"id": "prod", "name": "production"})
    assert ui.api("POST", "/api/v1/alert-templates", json=TEMPLATE).status_code == 201
    response = ui.api(
        "POST",
        "/api/v1/alert-rules",
        json={"id": "hot-prod", "template_id": "HotGpu", "group_id": "prod"},
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def form(**changes: str) -> dict[str, str]:
    return {
        "template_id": "HotGpu",
        "group_id": "prod",
        "enabled": "on",
        "config.threshold": "",
        "hours": "24",
        "step": "",
        **changes,
    }


def test_preview_says_prometheus_is_unreachable(ui: Ui, rule: dict[str, Any]) -> None:
    response = ui.post("/ui/rules/hot-prod", form(action="preview", **{"config.threshold": "70"}))
    assert response.status_code == 200, response.text
    assert 'data-testid="rule-preview"' in response.text
    assert 'data-state="unreachable"' in response.text
    assert "gpu_temp{group_id=&#34;prod&#34;}) &gt; 70" in response.text
    assert ui.api("GET", "/api/v1/alert-rules/hot-prod").json()["config"] == {}


def test_a_backtest_shows_both_columns_even_without_prometheus(
    ui: Ui, rule: dict[str, Any]
) -> None:
    response = ui.post("/ui/rules/hot-prod", form(action="backtest", **{"config.threshold": "70"}))
    assert response.status_code == 200, response.text
    assert "Current (saved rule hot-prod)" in response.text
    assert "Prometheus unreachable" in response.text


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hours": "500"}, "hours: 500 is outside 1"),
        ({"hours": "many"}, "&#39;many&#39; is not a number"),
        ({"step": "0.1"}, "step: 0.1 s is outside"),
        ({"config.threshold": "hot"}, "&#39;hot&#39; is not a number"),
    ],
)
def test_bad_backtest_input_is_refused_on_its_field(
    ui: Ui, rule: dict[str, Any], changes: dict[str, str], expected: str
) -> None:
    response = ui.post("/ui/rules/hot-prod", form(action="backtest", **changes))
    assert response.status_code == 422, response.text
    assert expected in response.text
    assert 'data-testid="rule-backtest"' not in response.text


def template_form(**changes: str) -> dict[str, str]:
    return {
        "name": "HotGpu",
        "description": "",
        "query_template": str(TEMPLATE["query_template"]),
        "default_config": '{"threshold": 80}',
        "parameters": '{"threshold": {"type": "number", "min": 0, "max": 120}}',
        "severity": "warning",
        "for_duration": "1m",
        "labels": "",
        "annotations": "",
        "preview_group": "",
        "action": "save",
        **changes,
    }


def test_saving_a_template_with_rules_asks_first_and_saves_on_confirm(
    ui: Ui, rule: dict[str, Any]
) -> None:
    asked = ui.post("/ui/alert-templates/HotGpu", template_form(severity="critical"))
    assert asked.status_code == 200, asked.text
    assert "Save template HotGpu?" in asked.text
    assert 'data-rule="hot-prod"' in asked.text
    assert 'data-field="severity"' in asked.text
    assert ui.api("GET", "/api/v1/alert-templates/HotGpu").json()["severity"] == "warning"
    saved = ui.post("/ui/alert-templates/HotGpu", template_form(severity="critical", confirmed="1"))
    assert saved.status_code == 303, saved.text
    assert ui.api("GET", "/api/v1/alert-templates/HotGpu").json()["severity"] == "critical"


def test_a_change_that_breaks_a_rule_is_refused_without_asking(
    ui: Ui, rule: dict[str, Any]
) -> None:
    broken = template_form(query_template='gpu_temp{group_id="{{.group_id}}"} > {{.limit}}')
    response = ui.post("/ui/alert-templates/HotGpu", broken)
    assert response.status_code == 422, response.text
    assert "Save template HotGpu?" not in response.text
    assert "limit" in response.text


def test_a_new_rule_is_previewed_and_backtested_against_the_template_defaults(
    ui: Ui, rule: dict[str, Any]
) -> None:
    assert ui.api("POST", "/api/v1/groups", json={"id": "dev", "name": "development"})
    preview = ui.post("/ui/rules/new", form(action="preview", group_id="dev"))
    assert preview.status_code == 200, preview.text
    assert "Preview (group development)" in preview.text
    backtest = ui.post(
        "/ui/rules/new", form(action="backtest", group_id="dev", **{"config.threshold": "60"})
    )
    assert backtest.status_code == 200, backtest.text
    assert "Current (template defaults)" in backtest.text
    assert "gpu_temp{group_id=&#34;dev&#34;}) &gt; 60" in backtest.text
    assert ui.api("GET", "/api/v1/alert-rules", params={"group_id": "dev"}).json()["data"] == []
