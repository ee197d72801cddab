"""Alerts and silences pages over the real Alertmanager service, with an in-memory
Alertmanager API v2 behind the client (httpx.MockTransport)."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from aami.alertmanager.client import AlertmanagerClient
from tests.api.test_alert_history import one_alert, payload
from tests.support.api import app_services
from tests.web.conftest import Ui

NOW = "2026-01-01T00:00:00Z"


class FakeAlertmanager:
    """Just enough of /api/v2 for alerts and silences; records what it was sent."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.silences: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.expired: list[str] = []
        self.queries: list[dict[str, str]] = []

    def fire(
        self,
        *,
        silenced_by: list[str] | None = None,
        inhibited_by: list[str] | None = None,
        receivers: tuple[str, ...] = ("default",),
        **labels: str,
    ) -> None:
        muted = bool(silenced_by or inhibited_by)
        self.alerts.append(
            {
                "fingerprint": f"fp{len(self.alerts)}",
                "labels": labels,
                "annotations": {"summary": f"{labels['alertname']} on {labels.get('instance')}"},
                "startsAt": NOW,
                "endsAt": "2026-01-01T01:00:00Z",
                "status": {
                    "state": "suppressed" if muted else "active",
                    "silencedBy": silenced_by or [],
                    "inhibitedBy": inhibited_by or [],
                },
                "receivers": [{"name": r} for r in receivers],
            }
        )

    @staticmethod
    def _shown(alert: dict[str, Any], params: httpx.QueryParams) -> bool:
        """Alertmanager's ``active``, ``silenced`` and ``inhibited`` filters (default true)."""
        status = alert["status"]
        wanted = {k: params.get(k, "true") == "true" for k in ("active", "silenced", "inhibited")}
        if status["silencedBy"] and not wanted["silenced"]:
            return False
        if status["inhibitedBy"] and not wanted["inhibited"]:
            return False
        return bool(status["state"] != "active" or wanted["active"])

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v2/alerts" and request.method == "GET":
            wanted = [
                re.match(r'^(\w+)="(.*)"$', f).groups()  # type: ignore[union-attr]
                for f in request.url.params.get_list("filter")
            ]
            found = [
                a
                for a in self.alerts
                if all(a["labels"].get(k) == v for k, v in wanted)
                and self._shown(a, request.url.params)
            ]
            self.queries.append(dict(request.url.params))
            return httpx.Response(200, json=found)
        if path == "/api/v2/silences" and request.method == "GET":
            return httpx.Response(200, json=list(self.silences.values()))
        if path == "/api/v2/silences" and request.method == "POST":
            body = json.loads(request.content)
            silence_id = f"00000000-0000-4000-8000-{len(self.silences) + 1:012d}"
            self.created.append(body)
            self.silences[silence_id] = {
                **body,
                "id": silence_id,
                "status": {"state": "active"},
                "updatedAt": NOW,
            }
            return httpx.Response(200, json={"silenceID": silence_id})
        if path.startswith("/api/v2/silence/"):
            silence_id = path.rsplit("/", 1)[1]
            if silence_id not in self.silences:
                return httpx.Response(404, json={"message": "not found"})
            if request.method == "DELETE":
                self.expired.append(silence_id)
                self.silences[silence_id]["status"] = {"state": "expired"}
            return httpx.Response(200, json=self.silences[silence_id])
        return httpx.Response(404, text=f"no fake for {request.method} {path}")


@pytest.fixture
def fake(ui_app: FastAPI, ui: Ui) -> FakeAlertmanager:
    am = FakeAlertmanager()
    app_services(ui_app).alertmanager = AlertmanagerClient(
        "http://alertmanager.test", transport=httpx.MockTransport(am.handle)
    )
    for name, group in (("prod", "production"), ("dev", "development")):
        assert ui.post("/ui/groups/new", {"id": name, "name": group}).status_code == 303
    for host, group in (("gpu-node-01", "prod"), ("gpu-node-02", "dev")):
        response = ui.post(
            "/ui/targets/new",
            {"hostname": host, "ip_address": "10.0.0.1", "group_ids": group, "status": "active"},
        )
        assert response.status_code == 303
    am.fire(
        alertname="GPUHot_Production",
        severity="critical",
        instance="gpu-node-01",
        group="production",
        group_id="prod",
    )
    am.fire(
        alertname="DiskLow_Development",
        severity="warning",
        instance="gpu-node-02",
        group="development",
        group_id="dev",
    )
    return am


