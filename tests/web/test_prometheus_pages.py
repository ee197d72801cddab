"""Pages that show what Prometheus says, over a PrometheusClient whose answers are fixed
(httpx.MockTransport); the publishing page's less common outcomes; long lists."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from aami.alerts.models import AlertTemplate
from aami.common.changes import mark_rule_scopes
from aami.config import Settings
from aami.prometheus.client import PrometheusClient
from tests.support.api import app_services
from tests.web.conftest import Ui
from tests.web.test_pages import TEMPLATE_FORM, _fleet


def _series(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1767225600, value]}


def _prometheus(request: httpx.Request) -> httpx.Response:
    if request.url.path != "/api/v1/query":
        return httpx.Response(404)
    query = request.url.params["query"]
    if query == "up":
        result = [
            _series("1", instance="127.0.0.1:9090", job="prometheus"),
            _series("1", instance="gpu-node-01", job="node-exporter", group="production"),
            _series("0", instance="gpu-node-02", job="node-exporter", group="production"),
        ]
    elif "cpu_busy" in query:
        result = [_series("93", __name__="cpu_busy", instance="gpu-node-01", group_id="prod")]
    else:
        return httpx.Response(
            400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
        )
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
    )


@pytest.fixture
def prometheus(ui_app: FastAPI) -> None:
    app_services(ui_app).prometheus = PrometheusClient(
        "http://prometheus.test", transport=httpx.MockTransport(_prometheus)
    )


@pytest.mark.usefixtures("prometheus")
def test_dashboard_lists_targets_down(ui: Ui) -> None:
    page = ui.get("/ui/").text
    assert "Prometheus reachable" in page
    assert "2 up" in page
    assert "1 down" in page
    assert re.search(r"<td>gpu-node-02</td><td>node-exporter</td><td>production</td>", page)


@pytest.mark.usefixtures("prometheus")
def test_preview_lists_what_would_fire(ui: Ui) -> None:
    _fleet(ui)
    body = ui.post("/ui/preview", {**TEMPLATE_FORM, "preview_group": "prod"}).json()
    assert body["matches"]["error"] is None
    assert body["matches"]["count"] == 1
    assert body["matches"]["series"][0]["instance"] == "gpu-node-01"
    assert body["matches"]["series"][0]["value"] == "93"
    page = ui.post(
        "/ui/alert-templates/new", {**TEMPLATE_FORM, "action": "preview", "preview_group": "prod"}
    ).text
    assert "1 series would be pending or firing now" in page
    assert "gpu-node-01" in page


def test_publishing_shows_a_failed_publish_and_what_is_out_of_sync(ui: Ui, ui_app: FastAPI) -> None:
    _fleet(ui)
    response = ui.api(
        "POST", "/api/v1/alert-rules", json={"template_id": "HighCPU", "group_id": "prod"}
    )
    assert response.status_code == 201, response.text
    # Poisoned behind the API's back (a hand-edited database): promtool refuses it.
    with app_services(ui_app).sessionmaker() as session:
        template = session.scalars(select(AlertTemplate)).one()
        template.annotations = {"summary": "{{ not_a_function }}"}
        session.flush()
        mark_rule_scopes(session, {"prod"})
        session.commit()
    page = ui.post("/ui/publishing/regenerate", {}).text
    assert "Regenerated" in page
    assert "not_a_function" in page
    assert "promtool output" in page
    assert 'data-sync="prometheus"' in page
    assert "out of sync" in page
    dashboard = ui.get("/ui/").text
    assert 'data-sync="prometheus"' in dashboard
    assert "out of sync" in dashboard
    assert "(prod)" in dashboard


def test_long_lists_have_pages(ui: Ui) -> None:
    for n in range(55):
        body = {"id": f"g{n:02d}", "name": f"group {n:02d}", "description": "odd" if n % 2 else ""}
        assert ui.api("POST", "/api/v1/groups", json=body).status_code == 201
    first = ui.get("/ui/groups").text
    assert "Page 1 of 2 (55)" in first
    assert "group 49" in first
    assert "group 50" not in first
    second = ui.get("/ui/groups?page=2").text
    assert "group 54" in second
    assert "group 00" not in second
    filtered = ui.get("/ui/groups?q=odd").text
    assert "(27)" in filtered or "27 in all" in filtered
    assert "group 01" in filtered
    assert "group 02" not in filtered
    assert ui.get("/ui/groups?page=abc").status_code == 200


def test_a_link_from_another_site_reloads_to_send_the_cookie(browser: TestClient) -> None:
    """SameSite=Strict cookies are not sent on a cross-site navigation: reload same-site."""
    response = browser.get("/ui/targets", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="0">' in response.text
    response = browser.get("/ui/targets", headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 303


# ---- a rule's page: Prometheus's own view of it ------------------------------------------


def _alerting_rule(name: str, query: str, *states: str) -> dict[str, Any]:
    """An alerting rule as GET /api/v1/rules?type=alert reports it."""
    return {
        "state": "firing" if "firing" in states else ("pending" if states else "inactive"),
        "name": name,
        "query": query,
        "duration": 300,
        "keepFiringFor": 0,
        "labels": {"severity": "warning"},
        "annotations": {},
        "alerts": [
            {
                "labels": {"alertname": name, "instance": f"gpu-node-{n:02d}"},
                "annotations": {},
                "state": state,
                "activeAt": "2026-01-01T00:00:00Z",
                "value": "9.3e+01",
            }
            for n, state in enumerate(states)
        ],
        "health": "ok",
        "evaluationTime": 0.000412,
        "lastEvaluation": "2026-01-01T00:01:02.123456789Z",
        "type": "alerting",
        "lastError": "",
    }


def _rules_answer(*groups: dict[str, Any]) -> dict[str, Any]:
    return {"status": "success", "data": {"groups": list(groups)}}


def _rule_group(name: str, file: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "file": file,
        "rules": list(rules),
        "interval": 15,
        "limit": 0,
        "evaluationTime": 0.0005,
        "lastEvaluation": "2026-01-01T00:01:02Z",
    }


def _rule_page(ui: Ui, ui_app: FastAPI, answer: httpx.Response | Exception) -> tuple[str, str]:
    """Make a rule in group prod, with Prometheus answering ``answer`` to /api/v1/rules;
    return the rule's page and its id."""

    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/api/v1/rules" and request.url.params.get("type") == "alert":
            return answer
        return httpx.Response(404)

    app_services(ui_app).prometheus = PrometheusClient(
        "http://prometheus.test", transport=httpx.MockTransport(handle)
    )
    _fleet(ui)
    created = ui.api(
        "POST",
        "/api/v1/alert-rules",
        json={"template_id": "HighCPU", "group_id": "prod", "config": {"threshold": 90}},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    page = ui.get(f"/ui/rules/{body['id']}")
    assert page.status_code == 200, page.text
    assert body["rendered"]["alert"] == "HighCPU_Production"
    return page.text, body["id"]


def test_rule_page_shows_health_state_and_last_evaluation(ui: Ui, ui_app: FastAPI) -> None:
    alert = "HighCPU_Production"  # what AAMI renders (checked in _rule_page)
    expr = 'cpu_busy{group_id="prod"} > 90'
    answer = httpx.Response(
        200,
        json=_rules_answer(
            # Same name, another group and file: not this rule.
            _rule_group(
                "aami-global",
                "/etc/prometheus/rules/generated/global.yml",
                {**_alerting_rule(alert, expr), "health": "err", "lastError": "elsewhere"},
            ),
            _rule_group(
                "aami-prod",
                "/etc/prometheus/rules/generated/group-prod.yml",
                _alerting_rule(alert, expr, "pending", "firing", "firing"),
            ),
        ),
    )
    page, rule_id = _rule_page(ui, ui_app, answer)
    assert 'data-evaluator="loaded"' in page
    assert 'data-health="ok"' in page
    assert "elsewhere" not in page
    assert 'data-state="firing"' in page
    assert "1 pending, 2 firing" in page
    assert "2026-01-01 00:01:02 UTC" in page
    assert "0.412 ms" in page
    assert "Last error</dt><dd>none" in page
    # The change's path, once published: saved, written (the rule file), not loaded (the
    # publisher's Prometheus does not run here).
    assert "Regenerated" in ui.post("/ui/publishing/regenerate", {}).text
    page = ui.get(f"/ui/rules/{rule_id}").text
    path = re.search(r'<ol class="publish-path".*?</ol>', page, re.S)
    assert path, page
    saved = re.search(r"Saved: revision (\d+)", path.group(0))
    assert saved, path.group(0)
    assert f'Written: revision {saved.group(1)} <span class="status ok">done' in path.group(0)
    assert 'Loaded: <span class="status bad">not yet' in path.group(0)
    assert "Rule group prod:" in page


def test_rule_page_says_when_prometheus_has_not_loaded_it(ui: Ui, ui_app: FastAPI) -> None:
    answer = httpx.Response(
        200,
        json=_rules_answer(
            _rule_group("other", "/etc/prometheus/rules/other.yml", _alerting_rule("Other", "up"))
        ),
    )
    page, _id = _rule_page(ui, ui_app, answer)
    assert 'data-evaluator="absent"' in page
    assert "Not loaded in Prometheus" in page
    assert "aami-prod" in page


@pytest.mark.parametrize(
    "answer",
    [ConnectionRefusedError(), httpx.Response(503), httpx.Response(200, text="<html>")],
    ids=["refused", "503", "not-json"],
)
def test_rule_page_says_when_prometheus_is_unreachable(
    ui: Ui, ui_app: FastAPI, answer: httpx.Response | Exception
) -> None:
    page, _id = _rule_page(ui, ui_app, answer)
    assert 'data-evaluator="unreachable"' in page
    assert "Prometheus unreachable: " in page


def test_the_external_url_defaults_to_prometheus_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(PROMETHEUS_URL="http://vm:39090/").prometheus_external_url == "http://vm:39090"
    monkeypatch.setenv("AAMI_PROMETHEUS_EXTERNAL_URL", "https://prom.example.com/")
    assert Settings().prometheus_external_url == "https://prom.example.com"


def test_rule_page_links_the_graph_through_the_external_url(ui: Ui, ui_app: FastAPI) -> None:
    app_services(ui_app).settings.prometheus_external_url = "https://prom.example.com/"
    page, _id = _rule_page(ui, ui_app, httpx.Response(200, json=_rules_answer()))
    found = re.search(r'href="([^"]*)"[^>]*data-testid="prometheus-graph"', page)
    assert found, page
    url = httpx.URL(html.unescape(found.group(1)))
    assert str(url).startswith("https://prom.example.com/graph?g0.expr=")
    assert url.params["g0.expr"] == 'cpu_busy{group_id="prod"} > 90'
    assert url.params["g0.tab"] == "0"
    assert "127.0.0.1:1" not in found.group(1)
    # Encoded, not raw: quotes, braces and spaces never reach the query string as they are.
    assert "%7Bgroup_id%3D%22prod%22%7D" in found.group(1)


def test_publishing_lists_remote_evaluators_and_their_state(ui: Ui) -> None:
    _fleet(ui)
    body = {"name": "prom-b", "kind": "prometheus", "url": "http://10.2.0.1:9090"}
    made = ui.api("POST", "/api/v1/evaluators", json=body)
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    page = ui.get("/ui/publishing").text
    assert "prom-b" in page
    assert "stale" in page
    assert token not in page
    revision = made.json()["desired_revision"]
    reported = ui.client.post(
        "/api/v1/evaluators/prom-b/status",
        json={"loaded_revision": revision, "error": "promtool: bad rule"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reported.status_code == 200, reported.text
    page = html.unescape(ui.get("/ui/publishing").text)
    assert "out of sync" in page
    assert "promtool: bad rule" in page
