"""Alert history: Alertmanager's webhook (payload version 4) stored once per transition,
read back as a timeline and as flap counts; only the history token (or the admin token)
may post, only the admin token may read."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aami.alertmanager import history
from aami.alertmanager.models import AlertTransition
from aami.alertmanager.schemas import WebhookPayload
from aami.app import create_app
from aami.config import Settings
from aami.db.session import session_scope
from tests.conftest import AUTH
from tests.support.api import app_services, create, error

HISTORY_TOKEN = "alertmanager-history-token-0123"
SD_TOKEN = "prometheus-sd-token-0123456789"
HOOK = "/api/v1/alert-history/webhook"
FIXTURE = Path(__file__).parent / "fixtures" / "alertmanager_webhook_v4.json"
AS_ALERTMANAGER = {"Authorization": f"Bearer {HISTORY_TOKEN}"}


@pytest.fixture
def am_client(settings: Settings) -> Iterator[TestClient]:
    """The app with a history token, and no default credentials."""
    app = create_app(settings.model_copy(update={"history_token": HISTORY_TOKEN}))
    with TestClient(app) as test_client:
        yield test_client


def payload() -> dict[str, Any]:
    """A notification as Alertmanager 0.25 sends it (two firing alerts)."""
    body: dict[str, Any] = json.loads(FIXTURE.read_text())
    return body


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def one_alert(status: str, starts: datetime, ends: datetime | None = None) -> dict[str, Any]:
    """The fixture's first alert alone, firing or resolved, at these times."""
    body = payload()
    alert = body["alerts"][0]
    alert["status"] = body["status"] = status
    alert["startsAt"] = _iso(starts)
    alert["endsAt"] = _iso(ends) if ends else "0001-01-01T00:00:00Z"
    body["alerts"] = [alert]
    return body


def post(client: TestClient, body: Any) -> Any:
    return client.post(HOOK, json=body, headers=AS_ALERTMANAGER)


def stored(client: TestClient) -> int:
    with session_scope(app_services(client).sessionmaker) as session:
        return int(session.scalar(select(func.count()).select_from(AlertTransition)) or 0)


def test_a_real_notification_is_stored_and_read_back(am_client: TestClient) -> None:
    response = post(am_client, payload())
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2, "recorded": 2, "duplicates": 0}
    page = am_client.get("/api/v1/alert-history", headers=AUTH).json()
    assert page["pagination"]["total"] == 2
    disk, gpu = page["data"]  # newest first
    assert gpu["alertname"] == "GPUHot_Production"
    assert gpu["status"] == "firing"
    assert gpu["fingerprint"] == "2a2b4f1c3d5e6f70"
    assert (gpu["instance"], gpu["group_id"], gpu["severity"]) == (
        "gpu-node-01",
        "prod",
        "critical",
    )
    assert gpu["ends_at"] is None  # Go's zero time: no end yet
    assert gpu["starts_at"].startswith("2026-12-06T05:00:00.123456")
    assert gpu["at"] == gpu["starts_at"]
    assert gpu["labels"]["target_id"] == "tgt-gpu-node-01"
    assert len(gpu["labels"]) == 10
    assert gpu["summary"] == "GPU hot on gpu-node-01"
    assert gpu["receiver"] == "aami-history"
    assert disk["instance"] == "gpu-node-02"


def test_a_repeated_notification_is_not_counted_twice(am_client: TestClient) -> None:
    assert post(am_client, payload()).json()["recorded"] == 2
    for _ in range(3):  # repeat_interval, a retry, the other peer of a cluster
        assert post(am_client, payload()).json() == {"received": 2, "recorded": 0, "duplicates": 2}
    assert stored(am_client) == 2


def test_firing_resolved_firing_is_one_flap(am_client: TestClient) -> None:
    now = datetime.now(UTC)
    first, resolved, again = (now - timedelta(minutes=m) for m in (30, 20, 10))
    for body in (
        one_alert("firing", first),
        one_alert("firing", first),  # repeated
        one_alert("resolved", first, resolved),
        one_alert("resolved", first, resolved),  # repeated
        one_alert("firing", again),
    ):
        assert post(am_client, body).status_code == 200
    assert stored(am_client) == 3
    summary = am_client.get("/api/v1/alert-history/summary", headers=AUTH).json()
    assert summary["window_seconds"] == 86400
    (alert,) = summary["alerts"]
    assert (alert["fired"], alert["resolved"], alert["flaps"]) == (2, 1, 1)
    assert alert["last_status"] == "firing"
    assert summary["targets"] == [
        {"name": "gpu-node-01", "alerts": 1, "fired": 2, "resolved": 1, "flaps": 1}
    ]
    assert summary["groups"][0]["name"] == "prod"
    assert summary["groups"][0]["flaps"] == 1
    timeline = am_client.get(
        "/api/v1/alert-history", params={"target": "gpu-node-01"}, headers=AUTH
    ).json()["data"]
    assert [t["status"] for t in timeline] == ["firing", "resolved", "firing"]
    # A window that starts after the resolution holds no flap.
    narrow = am_client.get(
        "/api/v1/alert-history/summary", params={"window": 15 * 60}, headers=AUTH
    ).json()
    assert narrow["alerts"][0]["flaps"] == 0
    assert narrow["alerts"][0]["fired"] == 1


