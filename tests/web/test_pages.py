"""Every page over the real services, on SQLite and PostgreSQL, with Prometheus and
Alertmanager unreachable (the settings point them at 127.0.0.1:1)."""

from __future__ import annotations

import hashlib
import html
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import TOKEN
from tests.support.api import app_services
from tests.web.conftest import Ui, csrf_of, login

PAGES = [
    "/ui/",
    "/ui/groups",
    "/ui/groups?q=x",
    "/ui/groups/new",
    "/ui/targets",
    "/ui/targets?q=x&status=active",
    "/ui/targets/new",
    "/ui/alert-templates",
    "/ui/alert-templates/new",
    "/ui/rules",
    "/ui/rules?group=global",
    "/ui/rules/new",
    "/ui/scripts",
    "/ui/scripts/new",
    "/ui/policies",
    "/ui/policies/new",
    "/ui/publishing",
    "/ui/alerts",
    "/ui/silences",
    "/ui/notifications",
    "/ui/notifications?labels=severity%3Dcritical",
    "/ui/notifications/channels/new",
    "/ui/notifications/routes/new",
    "/ui/audit",
    "/ui/audit?actor=x&entity_type=group&action=delete",
    "/ui/bootstrap-tokens",
]

TEMPLATE_FORM = {
    "name": "HighCPU",
    "query_template": 'cpu_busy{group_id="{{.group_id}}"} > {{.threshold}}',
    "default_config": "threshold=80",
    "severity": "warning",
    "for_duration": "5m",
    "annotations": "summary=CPU at {{ $value }} on {{ $labels.instance }}",
    "action": "save",
}


def _error_of(page: str, field: str) -> str:
    """The message shown next to a form field."""
    found = re.search(rf'<p class="error" id="e-{re.escape(field)}">(.*?)</p>', page, re.S)
    assert found, f"no message next to {field}"
    return html.unescape(found.group(1))


def _fleet(ui: Ui) -> None:
    """A group, a target in it, and a template, made through the forms."""
    response = ui.post("/ui/groups/new", {"id": "prod", "name": "production", "labels": "env=prod"})
    assert response.status_code == 303, response.text
    response = ui.post(
        "/ui/targets/new",
        {
            "hostname": "gpu-node-01",
            "ip_address": "10.0.0.1",
            "group_ids": "prod",
            "labels": "rack=r7",
            "status": "active",
            "node_exporter": "on",
            "node_exporter_port": "9100",
        },
    )
    assert response.status_code == 303, response.text
    response = ui.post("/ui/alert-templates/new", TEMPLATE_FORM)
    assert response.status_code == 303, response.text


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_on_an_empty_database(ui: Ui, path: str) -> None:
    response = ui.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<main" in response.text
    assert "Content-Security-Policy" in response.headers


def test_dashboard_says_what_is_unreachable(ui: Ui) -> None:
    page = ui.get("/ui/").text
    assert "Prometheus unreachable" in page
    assert "Alertmanager unreachable" in page
    assert "Alertmanager unreachable" in ui.get("/ui/alerts").text
    assert "Alertmanager unreachable" in ui.get("/ui/silences").text


def test_pages_say_when_alertmanager_support_is_missing(
    ui: Ui, ui_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_services(ui_app), "alertmanager", None)
    for path in ("/ui/", "/ui/alerts", "/ui/silences"):
        response = ui.get(path)
        assert response.status_code == 200
        assert "Alertmanager support not installed" in response.text
    _fleet(ui)
    assert "Alertmanager support not installed" in ui.get("/ui/targets/gpu-node-01").text


def test_pages_with_data_render(ui: Ui) -> None:
    _fleet(ui)
    assert (
        ui.post("/ui/rules/new", {"template_id": "HighCPU", "group_id": "prod"}).status_code == 303
    )
    rule_id = ui.api("GET", "/api/v1/alert-rules").json()["data"][0]["id"]
    target_id = ui.api("GET", "/api/v1/targets").json()["data"][0]["id"]
    for path in [
        *PAGES,
        "/ui/groups/prod",
        "/ui/groups/production",
        f"/ui/targets/{target_id}",
        "/ui/targets/gpu-node-01",
        "/ui/alert-templates/HighCPU",
        f"/ui/rules/{rule_id}",
        "/ui/rules?group=prod",
        "/ui/rules/new?template=HighCPU&group=prod",
    ]:
        response = ui.get(path)
        assert response.status_code == 200, (path, response.text)
    dashboard = ui.get("/ui/").text
    assert re.search(r'<span class="num">1</span> <span class="lbl">Groups</span>', dashboard)


