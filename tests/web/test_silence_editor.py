"""The silence matcher editor (/ui/silences/new) over the real silence service, with an
in-memory Alertmanager behind the client; the browser test checks it against the real one."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.schemas import Matcher
from aami.web.pages_silences import Row, parse_matcher_text
from tests.support.api import app_services
from tests.web.conftest import Ui
from tests.web.test_alerts import FakeAlertmanager

# name, operator, quoted value: the filter syntax the silence service sends.
_FILTER = re.compile(r'^(\w+)(=~|!~|!=|=)"(.*)"$')


class MatchingAlertmanager(FakeAlertmanager):
    """The fake, with every matcher operator in /api/v2/alerts filters, and a 400 for a
    regex that does not compile (the real Alertmanager is RE2; these tests use plain ones)."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/v2/alerts":
            return super().handle(request)
        self.filters.append(request.url.params.get_list("filter"))
        wanted = []
        for text in request.url.params.get_list("filter"):
            found = _FILTER.match(text)
            assert found, text
            name, op, value = found.groups()
            value = value.replace('\\"', '"').replace("\\\\", "\\")
            if "~" in op:
                try:
                    re.compile(value)
                except re.error as exc:
                    return httpx.Response(400, json=f"error parsing regexp: {exc}")
            wanted.append((name, op, value))
        return httpx.Response(200, json=[a for a in self.alerts if _matches(a, wanted)])

    def __init__(self) -> None:
        super().__init__()
        self.filters: list[list[str]] = []


def _matches(alert: dict[str, Any], wanted: list[tuple[str, str, str]]) -> bool:
    for name, op, value in wanted:
        have = alert["labels"].get(name, "")
        hit = re.fullmatch(value, have) is not None if "~" in op else have == value
        if hit != op.startswith("="):
            return False
    return True


@pytest.fixture
def am(ui_app: FastAPI, ui: Ui) -> MatchingAlertmanager:
    fake = MatchingAlertmanager()
    app_services(ui_app).alertmanager = AlertmanagerClient(
        "http://alertmanager.test", transport=httpx.MockTransport(fake.handle)
    )
    fake.fire(alertname="GPUHot", severity="critical", instance="gpu-node-01", group_id="prod")
    fake.fire(alertname="GPUHot", severity="critical", instance="gpu-node-02", group_id="prod")
    fake.fire(alertname="DiskLow", severity="warning", instance="gpu-node-01", group_id="prod")
    fake.fire(alertname="DiskLow", severity="warning", instance="gpu-node-03", group_id="dev")
    return fake


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", page))


def _preview_rows(page: str) -> list[str]:
    """The alerts the preview table lists, as "alertname instance"."""
    table = re.search(r'<table id="preview-alerts">(.*?)</table>', page, re.S)
    if table is None:
        return []
    body = html.unescape(table.group(1))
    rows = re.findall(r'<tr>\s*<td>([^<]*)</td>.*?instance="([^"]*)"', body, re.S)
    return [f"{name} {instance}" for name, instance in rows]


