"""The UI's signed session cookie and CSRF tokens.

Both are HMAC-SHA256 with a key derived from the admin token, so changing the admin token
logs every browser out. The cookie carries no secret: a random session id, whether it has
logged in, and when it expires. A CSRF token is the HMAC of the session id, so a form
rendered for one session is refused in any other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
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
    "sign_session",
]

COOKIE_NAME = "aami_ui"
SESSION_SECONDS = 12 * 3600
_KEY_CONTEXT = b"aami-web-session\x00"


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
    """A fresh session with a new random id (a new id at login defeats session fixation)."""
    issued = int(now if now is not None else time.time())
    return WebSession(secrets.token_urlsafe(24), authenticated, issued + SESSION_SECONDS)


def sign_session(admin_token: str, session: WebSession) -> str:
    """The cookie value: ``payload.mac``, both base64url."""
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
