"""Pages that show what Prometheus says, over a PrometheusClient whose answers are fixed
(httpx.MockTransport); the publishing page's less common outcomes; long lists."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from aami.alerts.models import AlertTemplate
from aami.common.changes import mark_rule_scopes
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
