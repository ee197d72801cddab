"""The UI's session ids, its signed login-form cookie, and CSRF tokens.

A logged-in browser holds only a random session id (``aami_ui``); the session lives in the
database under the id's keyed hash (``aami.auth.service``), so logging out ends it for good
and a stolen cookie dies with it. The login form's cookie (``aami_ui_login``) is signed
instead: it grants nothing, it only ties the form's CSRF token to one browser.

Hashes, signatures and CSRF tokens are HMAC-SHA256 with a key derived from the admin
token, so changing the admin token logs every browser out. A CSRF token is the HMAC of
the session id, so a form rendered for one session is refused in any other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

__all__ = [
    "COOKIE_NAME",
    "SESSION_SECONDS",
    "WebSession",
    "csrf_ok",
    "csrf_token",
    "load_session",
    "new_session",
    "new_session_id",
    "session_id_hash",
    "sign_session",
    "valid_session_id",
]

COOKIE_NAME = "aami_ui"
SESSION_SECONDS = 12 * 3600
_KEY_CONTEXT = b"aami-web-session\x00"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


@dataclass(frozen=True, slots=True)
class WebSession:
    sid: str
    authenticated: bool
    expires: int


def _key(admin_token: str) -> bytes:
    return hashlib.sha256(_KEY_CONTEXT + admin_token.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(admin_token: str, purpose: bytes, data: bytes) -> bytes:
    return hmac.new(_key(admin_token), purpose + b"\x00" + data, hashlib.sha256).digest()


def new_session(*, authenticated: bool, now: float | None = None) -> WebSession:
    """A fresh signed session with a new random id (the login form's, not a login)."""
    issued = int(now if now is not None else time.time())
    return WebSession(secrets.token_urlsafe(24), authenticated, issued + SESSION_SECONDS)


def new_session_id() -> str:
    """A random id for a logged-in session (256 bits)."""
    return secrets.token_urlsafe(32)


def valid_session_id(value: str | None) -> bool:
    """Whether a cookie value can be a session id at all (junk never reaches the database)."""
    return bool(value) and _SESSION_ID.match(value or "") is not None


def session_id_hash(admin_token: str, sid: str) -> str:
    """What the database stores for a session id."""
    return _mac(admin_token, b"session-id", sid.encode()).hex()


def sign_session(admin_token: str, session: WebSession) -> str:
    """The signed cookie value: ``payload.mac``, both base64url."""
    payload = json.dumps(
        {"sid": session.sid, "auth": session.authenticated, "exp": session.expires},
        separators=(",", ":"),
    ).encode()
    return f"{_b64(payload)}.{_b64(_mac(admin_token, b'session', payload))}"


def load_session(
    admin_token: str, value: str | None, now: float | None = None
) -> WebSession | None:
    """The session in a cookie value; None when absent, forged, malformed or expired."""
    if not value or value.count(".") != 1 or len(value) > 1024:
        return None
    payload_text, mac_text = value.split(".")
    try:
        payload = _unb64(payload_text)
        mac = _unb64(mac_text)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(mac, _mac(admin_token, b"session", payload)):
        return None
    try:
        data = json.loads(payload)
        session = WebSession(str(data["sid"]), bool(data["auth"]), int(data["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires <= (now if now is not None else time.time()):
        return None
    return session


def csrf_token(admin_token: str, session: WebSession) -> str:
    """The token every form of this session carries."""
    return _mac(admin_token, b"csrf", session.sid.encode()).hex()


def csrf_ok(admin_token: str, session: WebSession, given: str | None) -> bool:
    """Whether a submitted token belongs to this session (constant-time)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), csrf_token(admin_token, session).encode())
