"""UI sessions live on the server: logout ends them, they expire, the cookie is only an id;
repeated failed logins from one address get 429."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from aami.app import create_app
from aami.auth import service as ui_sessions
from aami.auth.models import UiSession
from aami.config import Settings
from aami.db.session import session_scope
from aami.web.routes import install
from aami.web.security import session_id_hash
from tests.conftest import TOKEN
from tests.support.api import app_services
from tests.support.wait import wait_for
from tests.web.conftest import Ui, csrf_of, login


def _rows(app: FastAPI) -> list[UiSession]:
    with session_scope(app_services(app).sessionmaker) as db:
        return list(db.scalars(select(UiSession)).all())


def _ui_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    install(app)
    return app


def test_the_cookie_is_a_random_id_and_the_database_holds_only_its_hash(
    browser: TestClient, ui_app: FastAPI
) -> None:
    assert login(browser).status_code == 303
    cookie = browser.cookies["aami_ui"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie), cookie
    [row] = _rows(ui_app)
    assert row.id_hash == session_id_hash(TOKEN, cookie)
    assert cookie not in row.id_hash
    assert row.revoked_at is None
    lifetime = row.expires_at - row.created_at
    assert lifetime == timedelta(hours=12)


def test_after_logout_the_old_cookie_is_dead_even_if_replayed(ui: Ui, ui_app: FastAPI) -> None:
    stolen = ui.client.cookies["aami_ui"]
    assert ui.get("/ui/groups").status_code == 200
    assert ui.post("/ui/logout", {}).status_code == 303
    [row] = _rows(ui_app)
    assert row.revoked_at is not None
    with TestClient(ui_app, follow_redirects=False) as replay:
        replay.cookies.set("aami_ui", stolen, path="/ui")
        response = replay.get("/ui/groups")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/login")
        # A form with the old session's CSRF token is refused as well: no session, no write.
        posted = replay.post("/ui/groups/new", data={"name": "x", "csrf_token": ui.csrf})
        assert posted.status_code == 303
        assert posted.headers["location"] == "/ui/login"
    assert ui.api("GET", "/api/v1/groups").json()["pagination"]["total"] == 0


def test_logging_out_ends_only_that_session(ui: Ui, ui_app: FastAPI) -> None:
    with TestClient(ui_app, follow_redirects=False) as other:
        login(other)
        assert ui.post("/ui/logout", {}).status_code == 303
        assert other.get("/ui/").status_code == 200
    assert ui.get("/ui/").status_code == 303


def test_sessions_expire(settings: Settings) -> None:
    app = _ui_app(settings.model_copy(update={"session_lifetime": 1.0}))
    with TestClient(app, follow_redirects=False) as browser:
        response = login(browser)
        assert "Max-Age=1" in response.headers["set-cookie"]
        assert browser.get("/ui/").status_code == 200
        # A browser that keeps sending it past its Max-Age: the server is what says no.
        replay = TestClient(app, follow_redirects=False)
        replay.cookies.set("aami_ui", browser.cookies["aami_ui"], path="/ui")
        wait_for(
            lambda: replay.get("/ui/").status_code == 303,
            timeout=10,
            what="the session to expire",
        )


def test_active_session_window(ui_app: FastAPI) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(app_services(ui_app).sessionmaker) as db:
        ui_sessions.start(db, id_hash="h" * 64, lifetime=3600, now=start)
    with session_scope(app_services(ui_app).sessionmaker) as db:
        assert ui_sessions.active(db, id_hash="h" * 64, now=start + timedelta(seconds=3599))
        assert ui_sessions.active(db, id_hash="h" * 64, now=start + timedelta(seconds=3600)) is None
        assert ui_sessions.active(db, id_hash="x" * 64, now=start) is None
        # A new login clears expired rows.
        ui_sessions.start(db, id_hash="n" * 64, lifetime=3600, now=start + timedelta(hours=2))
    assert [row.id_hash for row in _rows(ui_app)] == ["n" * 64]


def test_a_new_admin_token_ends_every_session(settings: Settings, ui: Ui) -> None:
    cookie = ui.client.cookies["aami_ui"]
    rotated = _ui_app(settings.model_copy(update={"admin_token": "a-rotated-admin-token-xyz"}))
    with TestClient(rotated, follow_redirects=False) as browser:
        browser.cookies.set("aami_ui", cookie, path="/ui")
        assert browser.get("/ui/").status_code == 303


def test_junk_cookies_are_refused(browser: TestClient) -> None:
    for junk in ("", "x", "a" * 500, "eyJzaWQiOiJ4IiwiYXV0aCI6dHJ1ZX0.AAAA", "A" * 43):
        browser.cookies.set("aami_ui", junk, path="/ui")
        assert browser.get("/ui/").status_code == 303, junk


# ---- failed logins ----------------------------------------------------------------------


def _try(client: TestClient, token: str) -> object:
    form = client.get("/ui/login")
    return client.post("/ui/login", data={"csrf_token": csrf_of(form.text), "token": token})


def test_repeated_failed_logins_get_429_with_retry_after(settings: Settings) -> None:
    strict = settings.model_copy(update={"auth_failure_limit": 3, "auth_block_duration": 120.0})
    app = _ui_app(strict)
    with TestClient(app, follow_redirects=False, client=("192.0.2.9", 50000)) as browser:
        for _ in range(3):
            response = _try(browser, "wrong-token-wrong-token")
            assert response.status_code == 401  # type: ignore[attr-defined]
        blocked = _try(browser, TOKEN)  # even the right token, while blocked
        assert blocked.status_code == 429  # type: ignore[attr-defined]
        assert 1 <= int(blocked.headers["retry-after"]) <= 120  # type: ignore[attr-defined]
        assert "Too many failed logins" in blocked.text  # type: ignore[attr-defined]
        assert browser.get("/ui/").status_code == 303
        # The API is closed to that address too: one counter per address.
        api = browser.get("/api/v1/groups", headers={"Authorization": f"Bearer {TOKEN}"})
        assert api.status_code == 429
    with TestClient(app, follow_redirects=False, client=("192.0.2.10", 50000)) as other:
        assert _try(other, TOKEN).status_code == 303  # type: ignore[attr-defined]


def test_csrf_failures_and_successful_logins_do_not_count(settings: Settings) -> None:
    app = _ui_app(settings.model_copy(update={"auth_failure_limit": 2}))
    with TestClient(app, follow_redirects=False) as browser:
        for _ in range(5):
            browser.get("/ui/login")
            assert browser.post("/ui/login", data={"token": "nope"}).status_code == 403
            assert _try(browser, TOKEN).status_code == 303  # type: ignore[attr-defined]
            browser.cookies.clear()
        assert _try(browser, "wrong-token-wrong-token").status_code == 401  # type: ignore[attr-defined]
        assert _try(browser, TOKEN).status_code == 303  # type: ignore[attr-defined]