def test_dashboard_counts_firing_alerts(ui: Ui, fake: FakeAlertmanager) -> None:
    page = ui.get("/ui/").text
    assert "Alertmanager reachable" in page
    assert "2 firing" in page
    assert re.search(r"sev-critical\">critical</span> 1", page)
    assert re.search(r"production</a>: 1", page)


def test_alerts_list_and_filters(ui: Ui, fake: FakeAlertmanager) -> None:
    page = ui.get("/ui/alerts").text
    assert "GPUHot_Production" in page
    assert "DiskLow_Development" in page
    critical = ui.get("/ui/alerts?severity=critical").text
    assert "GPUHot_Production" in critical
    assert "DiskLow_Development" not in critical
    by_name = ui.get("/ui/alerts?group=development").text  # a group's name is accepted
    assert "DiskLow_Development" in by_name
    assert "GPUHot_Production" not in by_name
    target_page = ui.get("/ui/targets/gpu-node-01").text
    assert "GPUHot_Production" in target_page
    assert "DiskLow_Development" not in target_page


def test_silence_a_target_from_an_alert_row(ui: Ui, fake: FakeAlertmanager) -> None:
    response = ui.post(
        "/ui/silences",
        {
            "from": "alerts",
            "kind": "target",
            "target_value": "gpu-node-01",
            "group_value": "prod",
            "hours": "2",
            "comment": "replacing a GPU",
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/ui/silences?notice=silenced"
    assert [m["name"] + "=" + m["value"] for m in fake.created[0]["matchers"]] == [
        "instance=gpu-node-01"
    ]
    assert fake.created[0]["comment"] == "replacing a GPU"
    page = ui.get("/ui/silences").text
    assert 'instance="gpu-node-01"' in page.replace("&#34;", '"')
    assert "replacing a GPU" in page

    response = ui.post("/ui/silences/00000000-0000-4000-8000-000000000001/expire", {})
    assert response.status_code == 303
    assert fake.expired == ["00000000-0000-4000-8000-000000000001"]


def test_silence_a_group(ui: Ui, fake: FakeAlertmanager) -> None:
    response = ui.post(
        "/ui/silences",
        {"kind": "group", "value": "production", "hours": "1.5", "comment": "maintenance"},
    )
    assert response.status_code == 303, response.text
    assert fake.created[0]["matchers"][0] == {
        "name": "group_id",
        "value": "prod",
        "isRegex": False,
        "isEqual": True,
    }


def test_guardrails_are_shown_and_nothing_is_silenced(ui: Ui, fake: FakeAlertmanager) -> None:
    response = ui.post(
        "/ui/silences",
        {
            "from": "alerts",
            "kind": "target",
            "target_value": "gpu-node-01",
            "hours": "48",
            "comment": "too long",
        },
    )
    assert response.status_code == 422
    assert "at most" in response.text
    assert "GPUHot_Production" in response.text  # back on the alerts page
    for form, status, words in (
        (
            {"kind": "target", "value": "no-such-host", "hours": "1", "comment": "x"},
            404,
            "does not exist",
        ),
        (
            {"kind": "target", "value": "gpu-node-01", "hours": "soon", "comment": "x"},
            422,
            "not a number",
        ),
        ({"kind": "target", "value": "", "hours": "1", "comment": "x"}, 422, "which target"),
        ({"kind": "group", "value": "prod", "hours": "1", "comment": ""}, 422, "comment"),
    ):
        response = ui.post("/ui/silences", form)
        assert response.status_code == status, (form, response.text)
        assert words in response.text, form
    assert fake.created == []
    assert ui.api("GET", "/api/v1/audit?entity_type=silence").json()["pagination"]["total"] == 0


def test_expire_unknown_silence(ui: Ui, fake: FakeAlertmanager) -> None:
    for silence_id in ("nope", "%0C", "x%20y"):
        response = ui.post(f"/ui/silences/{silence_id}/expire", {})
        assert response.status_code == 404, (silence_id, response.text)
        assert "does not exist" in response.text
    assert fake.expired == []


def test_each_alert_links_its_rule_and_its_graph_at_the_external_url(
    ui: Ui, ui_app: FastAPI, fake: FakeAlertmanager
) -> None:
    template = {
        "name": "GPUHot",
        "query_template": 'DCGM_FI_DEV_GPU_TEMP{group_id="{{.group_id}}"} > {{.threshold}}',
        "default_config": {"threshold": 85},
    }
    assert ui.api("POST", "/api/v1/alert-templates", json=template).status_code == 201
    created = ui.api(
        "POST", "/api/v1/alert-rules", json={"template_id": "GPUHot", "group_id": "prod"}
    )
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    app_services(ui_app).settings.prometheus_external_url = "https://prom.example.com"
    fake.alerts.clear()
    fake.fire(
        alertname="GPUHot_Production",
        severity="critical",
        instance="gpu-node-01",
        group="production",
        group_id="prod",
        aami_template="GPUHot",
        aami_scope="group",
    )
    fake.alerts[0]["generatorURL"] = "http://vm:39090/graph?g0.expr=up%3E0&g0.tab=1"
    fake.fire(alertname="NotOurs", severity="warning", instance="gpu-node-02")
    fake.alerts[1]["generatorURL"] = "javascript:alert(1)//graph"
    page = ui.get("/ui/alerts").text
    assert f'href="/ui/rules/{rule_id}"' in page
    assert 'href="https://prom.example.com/graph?g0.expr=up%3E0&amp;g0.tab=1"' in page
    assert "vm:39090" not in page
    assert "javascript:" not in page
    assert page.count(">rule</a>") == 1


def _sections(page: str) -> list[str]:
    return re.findall(r'<section class="alert-section" data-group="([^"]*)"', page)


def test_grouping_by_name_group_and_severity(ui: Ui, fake: FakeAlertmanager) -> None:
    fake.fire(
        alertname="GPUHot_Production",
        severity="critical",
        instance="gpu-node-03",
        group="production",
        group_id="prod",
    )
    page = ui.get("/ui/alerts").text
    assert _sections(page) == [""]  # one list
    by_name = ui.get("/ui/alerts?by=alertname").text
    assert _sections(by_name) == ["DiskLow_Development", "GPUHot_Production"]
    assert "2 alerts: 2 firing, 0 silenced, 0 inhibited" in by_name
    by_group = ui.get("/ui/alerts?by=group").text
    assert _sections(by_group) == ["development", "production"]
    by_severity = ui.get("/ui/alerts?by=severity").text
    assert _sections(by_severity) == ["0critical", "1warning"]  # critical first
    assert "selected>severity</option>" in by_severity.replace('value="severity" ', "")
    # an unknown grouping is no grouping
    assert _sections(ui.get("/ui/alerts?by=__class__").text) == [""]


def test_every_label_and_receiver_is_shown(ui: Ui, fake: FakeAlertmanager) -> None:
    fake.alerts.clear()
    fake.fire(
        alertname="GPUHot_Production",
        severity="critical",
        instance="gpu-node-01",
        group="production",
        group_id="prod",
        UUID="GPU-1234",
        receivers=("aami-history", "oncall", "production-team"),
    )
    page = ui.get("/ui/alerts").text
    for label in ("alertname=GPUHot_Production", "UUID=GPU-1234", "group_id=prod"):
        assert f'<span class="tag">{label}</span>' in page, label
    receivers = re.search(r'<td class="receivers">(.*?)</td>', page, re.S)
    assert receivers is not None
    assert re.findall(r'<span class="tag">([^<]*)</span>', receivers.group(1)) == [
        "aami-history",
        "oncall",
        "production-team",
    ]
    assert 'href="/ui/alert-history?alertname=GPUHot_Production&amp;target=gpu-node-01"' in page


def test_silenced_and_inhibited_filters_use_alertmanagers_own(
    ui: Ui, fake: FakeAlertmanager
) -> None:
    fake.fire(
        alertname="Muted",
        severity="warning",
        instance="gpu-node-01",
        silenced_by=["00000000-0000-4000-8000-000000000009"],
    )
    fake.fire(alertname="Inhibited", severity="info", instance="gpu-node-01", inhibited_by=["fp0"])
    everything = ui.get("/ui/alerts").text
    for name in ("GPUHot_Production", "DiskLow_Development", "Muted", "Inhibited"):
        assert name in everything
    assert 'title="silenced by 00000000-0000-4000-8000-000000000009">silenced<' in everything
    assert 'title="inhibited by fp0">inhibited<' in everything

    only_muted = ui.get("/ui/alerts?filtered=1&show=silenced").text
    assert fake.queries[-1] | {"filter": ""} == {
        "active": "false",
        "silenced": "true",
        "inhibited": "false",
        "filter": "",
    }
    assert "Muted" in only_muted
    for name in ("GPUHot_Production", "Inhibited"):
        assert name not in only_muted
    assert 'value="silenced" checked' in only_muted
    assert 'value="active">' in only_muted  # not ticked

    not_muted = ui.get("/ui/alerts?filtered=1&show=active&show=inhibited").text
    assert "Inhibited" in not_muted
    assert "GPUHot_Production" in not_muted
    assert "Muted" not in not_muted

    # with a group filter too: Alertmanager gets both
    ui.get("/ui/alerts?filtered=1&show=active&group=prod&by=severity")
    assert fake.queries[-1]["filter"] == 'group_id="prod"'
    assert fake.queries[-1]["silenced"] == "false"

    # nothing ticked: nothing shown, and the page says so
    none = ui.get("/ui/alerts?filtered=1").text
    assert "No alert matches." in none
    # a first visit shows every state
    assert fake.queries[0]["silenced"] == fake.queries[0]["inhibited"] == "true"


def test_auto_refresh_is_a_script_file_and_keeps_the_filters(
    ui: Ui, fake: FakeAlertmanager
) -> None:
    page = ui.get("/ui/alerts?filtered=1&show=active&refresh=5").text
    assert re.search(r'<script src="/ui/static/alerts\.js\?v=\w+" defer></script>', page)
    assert "<script>" not in page  # the CSP allows scripts from files only
    assert 'id="auto-refresh-control" hidden' in page  # shown by the script
    assert 'data-refresh="5"' in page
    assert '<input type="hidden" name="refresh" value="5">' in page
    script = ui.get("/ui/static/alerts.js")
    assert script.status_code == 200
    assert "window.location.href" in script.text  # the same URL: the same filters
    assert ui.get("/ui/alerts?refresh=1").text.count('data-refresh="5"') == 1  # at least 5 s


def test_alert_history_page(ui: Ui, fake: FakeAlertmanager) -> None:
    now = datetime.now(UTC)
    for body in (
        payload(),
        one_alert("resolved", datetime.fromisoformat("2026-12-06T05:00:00.123456+00:00"), now),
        one_alert("firing", now + timedelta(seconds=1)),
    ):
        response = ui.api("POST", "/api/v1/alert-history/webhook", json=body)
        assert response.status_code == 200, response.text
    page = ui.get("/ui/alert-history").text
    assert page.count('class="transition"') == 4
    assert re.search(r'data-fingerprint="2a2b4f1c3d5e6f70">.*?<td class="flaps">1</td>', page, re.S)
    assert "No history token" in page  # this app has none configured
    only = ui.get("/ui/alert-history?target=gpu-node-02").text
    assert only.count('class="transition"') == 1
    assert "NodeDiskSpaceLow" in only
    resolved = ui.get("/ui/alert-history?status=resolved&group=prod").text
    assert resolved.count('data-status="resolved"') == 1
    assert 'data-status="firing"' not in resolved
    assert ui.get("/ui/alert-history?page=abc").status_code == 200
    assert "Alert history" in ui.get("/ui/alerts").text
    target = ui.get("/ui/targets/gpu-node-01").text
    assert 'href="/ui/alert-history?target=gpu-node-01"' in target
    group = ui.get("/ui/groups/prod").text
    assert 'href="/ui/alert-history?group=prod"' in group


def test_each_alert_row_opens_the_silence_editor_with_its_matchers(
    ui: Ui, fake: FakeAlertmanager
) -> None:
    page = html.unescape(ui.get("/ui/alerts").text)
    links = re.findall(r'href="(/ui/silences/new\?[^"]+)"[^>]*>Silence with matchers', page)
    assert len(links) == 2
    hot = next(link for link in links if "GPUHot" in unquote(link))
    assert parse_qs(urlsplit(hot).query)["matcher"] == [
        'alertname="GPUHot_Production"',
        'instance="gpu-node-01"',
    ]
    editor = html.unescape(ui.get(hot).text)
    values = re.findall(r'name="m\d+_(?:name|value)" type="text" value="([^"]*)"', editor)
    assert values[:4] == ["alertname", "GPUHot_Production", "instance", "gpu-node-01"]
    # The preview lists the one alert those matchers select, and not the other.
    said = re.search(r"Would mute[^<]*", editor)
    assert said is not None, editor[-3000:]
    assert said.group(0) == "Would mute 1 of the 2 alerts Alertmanager holds now."
    assert "DiskLow_Development" not in editor
