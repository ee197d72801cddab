"""Alerts, silences and managed notification config through the API, with Alertmanager
unreachable (the end-to-end tests run the real one)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import create, error


def test_alerts_and_silences_are_503_when_alertmanager_is_down(client: TestClient) -> None:
    for path in ("/api/v1/alerts", "/api/v1/alerts/groups", "/api/v1/silences"):
        detail = error(client.get(path), 503)
        assert "Alertmanager" in detail
        assert "does not answer" in detail
    detail = error(
        client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "instance", "value": "gpu-node-01"}],
                "duration": "1h",
                "created_by": "ops",
                "comment": "maintenance",
            },
        ),
        503,
    )
    assert "Alertmanager" in detail
    status = client.get("/api/v1/alertmanager/status").json()
    assert status["reachable"] is False


def test_silence_guardrails_need_no_alertmanager(client: TestClient) -> None:
    base = {
        "matchers": [{"name": "instance", "value": "gpu-node-01"}],
        "duration": "1h",
        "created_by": "ops",
        "comment": "maintenance",
    }
    regex_only = {**base, "matchers": [{"name": "instance", "value": ".*", "is_regex": True}]}
    assert "equality matcher" in error(client.post("/api/v1/silences", json=regex_only), 422)
    assert "matchers" in error(client.post("/api/v1/silences", json={**base, "matchers": []}), 422)
    assert "at most" in error(
        client.post("/api/v1/silences", json={**base, "duration": "720h"}), 422
    )
    assert "created_by" in error(
        client.post("/api/v1/silences", json={**base, "created_by": ""}), 422
    )
    assert "comment" in error(
        client.post("/api/v1/silences", json={k: v for k, v in base.items() if k != "comment"}), 422
    )


def test_channels_and_routes(client: TestClient) -> None:
    hook = create(
        client,
        "/api/v1/notification-channels",
        {
            "name": "prod-team",
            "type": "webhook",
            "settings": {"url": "http://127.0.0.1:9/hook"},
            "secret": "s3cret-bearer",
        },
    )
    assert hook["has_secret"] is True
    assert "secret" not in hook
    assert "s3cret" not in client.get("/api/v1/notification-channels").text
    assert "s3cret" not in client.get("/api/v1/audit").text
    route = create(
        client,
        "/api/v1/notification-routes",
        {
            "name": "production",
            "matchers": [{"name": "group", "value": "production"}],
            "receiver": "prod-team",
            "group_wait": "0s",
            "continue": True,
        },
    )
    assert route["receiver"] == "prod-team"
    assert route["continue"] is True
    error(
        client.post(
            "/api/v1/notification-routes",
            json={"name": "x", "matchers": [{"name": "a", "value": "b"}], "receiver": "nope"},
        ),
        422,
    )
    error(
        client.post(
            "/api/v1/notification-routes",
            json={
                "name": "y",
                "matchers": [{"name": "a", "value": "b"}],
                "receiver": "prod-team",
                "group_wait": "soon",
            },
        ),
        422,
    )
    assert "production" in error(client.delete("/api/v1/notification-channels/prod-team"), 409)
    assert client.delete(f"/api/v1/notification-routes/{route['id']}").status_code == 204
    assert client.delete("/api/v1/notification-channels/prod-team").status_code == 204


def test_channel_settings_are_whitelisted(client: TestClient) -> None:
    cases = [
        ({"type": "slack", "settings": {"channel": "#ops"}}, "Slack webhook URL"),
        ({"type": "webhook", "settings": {}}, "settings.url"),
        ({"type": "webhook", "settings": {"url": "file:///etc/shadow"}}, "http"),
        (
            {
                "type": "webhook",
                "settings": {
                    "url": "http://x/",
                    "http_config": {"authorization": {"credentials_file": "/etc/shadow"}},
                },
            },
            "http_config",
        ),
        ({"type": "email", "settings": {"to": "a@b.c", "smarthost": 25}}, "wrong type"),
        ({"type": "sms", "settings": {}}, "type"),
        ({"name": "Bad Name", "type": "webhook", "settings": {"url": "http://x/"}}, "name"),
    ]
    for body, needle in cases:
        detail = error(
            client.post("/api/v1/notification-channels", json={"name": "c", **body}), 422
        )
        assert needle in detail, (body, detail)
    assert client.get("/api/v1/notification-channels").json() == []


def test_amtool_rejection_is_422_and_changes_nothing(client: TestClient) -> None:
    # an address amtool refuses: the email "to" is not an address
    detail = error(
        client.post(
            "/api/v1/notification-channels",
            json={
                "name": "mail",
                "type": "email",
                "settings": {"to": "ops@example.com", "smarthost": "no-port-here"},
            },
        ),
        422,
    )
    assert "amtool" in detail
    assert client.get("/api/v1/notification-channels").json() == []
