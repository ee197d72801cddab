"""Scrape health on a target's page: Prometheus's /api/v1/targets for each of its exporters
(answers fixed with httpx.MockTransport), and "Prometheus unreachable" when it does not
answer."""

from __future__ import annotations

import html
from typing import Any

import httpx
from fastapi import FastAPI

from aami.prometheus.client import PrometheusClient
from tests.support.api import app_services
from tests.web.conftest import Ui
from tests.web.test_pages import _fleet


def _active(target_id: str, address: str, health: str, error: str = "") -> dict[str, Any]:
    return {
        "discoveredLabels": {"__address__": address, "target_id": target_id},
        "labels": {"instance": "gpu-node-01", "job": "node-exporter", "target_id": target_id},
        "scrapePool": "node-exporter",
        "scrapeUrl": f"http://{address}/metrics",
        "lastError": error,
        "lastScrape": "2026-01-01T00:00:00.5Z",
        "lastScrapeDuration": 0.0123,
        "health": health,
    }


def _transport(target_id: str) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/v1/targets":
            return httpx.Response(404)
        active = [
            _active(target_id, "10.0.0.1:9100", "down", 'Get "http://10.0.0.1:9100": refused'),
            _active(target_id, "10.0.0.1:9400", "up"),
            _active("someone-else", "10.0.0.1:9500", "up"),
        ]
        return httpx.Response(200, json={"status": "success", "data": {"activeTargets": active}})

    return httpx.MockTransport(answer)


def test_target_page_shows_each_exporters_scrape_health(ui: Ui, ui_app: FastAPI) -> None:
    _fleet(ui)
    target_id = ui.api("GET", "/api/v1/targets").json()["data"][0]["id"]
    for port in ("9400", "9500"):
        added = ui.post(f"/ui/targets/{target_id}/exporters", {"type": "custom", "port": port})
        assert added.status_code == 303, added.text
    app_services(ui_app).prometheus = PrometheusClient(
        "http://prometheus.test", transport=_transport(target_id)
    )
    page = html.unescape(ui.get(f"/ui/targets/{target_id}").text)
    section = page[page.index('id="h-scrapes"') : page.index("Add an exporter")]
    rows = section.split("<tr>")[2:]
    assert len(rows) == 3
    custom, other, node = rows  # by exporter type, then port
    assert "node_exporter:9100" in node
    assert '<span class="status bad">down</span>' in node
    assert 'Get "http://10.0.0.1:9100": refused' in node
    assert "2026-01-01 00:00:00 UTC" in node
    assert "0.012 s" in node
    assert "node-exporter" in node
    assert "custom:9400" in custom
    assert '<span class="status ok">up</span>' in custom
    # Port 9500 is scraped for another target id, not this one's exporter.
    assert "custom:9500" in other
    assert "not scraped" in other


def test_target_page_says_prometheus_is_unreachable(ui: Ui) -> None:
    _fleet(ui)
    page = ui.get("/ui/targets/gpu-node-01")
    assert page.status_code == 200
    assert 'id="scrape-problem">Prometheus unreachable' in page.text
