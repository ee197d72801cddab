"""The Notifications pages (channels with write-only secrets, routes, the route tester), the
audit trail page and the bootstrap tokens page, through their forms."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aami.web.forms import FieldError
from aami.web.pages_notifications import parse_matchers, parse_settings
from tests.web.conftest import Ui

SECRET = "xoxb-very-secret-webhook-bearer-1234"


def _error_of(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="e-{re.escape(field)}">(.*?)</p>', page, re.S)
    assert found, f"no message next to {field}"
    return html.unescape(found.group(1))


def _channel(ui: Ui, name: str = "ml-team", **extra: str) -> str:
    """Create a webhook channel through the form; return its id."""
    response = ui.post(
        "/ui/notifications/channels/new",
        {
            "name": name,
            "type": "webhook",
            "settings": "url=http://127.0.0.1:9/hook\nsend_resolved=false",
            **extra,
        },
    )
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location.split("/")[-1].split("?")[0]


def _all_pages_text(ui: Ui, channel_id: str) -> str:
    pages = [
        ui.get("/ui/notifications"),
        ui.get(f"/ui/notifications/channels/{channel_id}"),
        ui.get("/ui/audit"),
    ]
    for response in pages:
        assert response.status_code == 200, response.text
    return "".join(r.text for r in pages)


# ---- channels ---------------------------------------------------------------------------


def test_channel_crud_never_echoes_the_secret(ui: Ui) -> None:
    channel_id = _channel(ui, secret=SECRET)
    stored = ui.api("GET", f"/api/v1/notification-channels/{channel_id}").json()
    assert stored["has_secret"] is True
    assert stored["settings"] == {"url": "http://127.0.0.1:9/hook", "send_resolved": False}
    text = _all_pages_text(ui, channel_id)
    assert SECRET not in text
    detail = ui.get(f"/ui/notifications/channels/{channel_id}").text
    assert 'id="secret-state"' in detail
    assert re.search(r'id="secret-state">Secret: <span class="status ok">set</span>', detail)
    assert 'name="secret" type="password" value=""' in detail

    # An edit that is refused comes back with its errors, and still without the secret.
    refused = ui.post(
        f"/ui/notifications/channels/{channel_id}",
        {"settings": "url=ftp://nowhere", "secret": "a-new-secret-typed-in-error"},
    )
    assert refused.status_code == 422
    assert "http://" in _error_of(refused.text, "settings")
    assert "a-new-secret-typed-in-error" not in refused.text
    assert SECRET not in refused.text

    # Saving settings with the secret field empty keeps the secret.
    saved = ui.post(
        f"/ui/notifications/channels/{channel_id}", {"settings": "url=http://127.0.0.1:9/v2"}
    )
    assert saved.status_code == 303, saved.text
    stored = ui.api("GET", f"/api/v1/notification-channels/{channel_id}").json()
    assert stored["settings"] == {"url": "http://127.0.0.1:9/v2"}
    assert stored["has_secret"] is True

    # Replacing it, then removing it.
    replaced = ui.post(
        f"/ui/notifications/channels/{channel_id}",
        {"settings": "url=http://127.0.0.1:9/v2", "secret": "replacement-secret-5678"},
    )
    assert replaced.status_code == 303
    assert "replacement-secret-5678" not in _all_pages_text(ui, channel_id)
    removed = ui.post(
        f"/ui/notifications/channels/{channel_id}",
        {"settings": "url=http://127.0.0.1:9/v2", "remove_secret": "on"},
    )
    assert removed.status_code == 303
    assert ui.api("GET", f"/api/v1/notification-channels/{channel_id}").json()["has_secret"] is (
        False
    )
    assert re.search(
        r'id="secret-state">Secret: <span class="status">not set</span>',
        ui.get(f"/ui/notifications/channels/{channel_id}").text,
    )

    deleted = ui.post(f"/ui/notifications/channels/{channel_id}/delete", {})
    assert deleted.status_code == 303
    assert ui.api("GET", "/api/v1/notification-channels").json() == []
    assert "No managed channel" in ui.get("/ui/notifications").text


def test_channel_form_errors_are_inline(ui: Ui) -> None:
    bad_name = ui.post(
        "/ui/notifications/channels/new",
        {"name": "Not A Name", "type": "webhook", "settings": "url=http://x", "secret": SECRET},
    )
    assert bad_name.status_code == 422
    assert _error_of(bad_name.text, "name")
    assert SECRET not in bad_name.text
    bad_setting = ui.post(
        "/ui/notifications/channels/new",
        {"name": "c1", "type": "webhook", "settings": "url=http://x\nsend_resolved=maybe"},
    )
    assert bad_setting.status_code == 422
    assert "true or false" in _error_of(bad_setting.text, "settings")
    unknown = ui.post(
        "/ui/notifications/channels/new",
        {"name": "c1", "type": "webhook", "settings": "url=http://x\nhttp_config=/etc/passwd"},
    )
    assert unknown.status_code == 422
    assert "not a webhook setting" in _error_of(unknown.text, "settings")
    slack = ui.post("/ui/notifications/channels/new", {"name": "c2", "type": "slack"})
    assert slack.status_code == 422
    assert "Slack webhook URL" in _error_of(slack.text, "secret")
    bad_type = ui.post("/ui/notifications/channels/new", {"name": "c3", "type": "carrier-pigeon"})
    assert bad_type.status_code == 422
    assert ui.api("GET", "/api/v1/notification-channels").json() == []


def test_a_channel_in_use_is_not_deleted(ui: Ui) -> None:
    channel_id = _channel(ui)
    route = ui.post(
        "/ui/notifications/routes/new",
        {"name": "ml", "matchers": 'group="ml"', "receiver": "ml-team", "position": "10"},
    )
    assert route.status_code == 303, route.text
    refused = ui.post(f"/ui/notifications/channels/{channel_id}/delete", {})
    assert refused.status_code == 409
    assert "Not deleted" in refused.text
    assert "ml" in refused.text
    assert len(ui.api("GET", "/api/v1/notification-channels").json()) == 1


# ---- routes -----------------------------------------------------------------------------


def test_route_crud(ui: Ui) -> None:
    _channel(ui)
    created = ui.post(
        "/ui/notifications/routes/new",
        {
            "name": "ml-critical",
            "matchers": 'group="ml"\nseverity=~"critical|page"\nteam != "a \\"b\\", c"',
            "receiver": "ml-team",
            "group_by": "alertname, instance",
            "group_wait": "10s",
            "continue": "on",
            "position": "5",
        },
    )
    assert created.status_code == 303, created.text
    route_id = created.headers["location"].split("/")[-1].split("?")[0]
    route = ui.api("GET", f"/api/v1/notification-routes/{route_id}").json()
    assert route["matchers"] == [
        {"name": "group", "value": "ml", "is_regex": False, "is_equal": True},
        {"name": "severity", "value": "critical|page", "is_regex": True, "is_equal": True},
        {"name": "team", "value": 'a "b", c', "is_regex": False, "is_equal": False},
    ]
    assert (route["group_by"], route["group_wait"], route["continue"], route["position"]) == (
        ["alertname", "instance"],
        "10s",
        True,
        5,
    )
    page = html.unescape(ui.get(f"/ui/notifications/routes/{route_id}").text)
    assert 'severity=~"critical|page"' in page
    assert 'team!="a \\"b\\", c"' in page

    updated = ui.post(
        f"/ui/notifications/routes/{route_id}",
        {"matchers": 'group="ml"', "receiver": "ml-team", "position": "7"},
    )
    assert updated.status_code == 303, updated.text
    route = ui.api("GET", f"/api/v1/notification-routes/{route_id}").json()
    assert (route["group_by"], route["group_wait"], route["continue"], route["position"]) == (
        None,
        None,
        False,
        7,
    )
    assert "ml-critical" in ui.get("/ui/notifications").text

    deleted = ui.post(f"/ui/notifications/routes/{route_id}/delete", {})
    assert deleted.status_code == 303
    assert ui.api("GET", "/api/v1/notification-routes").json() == []


def test_route_form_errors_are_inline(ui: Ui) -> None:
    _channel(ui)
    no_matcher = ui.post(
        "/ui/notifications/routes/new", {"name": "r", "matchers": "", "receiver": "ml-team"}
    )
    assert no_matcher.status_code == 422
    assert _error_of(no_matcher.text, "matchers")
    bad_line = ui.post(
        "/ui/notifications/routes/new",
        {"name": "r", "matchers": "1bad=x", "receiver": "ml-team", "position": "x"},
    )
    assert bad_line.status_code == 422
    assert "line 1" in _error_of(bad_line.text, "matchers")
    assert "whole number" in _error_of(bad_line.text, "position")
    bad_duration = ui.post(
        "/ui/notifications/routes/new",
        {"name": "r", "matchers": "a=b", "receiver": "ml-team", "group_wait": "soon"},
    )
    assert bad_duration.status_code == 422
    assert "duration" in _error_of(bad_duration.text, "group_wait")
    unknown = ui.post(
        "/ui/notifications/routes/new", {"name": "r", "matchers": "a=b", "receiver": "nobody"}
    )
    assert unknown.status_code == 422
    assert "nobody" in unknown.text
    assert ui.api("GET", "/api/v1/notification-routes").json() == []


def test_parsers() -> None:
    assert parse_settings("max_alerts=5\nsend_resolved=yes\nurl=http://x", "webhook") == {
        "max_alerts": 5,
        "send_resolved": True,
        "url": "http://x",
    }
    with pytest.raises(FieldError, match="whole number"):
        parse_settings("max_alerts=-1", "webhook")
    assert parse_matchers('a="x\\\\y"\n\nb!~c.*') == [
        {"name": "a", "value": "x\\y", "is_regex": False, "is_equal": True},
        {"name": "b", "value": "c.*", "is_regex": True, "is_equal": False},
    ]


# ---- the route tester -------------------------------------------------------------------


def _tester(ui: Ui, labels: str) -> Any:
    return ui.get("/ui/notifications", params={"labels": labels})


def test_route_tester_page(ui: Ui) -> None:
    _channel(ui)
    assert (
        ui.post(
            "/ui/notifications/routes/new",
            {"name": "ml", "matchers": 'group="ml"', "receiver": "ml-team"},
        ).status_code
        == 303
    )
    routed = _tester(ui, "alertname=GPUHot\ngroup=ml\nseverity=critical")
    assert routed.status_code == 200, routed.text
    assert '<strong id="route-receivers">ml-team</strong>' in routed.text
    assert "default-route → {group=&#34;ml&#34;}" in routed.text
    assert ">ml</a>" in routed.text
    fallback = _tester(ui, "group=other")
    assert '<strong id="route-receivers">default</strong>' in fallback.text
    empty = _tester(ui, "")
    assert '<strong id="route-receivers">default</strong>' in empty.text


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("no-equals-sign", "not key=value"),
        ("1abc=x", "not a valid label name"),
        ("a-b=x", "not a valid label name"),
        (f"{'a' * 101}=x", "at most 100"),
        (f"a={'x' * 1001}", "longer than 1000"),
        ("a=x\na=y", "given twice"),
        ("\n".join(f"l{i}=v" for i in range(51)), "at most 50"),
    ],
)
def test_route_tester_refuses_bad_labels_inline(ui: Ui, labels: str, message: str) -> None:
    response = _tester(ui, labels)
    assert response.status_code == 422
    assert message in _error_of(response.text, "labels")
    assert "route-receivers" not in response.text


# ---- audit trail ------------------------------------------------------------------------


def test_audit_page_filters_in_sql_newest_first(ui: Ui) -> None:
    for group in ("alpha", "beta"):
        assert ui.post("/ui/groups/new", {"id": group, "name": group}).status_code == 303
    assert ui.api("POST", "/api/v1/groups", json={"id": "gamma", "name": "gamma"}).is_success
    assert ui.post("/ui/groups/beta/delete", {}).status_code == 303
    _channel(ui)

    everything = ui.get("/ui/audit").text
    rows = re.findall(r"<code>([a-z0-9-]+)</code></div></td>", everything)
    assert rows[:2] == [rows[0], "beta"]  # newest first: the channel, then beta's deletion
    assert rows[-1] == "alpha"

    by_actor = ui.get("/ui/audit", params={"actor": "admin (web)"}).text
    assert "<code>gamma</code>" not in by_actor
    assert "<code>alpha</code>" in by_actor
    assert '<option value="admin (web)" selected>' in by_actor

    deletes = ui.get("/ui/audit", params={"action": "delete"}).text
    assert re.findall(r"<code>([a-z0-9-]+)</code></div></td>", deletes) == ["beta"]

    channels = ui.get("/ui/audit", params={"entity_type": "notification_channel"}).text
    assert "<code>alpha</code>" not in channels
    assert "notification_channel" in channels

    combined = ui.get(
        "/ui/audit", params={"entity_type": "group", "action": "create", "actor": "admin (web)"}
    ).text
    assert re.findall(r"<code>([a-z0-9-]+)</code></div></td>", combined) == ["beta", "alpha"]

    nothing = ui.get("/ui/audit", params={"actor": "nobody\x00%_"})
    assert nothing.status_code == 200
    assert "No record matches this filter" in nothing.text


def test_audit_page_is_paged(ui: Ui) -> None:
    for number in range(55):
        assert ui.api("POST", "/api/v1/groups", json={"id": f"g{number}", "name": f"g{number}"})
    first = ui.get("/ui/audit").text
    assert "Page 1 of 2" in first
    assert "<code>g54</code>" in first
    second = ui.get("/ui/audit", params={"page": "2"}).text
    assert "<code>g0</code>" in second
    assert "<code>g54</code>" not in second


# ---- bootstrap tokens -------------------------------------------------------------------


def test_token_created_shown_once_then_revoked(ui: Ui) -> None:
    assert ui.post("/ui/groups/new", {"id": "prod", "name": "production"}).status_code == 303
    created = ui.post(
        "/ui/bootstrap-tokens/new",
        {
            "name": "rack-7",
            "group_id": "prod",
            "max_uses": "10",
            "expires_hours": "24",
            "labels": "rack=r7",
            "allowed_labels": "gpu_model, rack",
        },
    )
    assert created.status_code == 200, created.text
    secret = re.search(r'id="new-token" type="text" readonly value="([^"]+)"', created.text)
    assert secret, created.text
    token = secret.group(1)
    assert token.startswith("aamib")

    # The token works, and is never shown again, nor its hash.
    node = TestClient(ui.client.app, client=("10.0.0.7", 40000))
    registered = node.post(
        "/api/v1/bootstrap/register",
        json={"hostname": "gpu-node-07", "ip_address": "10.0.0.7", "labels": {"rack": "r7"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert registered.status_code == 201, registered.text
    listing = ui.get("/ui/bootstrap-tokens").text
    assert token not in listing
    assert "token_hash" not in listing
    assert "rack-7" in listing
    assert "1 of 10" in listing
    assert token not in ui.get("/ui/audit").text

    token_id = ui.api("GET", "/api/v1/bootstrap-tokens").json()["data"][0]["id"]
    revoked = ui.post(f"/ui/bootstrap-tokens/{token_id}/revoke", {})
    assert revoked.status_code == 303
    assert "notice=revoked" in revoked.headers["location"]
    assert ui.api("GET", "/api/v1/bootstrap-tokens").json()["data"] == []
    assert "No bootstrap token" in ui.get("/ui/bootstrap-tokens").text
    again = node.post(
        "/api/v1/bootstrap/register",
        json={"hostname": "gpu-node-08", "ip_address": "10.0.0.7"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert again.status_code == 401


def test_token_form_errors_are_inline(ui: Ui) -> None:
    bad = ui.post(
        "/ui/bootstrap-tokens/new",
        {"name": "t", "max_uses": "0", "expires_hours": "soon", "labels": "nope"},
    )
    assert bad.status_code == 422
    assert "whole number" in _error_of(bad.text, "max_uses")
    assert "whole number" in _error_of(bad.text, "expires_hours")
    assert "key=value" in _error_of(bad.text, "labels")
    unknown_group = ui.post("/ui/bootstrap-tokens/new", {"name": "t", "group_id": "nope"})
    assert unknown_group.status_code == 422
    assert "unknown group" in _error_of(unknown_group.text, "group_id")
    bad_key = ui.post("/ui/bootstrap-tokens/new", {"name": "t", "allowed_labels": "__x"})
    assert bad_key.status_code == 422
    assert "label name" in _error_of(bad_key.text, "allowed_labels")
    assert ui.api("GET", "/api/v1/bootstrap-tokens").json()["data"] == []
    assert ui.post("/ui/bootstrap-tokens/nope/revoke", {}).status_code == 404