def test_a_refire_without_a_resolved_notification_is_a_flap(am_client: TestClient) -> None:
    """Alertmanager may not report a resolution that lasted less than a group_interval; a
    new startsAt of the same fingerprint still means it resolved in between."""
    now = datetime.now(UTC)
    post(am_client, one_alert("firing", now - timedelta(minutes=5)))
    post(am_client, one_alert("firing", now - timedelta(minutes=1)))
    summary = am_client.get("/api/v1/alert-history/summary", headers=AUTH).json()
    assert summary["alerts"][0]["flaps"] == 1


def test_filters(am_client: TestClient) -> None:
    admin = TestClient(am_client.app, headers=AUTH)
    create(admin, "/api/v1/groups", {"id": "prod", "name": "production"})
    create(
        admin,
        "/api/v1/targets",
        {"id": "n1", "hostname": "gpu-node-01", "ip_address": "10.0.0.1", "group_ids": ["prod"]},
    )
    post(am_client, payload())
    for params, names in (
        ({"target": "n1"}, ["GPUHot_Production"]),  # a target's id is its hostname here
        ({"target": "gpu-node-02"}, ["NodeDiskSpaceLow"]),  # a target AAMI no longer has
        ({"group": "production"}, ["GPUHot_Production"]),  # a group's name
        ({"group": "dev"}, ["NodeDiskSpaceLow"]),
        ({"alertname": "NodeDiskSpaceLow"}, ["NodeDiskSpaceLow"]),
        ({"status": "resolved"}, []),
        ({"since": "2026-12-06T05:01:00Z"}, ["NodeDiskSpaceLow"]),
        ({"limit": "1", "page": "2"}, ["GPUHot_Production"]),
    ):
        response = admin.get("/api/v1/alert-history", params=params)
        assert response.status_code == 200, (params, response.text)
        assert [t["alertname"] for t in response.json()["data"]] == names, params
    for params in ({"status": "exploded"}, {"since": "yesterday"}, {"limit": "0"}):
        assert error(admin.get("/api/v1/alert-history", params=params), 422)
    assert error(admin.get("/api/v1/alert-history/summary", params={"window": "-1"}), 422)


def _hostile() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []

    def case(name: str, change: Any) -> None:
        body = payload()
        change(body)
        cases.append((name, body))

    case("no alerts", lambda b: b.pop("alerts"))
    case("no version", lambda b: b.pop("version"))
    case("another version", lambda b: b.update(version="3"))
    case("status", lambda b: b.update(status="exploded"))
    case("alerts not a list", lambda b: b.update(alerts={"a": 1}))
    case("alert status", lambda b: b["alerts"][0].update(status=1))
    case("label value a number", lambda b: b["alerts"][0]["labels"].update(instance=7))
    case("label name", lambda b: b["alerts"][0]["labels"].update({"bad name": "x"}))
    case("labels a list", lambda b: b["alerts"][0].update(labels=["a"]))
    case("startsAt", lambda b: b["alerts"][0].update(startsAt="yesterday"))
    case("startsAt zero", lambda b: b["alerts"][0].update(startsAt="0001-01-01T00:00:00Z"))
    case("no startsAt", lambda b: b["alerts"][0].pop("startsAt"))
    case("no fingerprint", lambda b: b["alerts"][0].pop("fingerprint"))
    case("fingerprint", lambda b: b["alerts"][0].update(fingerprint="../../etc/passwd"))
    case("huge label", lambda b: b["alerts"][0]["labels"].update(job="x" * 5000))
    case(
        "many labels", lambda b: b["alerts"][0]["labels"].update({f"l{i}": "" for i in range(101)})
    )
    case("truncatedAlerts", lambda b: b.update(truncatedAlerts=-1))
    case("NUL in a label", lambda b: b["alerts"][0]["labels"].update(instance="gpu\x00"))
    case("NUL in an annotation", lambda b: b["alerts"][0]["annotations"].update(summary="\x00"))
    case("NUL in the receiver", lambda b: b.update(receiver="aami\x00history"))
    case("many alerts", lambda b: b.update(alerts=[copy.deepcopy(b["alerts"][0])] * 1001))
    cases.append(("an array", [payload()]))
    cases.append(("null", None))
    return cases


@pytest.mark.parametrize(("name", "body"), _hostile(), ids=[c[0] for c in _hostile()])
def test_hostile_bodies_are_refused_and_store_nothing(
    am_client: TestClient, name: str, body: Any
) -> None:
    detail = error(post(am_client, body), 422)
    assert detail, name
    assert stored(am_client) == 0


