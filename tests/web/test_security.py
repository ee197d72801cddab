"""The session cookie and CSRF tokens (pure code)."""

from __future__ import annotations

from aami.web.common import safe_next
from aami.web.security import (
    SESSION_SECONDS,
    WebSession,
    csrf_ok,
    csrf_token,
    load_session,
    new_session,
    sign_session,
)

KEY = "admin-token-0123456789"


def test_round_trip() -> None:
    session = new_session(authenticated=True, now=1000)
    value = sign_session(KEY, session)
    assert load_session(KEY, value, now=1001) == session
    assert session.expires == 1000 + SESSION_SECONDS


def test_tampered_forged_expired_or_other_key_is_refused() -> None:
    session = new_session(authenticated=False, now=1000)
    value = sign_session(KEY, session)
    payload, mac = value.split(".")
    forged = sign_session("another-admin-token-xyz", WebSession(session.sid, True, 10**10))
    for bad in (
        None,
        "",
        "no-dot",
        "a.b.c",
        f"{payload}.{mac[:-2]}AA",
        forged,
        f"{forged.split('.')[0]}.{mac}",
        "!!!.???",
        "x" * 2000,
    ):
        assert load_session(KEY, bad, now=1001) is None, bad
    assert load_session(KEY, value, now=1000 + SESSION_SECONDS) is None
    assert load_session("another-admin-token-xyz", value, now=1001) is None


def test_new_sessions_have_new_ids() -> None:
    assert new_session(authenticated=True).sid != new_session(authenticated=True).sid


def test_csrf_token_belongs_to_one_session_and_one_key() -> None:
    one, two = new_session(authenticated=True), new_session(authenticated=True)
    token = csrf_token(KEY, one)
    assert csrf_ok(KEY, one, token)
    assert not csrf_ok(KEY, two, token)
    assert not csrf_ok("another-admin-token-xyz", one, token)
    assert not csrf_ok(KEY, one, "")
    assert not csrf_ok(KEY, one, None)
    assert not csrf_ok(KEY, one, token[:-1])


def test_safe_next() -> None:
    assert safe_next("/ui/targets?q=a") == "/ui/targets?q=a"
    for unsafe in (
        None,
        "",
        "/ui",
        "https://evil.example/ui/",
        "//evil.example",
        "/api/v1/groups",
        "/ui\\evil",
        "/ui/login?next=/ui/",
        "/ui/static/aami.css",
    ):
        assert safe_next(unsafe) == "/ui/", unsafe