def test_unknown_objects_are_404_pages(ui: Ui) -> None:
    for path in ("/ui/groups/nope", "/ui/targets/nope", "/ui/rules/nope", "/ui/no/such/page"):
        response = ui.get(path)
        assert response.status_code == 404, path
        assert "does not exist" in response.text or "no page" in response.text


# ---- login, cookie, CSRF ---------------------------------------------------------------


def test_every_page_needs_a_login(browser: TestClient) -> None:
    for path in [*PAGES, "/ui/groups/prod"]:
        response = browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=/ui/"), path
    response = browser.post("/ui/groups/new", data={"name": "x"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login"
    preview = browser.post("/ui/preview", headers={"Accept": "application/json"})
    assert preview.status_code == 401


def test_login_sets_a_strict_httponly_cookie_and_goes_on(browser: TestClient) -> None:
    response = login(browser, next_path="/ui/targets?status=active")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/targets?status=active"
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "aami_ui=" in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http here
    assert browser.get("/ui/targets").status_code == 200


def test_cookie_is_secure_over_https(ui_app: FastAPI) -> None:
    with TestClient(ui_app, base_url="https://aami.example", follow_redirects=False) as client:
        response = login(client)
        cookie = next(
            v for k, v in response.headers.multi_items() if k == "set-cookie" and "aami_ui=" in v
        )
        assert "Secure" in cookie
        assert client.get("/ui/").status_code == 200


def test_wrong_token_and_forged_cookie(browser: TestClient) -> None:
    response = login(browser, token="wrong-token-wrong-token")
    assert response.status_code == 401
    assert "not the admin token" in response.text
    assert browser.get("/ui/").status_code == 303
    browser.cookies.set("aami_ui", "eyJzaWQiOiJ4IiwiYXV0aCI6dHJ1ZSwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA")
    assert browser.get("/ui/").status_code == 303


def test_login_refuses_to_send_people_elsewhere(browser: TestClient) -> None:
    for evil in ("https://evil.example/", "//evil.example/ui/", "/api/v1/groups", "/ui\\@evil"):
        browser.cookies.clear()
        response = login(browser, next_path=evil)
        assert response.headers["location"] == "/ui/", evil


def test_login_without_its_token_is_403(browser: TestClient) -> None:
    browser.get("/ui/login")
    response = browser.post("/ui/login", data={"token": TOKEN})
    assert response.status_code == 403
    assert browser.get("/ui/").status_code == 303


def test_post_without_csrf_token_is_403_and_changes_nothing(ui: Ui) -> None:
    response = ui.post("/ui/groups/new", {"id": "g1", "name": "one"}, csrf=False)
    assert response.status_code == 403
    assert "security token" in response.text
    response = ui.post(
        "/ui/groups/new", {"id": "g1", "name": "one", "csrf_token": "0" * 64}, csrf=False
    )
    assert response.status_code == 403
    assert ui.api("GET", "/api/v1/groups").json()["pagination"]["total"] == 0
    assert ui.post("/ui/logout", {}, csrf=False).status_code == 403
    assert ui.post("/ui/publishing/regenerate", {}, csrf=False).status_code == 403


def test_csrf_token_of_another_session_is_refused(ui: Ui, ui_app: FastAPI) -> None:
    with TestClient(ui_app, follow_redirects=False) as other:
        login(other)
        stolen = csrf_of(other.get("/ui/groups/new").text)
    assert stolen != ui.csrf
    response = ui.post("/ui/groups/new", {"name": "x", "csrf_token": stolen}, csrf=False)
    assert response.status_code == 403


def test_logout(ui: Ui) -> None:
    response = ui.post("/ui/logout", {})
    assert response.status_code == 303
    assert ui.get("/ui/").status_code == 303


# ---- forms -----------------------------------------------------------------------------


def test_create_group_target_template_and_rule_through_the_forms(ui: Ui) -> None:
    _fleet(ui)
    group = ui.api("GET", "/api/v1/groups/prod").json()
    assert group["name"] == "production"
    assert group["labels"] == {"env": "prod"}
    target = ui.api("GET", "/api/v1/targets/gpu-node-01").json()
    assert target["group_ids"] == ["prod"]
    assert target["labels"] == {"rack": "r7"}
    assert [(e["type"], e["port"]) for e in target["exporters"]] == [("node_exporter", 9100)]
    template = ui.api("GET", "/api/v1/alert-templates/HighCPU").json()
    assert template["default_config"] == {"threshold": 80}
    assert template["annotations"]["summary"] == "CPU at {{ $value }} on {{ $labels.instance }}"

    response = ui.post(
        "/ui/rules/new",
        {
            "template_id": template["id"],
            "group_id": "prod",
            "config.threshold": "90",
            "enabled": "on",
        },
    )
    assert response.status_code == 303, response.text
    rules = ui.api("GET", "/api/v1/alert-rules?group_id=prod").json()["data"]
    assert len(rules) == 1
    assert rules[0]["config"] == {"threshold": 90}  # a number, as the default is
    assert rules[0]["rendered"]["expr"] == 'cpu_busy{group_id="prod"} > 90'
    assert rules[0]["enabled"] is True
    page = ui.get(response.headers["location"]).text
    assert "HighCPU_Production" in page
    assert "cpu_busy{group_id=&#34;prod&#34;} &gt; 90" in page

    detail = ui.get("/ui/targets/gpu-node-01").text
    assert "HighCPU_Production" in detail  # its effective rules
    assert "Alertmanager unreachable" in detail


def test_invalid_threshold_shows_the_message_and_creates_nothing(ui: Ui, settings: object) -> None:
    _fleet(ui)
    response = ui.post(
        "/ui/rules/new",
        {
            "template_id": "HighCPU",
            "group_id": "prod",
            "config.threshold": '80"} or vector(1) #',
            "enabled": "on",
        },
    )
    assert response.status_code == 422
    message = _error_of(response.text, "config-threshold")
    assert message.startswith("config.threshold: ")
    assert "is not a number (HighCPU.threshold: number)" in message
    # the form keeps what was typed, so it can be corrected
    assert 'value="80&#34;} or vector(1) #"' in response.text
    assert ui.api("GET", "/api/v1/alert-rules").json()["pagination"]["total"] == 0
    audit = ui.api("GET", "/api/v1/audit?entity_type=alert_rule").json()
    assert audit["pagination"]["total"] == 0


def test_invalid_update_changes_nothing(ui: Ui) -> None:
    """The service changes the rule before it renders it: the page must roll that back."""
    _fleet(ui)
    assert (
        ui.post(
            "/ui/rules/new", {"template_id": "HighCPU", "group_id": "prod", "enabled": "on"}
        ).status_code
        == 303
    )
    rule = ui.api("GET", "/api/v1/alert-rules").json()["data"][0]
    response = ui.post(
        f"/ui/rules/{rule['id']}",
        {"template_id": "HighCPU", "group_id": "prod", "config.threshold": "1 or up"},
    )
    assert response.status_code == 422
    assert "'1 or up' is not a number" in _error_of(response.text, "config-threshold")
    after = ui.api("GET", f"/api/v1/alert-rules/{rule['id']}").json()
    assert after["config"] == rule["config"] == {}
    assert after["enabled"] is True  # the unchecked box was not saved either
    assert after["updated_at"] == rule["updated_at"]


def test_missing_key_is_shown_next_to_it(ui: Ui) -> None:
    _fleet(ui)
    response = ui.post(
        "/ui/alert-templates/new",
        {"name": "DiskLow", "query_template": "disk_free < {{.limit}}", "action": "save"},
    )
    assert response.status_code == 303, response.text
    response = ui.post("/ui/rules/new", {"template_id": "DiskLow", "group_id": "prod"})
    assert response.status_code == 422
    assert "missing config key 'limit'" in _error_of(response.text, "config-limit")


def test_form_errors_keep_values_and_name_the_field(ui: Ui) -> None:
    response = ui.post("/ui/groups/new", {"id": "Bad Id", "name": "x", "labels": "nolabel"})
    assert response.status_code == 422
    assert "key=value" in _error_of(response.text, "labels")
    response = ui.post("/ui/groups/new", {"id": "Bad Id", "name": "x"})
    assert response.status_code == 422
    assert _error_of(response.text, "id")
    assert 'value="Bad Id"' in response.text
    assert ui.post("/ui/groups/new", {"id": "g", "name": "same"}).status_code == 303
    response = ui.post("/ui/groups/new", {"name": "same"})
    assert response.status_code == 409
    assert "already used" in response.text
    response = ui.post(
        "/ui/targets/new",
        {
            "hostname": "bad host",
            "ip_address": "300.1.1.1",
            "group_ids": "nope",
            "status": "active",
        },
    )
    assert response.status_code == 422
    assert "hostname" in _error_of(response.text, "hostname")
    assert "IPv4" in _error_of(response.text, "ip_address")
    assert ui.api("GET", "/api/v1/targets").json()["pagination"]["total"] == 0


def test_user_text_is_escaped(ui: Ui) -> None:
    response = ui.post("/ui/groups/new", {"id": "x", "name": "<script>alert(1)</script>"})
    assert response.status_code == 303
    page = ui.get("/ui/groups").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_group_update_filter_and_delete(ui: Ui) -> None:
    _fleet(ui)
    response = ui.post(
        "/ui/groups/prod", {"name": "production", "description": "prod GPUs", "labels": ""}
    )
    assert response.status_code == 303
    assert ui.api("GET", "/api/v1/groups/prod").json()["description"] == "prod GPUs"
    assert ui.api("GET", "/api/v1/groups/prod").json()["labels"] == {}
    assert "production" in ui.get("/ui/groups?q=GPUs").text
    assert "No group matches" in ui.get("/ui/groups?q=zzz").text

    response = ui.post("/ui/groups/prod/delete", {})
    assert response.status_code == 409
    assert "gpu-node-01" in _alert_text(response.text)
    assert ui.api("GET", "/api/v1/groups/prod").status_code == 200

    assert ui.post("/ui/groups/new", {"id": "spare", "name": "spare"}).status_code == 303
    response = ui.post("/ui/groups/spare/delete", {})
    assert response.status_code == 303
    assert ui.api("GET", "/api/v1/groups/spare").status_code == 404


def _alert_text(page: str) -> str:
    found = re.search(r'<div class="alert error" role="alert">(.*?)</div>', page, re.S)
    assert found, "no error shown"
    return html.unescape(found.group(1))


def test_target_filter_update_exporters_and_delete(ui: Ui) -> None:
    _fleet(ui)
    target_id = ui.api("GET", "/api/v1/targets/gpu-node-01").json()["id"]
    assert "gpu-node-01" in ui.get("/ui/targets?q=r7").text
    assert "No target matches" in ui.get("/ui/targets?q=nothing-like-it").text
    assert "gpu-node-01" in ui.get("/ui/targets?group=prod").text
    response = ui.post(
        f"/ui/targets/{target_id}",
        {
            "hostname": "gpu-node-01",
            "ip_address": "10.0.0.9",
            "group_ids": "production",
            "labels": "rack=r8",
            "status": "maintenance",
        },
    )
    assert response.status_code == 303, response.text
    target = ui.api("GET", f"/api/v1/targets/{target_id}").json()
    assert (target["ip_address"], target["status"], target["labels"]) == (
        "10.0.0.9",
        "maintenance",
        {"rack": "r8"},
    )
    response = ui.post(
        f"/ui/targets/{target_id}/exporters",
        {"type": "dcgm_exporter", "port": "", "metrics_path": "/metrics"},
    )
    assert response.status_code == 303
    assert response.headers["location"].endswith("?notice=created#exporters")
    response = ui.post(
        f"/ui/targets/{target_id}/exporters",
        {"type": "custom", "port": "9100", "metrics_path": "/metrics"},
    )
    assert response.status_code == 409
    assert "9100" in response.text
    exporters = ui.api("GET", f"/api/v1/targets/{target_id}").json()["exporters"]
    assert [e["port"] for e in exporters] == [9100, 9400]
    dcgm = next(e for e in exporters if e["port"] == 9400)
    assert ui.post(f"/ui/exporters/{dcgm['id']}/toggle", {}).status_code == 303
    assert ui.api("GET", f"/api/v1/exporters/{dcgm['id']}").json()["enabled"] is False
    assert ui.post(f"/ui/exporters/{dcgm['id']}/delete", {}).status_code == 303
    assert ui.post(f"/ui/targets/{target_id}/delete", {}).status_code == 303
    assert ui.api("GET", f"/api/v1/targets/{target_id}").status_code == 404


def test_rule_enable_disable_delete(ui: Ui) -> None:
    _fleet(ui)
    ui.post("/ui/rules/new", {"template_id": "HighCPU", "group_id": "prod", "enabled": "on"})
    rule_id = ui.api("GET", "/api/v1/alert-rules").json()["data"][0]["id"]
    response = ui.post(f"/ui/rules/{rule_id}/disable", {"next": "/ui/rules?group=prod"})
    assert response.headers["location"] == "/ui/rules?group=prod&notice=disabled"
    assert ui.api("GET", f"/api/v1/alert-rules/{rule_id}").json()["enabled"] is False
    assert ui.post(f"/ui/rules/{rule_id}/enable", {}).status_code == 303
    assert ui.api("GET", f"/api/v1/alert-rules/{rule_id}").json()["enabled"] is True
    assert "HighCPU_Production" in ui.get("/ui/rules?group=prod").text
    response = ui.post(f"/ui/rules/{rule_id}/delete", {})
    assert response.status_code == 303
    assert ui.api("GET", f"/api/v1/alert-rules/{rule_id}").status_code == 404


def test_template_edit_and_delete_in_use(ui: Ui) -> None:
    _fleet(ui)
    ui.post("/ui/rules/new", {"template_id": "HighCPU", "group_id": "prod", "enabled": "on"})
    form = {**TEMPLATE_FORM, "query_template": 'cpu_busy{x="{{.missing_key}}"} > {{.threshold}}'}
    response = ui.post("/ui/alert-templates/HighCPU", form)
    assert response.status_code == 422
    message = _alert_text(response.text)
    assert "breaks the rule" in message
    assert "missing_key" in message
    template = ui.api("GET", "/api/v1/alert-templates/HighCPU").json()
    assert template["query_template"] == TEMPLATE_FORM["query_template"]
    # A template with rules shows them before and after first; Confirm saves.
    response = ui.post("/ui/alert-templates/HighCPU", {**TEMPLATE_FORM, "severity": "critical"})
    assert response.status_code == 200
    assert "Save template HighCPU?" in response.text
    assert ui.api("GET", "/api/v1/alert-templates/HighCPU").json()["severity"] == "warning"
    confirmed = {**TEMPLATE_FORM, "severity": "critical", "confirmed": "1"}
    response = ui.post("/ui/alert-templates/HighCPU", confirmed)
    assert response.status_code == 303
    assert ui.api("GET", "/api/v1/alert-templates/HighCPU").json()["severity"] == "critical"
    response = ui.post("/ui/alert-templates/HighCPU/delete", {})
    assert response.status_code == 409
    assert "is used by 1 rule" in _alert_text(response.text)


# ---- preview ---------------------------------------------------------------------------


def test_preview_renders_for_a_group_and_says_prometheus_is_unreachable(ui: Ui) -> None:
    _fleet(ui)
    response = ui.post("/ui/preview", {**TEMPLATE_FORM, "preview_group": "prod"})
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["error"] is None
    assert body["rule"]["alert"] == "HighCPU_Production"
    assert body["rule"]["expr"] == 'cpu_busy{group_id="prod"} > 80'
    assert "Prometheus unreachable" in body["matches"]["error"]
    glob = ui.post("/ui/preview", {**TEMPLATE_FORM, "preview_group": ""}).json()
    assert glob["valid"] is True
    assert "global rule" in glob["error"]  # {{.group_id}} cannot be filled without a group
    bad = ui.post(
        "/ui/preview", {**TEMPLATE_FORM, "query_template": "cpu_busy >", "preview_group": "prod"}
    ).json()
    assert bad["valid"] is False
    assert "not valid PromQL" in bad["error"]
    no_default = ui.post(
        "/ui/preview",
        {**TEMPLATE_FORM, "default_config": "{}", "preview_group": "prod"},
    ).json()
    assert no_default["valid"] is True
    assert "threshold" in no_default["note"]
    assert no_default["matches"] is None
    json_error = ui.post("/ui/preview", {**TEMPLATE_FORM, "default_config": "{nope"}).json()
    assert "default_config" in json_error["error"]
    assert ui.api("GET", "/api/v1/alert-templates").json()["pagination"]["total"] == 1


def test_preview_button_works_without_javascript(ui: Ui) -> None:
    _fleet(ui)
    response = ui.post(
        "/ui/alert-templates/new",
        {**TEMPLATE_FORM, "name": "Other", "action": "preview", "preview_group": "prod"},
    )
    assert response.status_code == 200
    assert "Other_Production" in response.text
    assert "Prometheus unreachable" in response.text
    names = [t["name"] for t in ui.api("GET", "/api/v1/alert-templates").json()["data"]]
    assert names == ["HighCPU"]  # a preview saves nothing


# ---- checks ----------------------------------------------------------------------------


def test_script_template_and_policies(ui: Ui) -> None:
    _fleet(ui)
    script = '#!/bin/bash\necho "aami_mount_ok 1"\n'
    response = ui.post(
        "/ui/scripts/new",
        {
            "name": "mount-check",
            "language": "bash",
            "script_type": "mount",
            "script_content": script.replace("\n", "\r\n"),
            "default_config": "paths=/data",
            "version": "1.0.0",
            "timeout_seconds": "20",
        },
    )
    assert response.status_code == 303, response.text
    stored = ui.api("GET", "/api/v1/script-templates/mount-check").json()
    assert stored["script_content"] == script  # the browser's CRLF is not what nodes run
    page = ui.get(response.headers["location"]).text
    assert hashlib.sha256(script.encode()).hexdigest() in page

    response = ui.post(
        "/ui/policies/new",
        {
            "template_id": stored["id"],
            "scope": "group",
            "group_id": "prod",
            "config": "paths=/mnt",
            "priority": "100",
            "is_active": "on",
        },
    )
    assert response.status_code == 303, response.text
    response = ui.post(
        "/ui/policies/new",
        {
            "template_id": stored["id"],
            "scope": "target",
            "target_id": "",
            "config": "{}",
            "priority": "5",
            "is_active": "on",
        },
    )
    assert response.status_code == 422
    assert "needs a target" in _error_of(response.text, "target_id")
    # Config is key=value lines, like labels; every field's error is shown at once.
    response = ui.post(
        "/ui/policies/new",
        {
            "template_id": stored["id"],
            "scope": "group",
            "group_id": "prod",
            "config": "paths\nretries=1\nretries=2",
            "priority": "soon",
            "is_active": "on",
        },
    )
    assert response.status_code == 422
    assert _error_of(response.text, "config") == (
        "line 1: 'paths' is not key=value; line 3: 'retries' is given twice"
    )
    assert _error_of(response.text, "priority")
    listing = ui.get("/ui/policies").text
    assert "mount-check" in listing
    detail = ui.get("/ui/targets/gpu-node-01").text
    assert "paths=/mnt" in detail  # the explain view: the group policy's value
    policy_id = ui.api("GET", "/api/v1/script-policies").json()["data"][0]["id"]
    assert ">paths=/mnt</textarea>" in ui.get(f"/ui/policies/{policy_id}").text
    response = ui.post(f"/ui/policies/{policy_id}", {"config": "{}", "priority": "7"})
    assert response.status_code == 303
    policy = ui.api("GET", f"/api/v1/script-policies/{policy_id}").json()
    assert (policy["priority"], policy["is_active"]) == (7, False)
    response = ui.post("/ui/scripts/mount-check/delete", {})
    assert response.status_code == 409
    assert ui.post(f"/ui/policies/{policy_id}/delete", {}).status_code == 303
    assert ui.post("/ui/scripts/mount-check/delete", {}).status_code == 303


# ---- publishing ------------------------------------------------------------------------


def test_regenerate_shows_the_rule_file(ui: Ui) -> None:
    _fleet(ui)
    ui.post("/ui/rules/new", {"template_id": "HighCPU", "group_id": "prod", "enabled": "on"})
    response = ui.post("/ui/publishing/regenerate", {})
    assert response.status_code == 200
    assert "Regenerated" in response.text
    page = ui.get("/ui/publishing").text
    assert "group-prod.yml" in page
    assert "regenerate" in page  # the history
    content = ui.get("/ui/publishing/files/group-prod.yml")
    assert content.status_code == 200
    assert "HighCPU_Production" in content.text
    assert ui.get("/ui/publishing/files/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert ui.get("/ui/publishing/files/nope.yml").status_code == 404


def test_input_bounds_reach_the_browser_as_attributes(ui: Ui) -> None:
    """A number field's bounds are attributes the browser enforces, not escaped text."""
    tokens = ui.get("/ui/bootstrap-tokens").text
    assert re.search(r'<input id="[^"]*" name="max_uses" type="number"[^>]* min="1">', tokens)
    target_form = ui.get("/ui/targets/new").text
    assert 'name="node_exporter_port" type="number"' in target_form
    assert 'min="1" max="65535"' in target_form
    assert "&#34;" not in target_form