def test_not_json_and_too_large_are_refused(am_client: TestClient) -> None:
    for content, content_type in (
        (b"not json", "application/json"),
        (b'{"version": "4", ', "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"version=4", "application/x-www-form-urlencoded"),
    ):
        response = am_client.post(
            HOOK, content=content, headers={**AS_ALERTMANAGER, "Content-Type": content_type}
        )
        assert 400 <= response.status_code < 500, (content, response.text)
        assert response.json()["detail"], content
    big = payload()
    big["commonAnnotations"] = {f"a{i}": "x" * 16000 for i in range(80)}  # ~1.3 MB
    detail = error(post(am_client, big), 413)
    assert "larger" in detail
    assert stored(am_client) == 0


def test_tokens(am_client: TestClient, settings: Settings) -> None:
    # no token, a wrong one
    assert error(am_client.post(HOOK, json=payload()), 401)
    wrong = {"Authorization": "Bearer not-the-history-token-000"}
    assert error(am_client.post(HOOK, json=payload(), headers=wrong), 401)
    # the history token posts, and can do nothing else
    assert post(am_client, payload()).status_code == 200
    for path in (
        "/api/v1/alert-history",
        "/api/v1/alert-history/summary",
        "/api/v1/groups",
        "/api/v1/sd/prometheus",
        "/api/v1/alerts",
    ):
        assert "may not" in error(am_client.get(path, headers=AS_ALERTMANAGER), 403), path
    assert error(am_client.get("/api/v1/checks/signing-keys", headers=AS_ALERTMANAGER), 403)
    assert error(am_client.post("/api/v1/groups", json={"name": "x"}, headers=AS_ALERTMANAGER), 403)
    # the admin token reads (and may post too)
    assert am_client.get("/api/v1/alert-history", headers=AUTH).status_code == 200
    assert am_client.post(HOOK, json=payload(), headers=AUTH).json()["duplicates"] == 2
    # the service-discovery token may not post
    app = create_app(
        settings.model_copy(update={"history_token": HISTORY_TOKEN, "sd_token": SD_TOKEN})
    )
    with TestClient(app, headers={"Authorization": f"Bearer {SD_TOKEN}"}) as prometheus:
        assert "may not post alert history" in error(prometheus.post(HOOK, json=payload()), 403)


def test_without_a_history_token_only_the_admin_posts(client: TestClient) -> None:
    assert error(client.post(HOOK, json=payload(), headers=AS_ALERTMANAGER), 401)
    assert client.post(HOOK, json=payload()).status_code == 200


def test_the_token_never_appears_in_answers(am_client: TestClient) -> None:
    post(am_client, payload())
    for response in (
        am_client.get("/api/v1/alert-history", headers=AUTH),
        am_client.get("/api/v1/alert-history/summary", headers=AUTH),
        am_client.post(HOOK, json={"version": "4"}, headers=AS_ALERTMANAGER),
    ):
        assert HISTORY_TOKEN not in response.text


def test_retention_keeps_days_and_rows(am_client: TestClient, settings: Settings) -> None:
    short = settings.model_copy(update={"alert_history_days": 1, "alert_history_max_rows": 100})
    factory = app_services(am_client).sessionmaker
    now = datetime.now(UTC)
    old = WebhookPayload.model_validate(one_alert("firing", now - timedelta(days=3)))
    with session_scope(factory) as session:
        history.record(session, old, short, now=now - timedelta(days=2))
    assert stored(am_client) == 1
    many = payload()
    template = many["alerts"][0]
    many["alerts"] = [
        {**template, "fingerprint": f"{i:016x}", "startsAt": _iso(now - timedelta(seconds=i))}
        for i in range(1, 121)
    ]
    with session_scope(factory) as session:
        result = history.record(session, WebhookPayload.model_validate(many), short, now=now)
    assert result.recorded == 120
    assert stored(am_client) == 90  # the 2-day-old row went first, then the oldest ids
    with session_scope(factory) as session:
        fingerprints = set(session.scalars(select(AlertTransition.fingerprint)))
    assert f"{120:016x}" in fingerprints  # the newest ids are kept (ids, not times, order)
    assert "2a2b4f1c3d5e6f70" not in fingerprints


def test_history_settings(tmp_path: Path) -> None:
    token_file = tmp_path / "history-token"
    token_file.write_text(HISTORY_TOKEN + "\n")
    settings = Settings(admin_token="a" * 20, history_token_file=token_file)
    assert settings.history_token == HISTORY_TOKEN  # read from the file, newline dropped
    with pytest.raises(ValueError, match="not both"):
        Settings(admin_token="a" * 20, history_token=HISTORY_TOKEN, history_token_file=token_file)
    with pytest.raises(ValueError, match="16 characters"):
        Settings(admin_token="a" * 20, history_token="short")
    for url in ("ftp://aami/hook", "aami.example.com/hook", "http://"):
        with pytest.raises(ValueError, match="AAMI_HISTORY_WEBHOOK_URL"):
            Settings(admin_token="a" * 20, history_webhook_url=url)
    hook = "https://aami.example.com/api/v1/alert-history/webhook"
    assert (
        Settings(admin_token="a" * 20, history_webhook_url=f" {hook} ").history_webhook_url == hook
    )