def _error(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="e-{field}">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else ""


def _rows(*rows: tuple[str, str, str], blank: int = 1) -> dict[str, str]:
    form: dict[str, str] = {}
    for index, (name, op, value) in enumerate([*rows, *[("", "=", "")] * blank]):
        form.update({f"m{index}_name": name, f"m{index}_op": op, f"m{index}_value": value})
    return form


BASE = {"duration": "2h", "comment": "swapping the GPU", "created_by": "ana"}


def test_prefill_from_the_query_string_previews_at_once(ui: Ui, am: MatchingAlertmanager) -> None:
    page = ui.get(
        "/ui/silences/new?matcher=instance%3Dgpu-node-01&matcher=alertname%3D%22GPUHot%22"
        "&comment=reboot&expire_on_resolve=1"
    )
    assert page.status_code == 200, page.text
    assert 'name="m0_name" type="text" value="instance"' in page.text
    assert 'name="m0_value" type="text" value="gpu-node-01"' in page.text
    assert 'name="m1_name" type="text" value="alertname"' in page.text
    assert 'name="m1_value" type="text" value="GPUHot"' in page.text  # the quotes are read
    assert 'name="m2_name" type="text" value=""' in page.text  # and a blank row
    assert 'name="comment" type="text" value="reboot"' in page.text
    assert re.search(r'name="expire_on_resolve" type="checkbox"[^>]* checked', page.text)
    assert _preview_rows(page.text) == ["GPUHot gpu-node-01"]
    assert "Would mute 1 of the 4 alerts Alertmanager holds now." in _text(page.text)
    assert "Within the guardrails" in page.text
    assert am.created == []


def test_the_editor_without_matchers_previews_nothing(ui: Ui, am: MatchingAlertmanager) -> None:
    page = ui.get("/ui/silences/new")
    assert page.status_code == 200
    assert 'id="preview"' not in page.text
    assert page.text.count('class="matcher-row"') == 3
    assert 'name="duration" type="text" value="2h"' in page.text
    assert am.filters == []


def test_preview_lists_exactly_what_the_matchers_select(ui: Ui, am: MatchingAlertmanager) -> None:
    form = _rows(
        ("group_id", "=", "prod"), ("instance", "!=", "gpu-node-02"), ("alertname", "!~", "Disk.*")
    )
    form |= BASE
    page = ui.post("/ui/silences/new", {**form, "action": "preview"})
    assert page.status_code == 200, page.text
    assert _preview_rows(page.text) == ["GPUHot gpu-node-01"]
    assert am.filters[-1] == ['group_id="prod"', 'instance!="gpu-node-02"', 'alertname!~"Disk.*"']
    assert "Would mute 1 of the 4 alerts" in _text(page.text)
    assert am.created == []


def test_rows_are_created_as_matchers_with_expire_on_resolve(
    ui: Ui, am: MatchingAlertmanager
) -> None:
    form = _rows(("instance", "=", "gpu-node-01"), ("alertname", "=~", "GPU.*"), blank=2)
    response = ui.post(
        "/ui/silences/new",
        {**form, **BASE, "duration": "30m", "expire_on_resolve": "on", "action": "create"},
    )
    assert response.status_code == 303, _text(response.text)
    assert response.headers["location"] == "/ui/silences?notice=silenced"
    [created] = am.created
    assert created["matchers"] == [
        {"name": "instance", "value": "gpu-node-01", "isRegex": False, "isEqual": True},
        {"name": "alertname", "value": "GPU.*", "isRegex": True, "isEqual": True},
    ]
    assert created["createdBy"] == "ana"
    assert created["comment"] == "swapping the GPU"
    [silence] = ui.api("GET", "/api/v1/silences").json()
    assert silence["expire_on_resolve"] is True
    listed = _text(ui.get("/ui/silences").text)
    assert 'instance="gpu-node-01"' in listed
    assert 'alertname=~"GPU.*"' in listed
    assert "ends when its alerts resolve" in listed
    assert "ana" in listed


def test_without_the_box_the_silence_does_not_expire_on_resolve(
    ui: Ui, am: MatchingAlertmanager
) -> None:
    form = _rows(("instance", "=", "gpu-node-03"))
    response = ui.post("/ui/silences/new", {**form, **BASE, "action": "create"})
    assert response.status_code == 303, _text(response.text)
    [silence] = ui.api("GET", "/api/v1/silences").json()
    assert silence["expire_on_resolve"] is False
    assert "ends when its alerts resolve" not in ui.get("/ui/silences").text


def test_every_error_is_shown_at_once_and_nothing_is_created(
    ui: Ui, am: MatchingAlertmanager
) -> None:
    form = _rows(
        ("1bad", "=", "x"),
        ("alertname", "=~", "(GPU"),
        ("instance", "=~", ".*"),
        ("severity", "~~", "critical"),
        ("", "=", "lonely"),
    )
    response = ui.post(
        "/ui/silences/new",
        {**form, "duration": "3d", "comment": "", "created_by": "ana", "action": "create"},
    )
    assert response.status_code == 422
    page = response.text
    assert "No silence created" in page
    assert "is not a label name" in _error(page, "m0_name")
    assert "is not a regular expression Alertmanager accepts" in _error(page, "m1_value")
    assert "missing )" in _error(page, "m1_value")  # Alertmanager's own words
    assert "matches every value" in _error(page, "m2_value")
    assert "choose one of" in _error(page, "m3_op")
    assert "label's name" in _error(page, "m4_name")
    assert "at most 1d" in _error(page, "duration")
    assert "this one lasts 3d" in _error(page, "duration")
    assert "say why" in _error(page, "comment")
    assert 'value="(GPU"' in page  # what was typed stays
    assert am.created == []
    assert ui.api("GET", "/api/v1/audit?entity_type=silence").json()["pagination"]["total"] == 0


def test_bad_durations_and_end_times(ui: Ui, am: MatchingAlertmanager) -> None:
    form = {**_rows(("instance", "=", "gpu-node-01")), **BASE, "action": "create"}
    for fields, field, words in (
        ({"duration": "2 hours"}, "duration", "is not a duration such as"),
        ({"duration": ""}, "duration", "is not a duration"),
        ({"ends_at": "tomorrow"}, "ends_at", "is not a date and time"),
        ({"ends_at": "2001-01-01T10:00"}, "ends_at", "must be after"),
    ):
        response = ui.post("/ui/silences/new", {**form, **fields})
        assert response.status_code == 422, fields
        assert words in _error(response.text, field), (fields, _error(response.text, field))
    assert am.created == []


def test_an_end_time_replaces_the_duration(ui: Ui, am: MatchingAlertmanager) -> None:
    form = {**_rows(("instance", "=", "gpu-node-01")), **BASE, "action": "create"}
    ends = "2099-01-01T10:00"
    response = ui.post("/ui/silences/new", {**form, "ends_at": ends})
    # a silence ending in 2099 is longer than AAMI_SILENCE_MAX_DURATION: the end time was read
    assert response.status_code == 422
    assert "at most 1d" in _error(response.text, "ends_at")
    assert _error(response.text, "duration") == ""


def test_no_matcher_at_all(ui: Ui, am: MatchingAlertmanager) -> None:
    response = ui.post("/ui/silences/new", {**_rows(blank=3), **BASE, "action": "create"})
    assert response.status_code == 422
    assert "give at least one matcher" in _error(response.text, "matchers")
    assert am.created == []


def test_the_share_guard_verdict_before_creating(ui: Ui, am: MatchingAlertmanager) -> None:
    form = {**_rows(("group_id", "=", "prod")), **BASE}
    page = ui.post("/ui/silences/new", {**form, "action": "preview"})
    assert page.status_code == 200
    assert len(_preview_rows(page.text)) == 3
    verdict = _text(page.text)
    assert "Would be refused: this silence would mute 3 of the 4 firing alerts" in verdict
    refused = ui.post("/ui/silences/new", {**form, "action": "create"})
    assert refused.status_code == 422
    assert "more than 50%" in _error(refused.text, "matchers")
    assert am.created == []


def test_a_silence_needs_an_equality_matcher(ui: Ui, am: MatchingAlertmanager) -> None:
    form = {**_rows(("alertname", "=~", "GPU.*")), **BASE}
    page = ui.post("/ui/silences/new", {**form, "action": "preview"})
    assert "Would be refused: matchers: a silence needs at least one equality matcher" in _text(
        page.text
    )
    refused = ui.post("/ui/silences/new", {**form, "action": "create"})
    assert refused.status_code == 422
    assert "equality matcher" in _error(refused.text, "matchers")
    assert am.created == []


def test_rows_are_added_and_removed_without_javascript(ui: Ui, am: MatchingAlertmanager) -> None:
    form = {**_rows(("instance", "=", "gpu-node-01"), ("alertname", "=", "GPUHot")), **BASE}
    added = ui.post("/ui/silences/new", {**form, "action": "add"})
    assert added.status_code == 200
    assert added.text.count('class="matcher-row"') == 4
    assert 'name="m3_name"' in added.text
    assert 'name="comment" type="text" value="swapping the GPU"' in added.text
    removed = ui.post("/ui/silences/new", {**form, "remove": "0"})
    assert removed.status_code == 200
    assert 'name="m0_name" type="text" value="alertname"' in removed.text
    assert 'value="gpu-node-01"' not in removed.text
    assert am.created == []
    assert am.filters == []


def test_the_list_links_the_editor_and_the_quick_form_stays(
    ui: Ui, am: MatchingAlertmanager
) -> None:
    page = ui.get("/ui/silences").text
    assert 'href="/ui/silences/new"' in page
    assert 'name="kind"' in page


def test_an_unreachable_alertmanager_is_said_and_nothing_is_created(ui: Ui) -> None:
    form = {**_rows(("instance", "=", "gpu-node-01")), **BASE}
    for action in ("preview", "create"):
        response = ui.post("/ui/silences/new", {**form, "action": action})
        assert response.status_code == 503, action
        assert "No silence created" in response.text
        assert "does not answer" in response.text
    assert ui.api("GET", "/api/v1/audit?entity_type=silence").json()["pagination"]["total"] == 0


@pytest.mark.parametrize(
    ("text", "row"),
    [
        ("instance=gpu-node-01", Row("instance", "=", "gpu-node-01")),
        ('alertname=~"GPU.*"', Row("alertname", "=~", "GPU.*")),
        (' gpu != "0" ', Row("gpu", "!=", "0")),
        ('summary!~"say \\"hi\\""', Row("summary", "!~", 'say "hi"')),
        ("job=a=b", Row("job", "=", "a=b")),
        ("instance", Row("instance", "=", "")),
    ],
)
def test_matchers_in_a_link_are_read(text: str, row: Row) -> None:
    assert parse_matcher_text(text) == row


def test_the_editor_needs_a_login_and_the_form_token(ui_app: FastAPI, ui: Ui) -> None:
    link = "/ui/silences/new?matcher=instance%3Dgpu-node-01"
    with TestClient(ui_app, follow_redirects=False) as anonymous:
        response = anonymous.get(link)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=" + quote(link, safe="/")
    form = {**_rows(("instance", "=", "gpu-node-01")), **BASE, "action": "create"}
    assert ui.post("/ui/silences/new", form, csrf=False).status_code == 403


@pytest.mark.parametrize("value", ["gpu-node-01", 'say "hi"', "C:\\temp\\", "a=b!=c", ""])
def test_a_link_made_with_the_filter_syntax_reads_back(value: str) -> None:
    for op, (is_regex, is_equal) in {
        "=": (False, True),
        "!=": (False, False),
        "=~": (True, True),
        "!~": (True, False),
    }.items():
        text = Matcher(name="summary", value=value, is_regex=is_regex, is_equal=is_equal).promql()
        assert parse_matcher_text(text) == Row("summary", op, value), text
