"""What every UI page shares: login and CSRF dependencies, the route class that turns
errors into pages, the request's database session, and page rendering."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aami.api.deps import get_session
from aami.api.state import services
from aami.auth import service as ui_sessions
from aami.db.session import session_scope
from aami.errors import AamiError
from aami.web.forms import Errors, FormData, attach_error, parse_form, validation_errors
from aami.web.security import (
    COOKIE_NAME,
    WebSession,
    csrf_ok,
    csrf_token,
    new_session_id,
    session_id_hash,
    valid_session_id,
)

__all__ = [
    "ACTOR",
    "LOGIN_COOKIE",
    "NOTICES",
    "PREFIX",
    "STATIC_DIR",
    "CsrfRejected",
    "DbDep",
    "FormDep",
    "LoginDep",
    "LoginRequired",
    "UiRoute",
    "admin_token",
    "attempt",
    "current_session",
    "done",
    "end_session",
    "error_page",
    "page",
    "redirect",
    "safe_next",
    "set_session_cookie",
    "start_session",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX = "/ui"
HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
# The audit trail's actor for changes made in the UI: the admin token, through a browser.
ACTOR = "admin (web)"
LOGIN_COOKIE = "aami_ui_login"

NOTICES = {
    "created": "Created.",
    "saved": "Saved.",
    "deleted": "Deleted.",
    "enabled": "Enabled.",
    "disabled": "Disabled.",
    "silenced": "Silence created.",
    "expired": "Silence expired.",
    "revoked": "Revoked.",
    "loggedout": "You are logged out.",
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """No valid session: the person is sent to the login page."""

    def __init__(self, next_path: str = "") -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A POST without this session's CSRF token."""


def admin_token(request: Request) -> str:
    token: str | None = services(request).settings.admin_token
    if not token:  # create_app refuses to build an app without one
        raise RuntimeError("no admin token configured")
    return token


def current_session(request: Request) -> WebSession | None:
    """The logged-in session of this request, or None: a live (not expired, not revoked)
    session in the database under the cookie's id. Blocking: call it from a thread."""
    sid = request.cookies.get(COOKIE_NAME)
    if sid is None or not valid_session_id(sid):
        return None
    id_hash = session_id_hash(admin_token(request), sid)
    with session_scope(services(request).sessionmaker) as db:
        row = ui_sessions.active(db, id_hash=id_hash)
        if row is None:
            return None
        session = WebSession(sid, True, int(row.expires_at.timestamp()))
    request.state.web_session = session
    return session


def start_session(request: Request) -> str:
    """Record a new login; return the session id for the cookie. Blocking."""
    sid = new_session_id()
    with session_scope(services(request).sessionmaker) as db:
        ui_sessions.start(
            db,
            id_hash=session_id_hash(admin_token(request), sid),
            lifetime=services(request).settings.session_lifetime,
        )
    return sid


def end_session(request: Request, db: Session, session: WebSession) -> None:
    """Revoke a session: its cookie is dead from now on, even if replayed."""
    ui_sessions.revoke(db, id_hash=session_id_hash(admin_token(request), session.sid))


def require_login(request: Request) -> WebSession:
    """The logged-in session, or LoginRequired (a redirect to the login page). Blocking."""
    session = current_session(request)
    if session is None:
        next_path = ""
        if request.method == "GET":
            next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(next_path)
    return session


async def posted_form(request: Request) -> FormData:
    """The submitted form of a logged-in session, with its CSRF token checked."""
    # The session is checked before the body is read: no login, nothing read.
    session = await run_in_threadpool(require_login, request)
    form = parse_form(await request.body(), request.headers.get("content-type", ""))
    if not csrf_ok(admin_token(request), session, form.get("csrf_token")):
        raise CsrfRejected()
    return form


LoginDep = Annotated[WebSession, Depends(require_login)]
FormDep = Annotated[FormData, Depends(posted_form)]
# Commit before the response leaves: a redirect after a change must find the change.
DbDep = Annotated[Session, Depends(get_session, scope="function")]


def safe_next(value: str | None) -> str:
    """A same-site path under /ui to go to after login; anything else goes to the dashboard."""
    if (
        value
        and value.startswith(PREFIX + "/")
        and not value.startswith("//")
        and "\\" not in value
    ):
        if not value.startswith(f"{PREFIX}/login") and not value.startswith(f"{PREFIX}/static"):
            return value
    return f"{PREFIX}/"


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=int(services(request).settings.session_lifetime),
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


# ---- rendering -------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _static_version(name: str) -> str:
    path = STATIC_DIR / name
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "0"


def _static(name: str) -> str:
    return f"{PREFIX}/static/{name}?v={_static_version(name)}"


def _dt(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def _compact(value: object) -> str:
    return json.dumps(value, separators=(", ", ": "), default=str)


def _kv(values: Mapping[str, Any] | None) -> Markup:
    if not values:
        return Markup('<span class="muted">—</span>')
    items = (
        Markup('<span class="tag">{}={}</span>').format(key, value) for key, value in values.items()
    )
    return Markup(" ").join(items)


_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    dt=_dt, pretty=_pretty, compact=_compact, kv=_kv, pairs=lambda items: [(i, i) for i in items]
)
_env.globals.update(static=_static, prefix=PREFIX)


def render_html(template: str, context: Mapping[str, Any]) -> str:
    return _env.get_template(template).render(**context)


def page(
    request: Request,
    template_name: str,
    /,
    *,
    status_code: int = 200,
    nav: str = "",
    title: str = "",
    **context: Any,
) -> HTMLResponse:
    """Render a page with what every page needs: the CSRF token, the nav, the notice."""
    session: WebSession | None = getattr(request.state, "web_session", None)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = render_html(
        template_name,
        {
            "request": request,
            "csrf": csrf_token(admin_token(request), session) if session else "",
            "logged_in": session is not None,
            "nav": nav,
            "title": title,
            "notice": notice,
            **context,
        },
    )
    return HTMLResponse(html, status_code=status_code)


def redirect(path: str, notice: str | None = None) -> RedirectResponse:
    """303 See Other: the browser GETs the page after a POST."""
    path, hash_, fragment = path.partition("#")
    if notice:
        path += ("&" if "?" in path else "?") + f"notice={notice}"
    return RedirectResponse(path + hash_ + fragment, status_code=303)


_TITLES = {
    400: "Bad request",
    401: "Not logged in",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Not acceptable",
    503: "Unavailable",
}


def error_page(request: Request, status_code: int, detail: str) -> Response:
    """An error as a page, or as JSON for the preview's fetch."""
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {"error": _TITLES.get(status_code, "error"), "detail": detail}, status_code
        )
    return page(
        request,
        "error.html",
        status_code=status_code,
        title=_TITLES.get(status_code, "Error"),
        detail=detail,
    )


def _login_redirect(request: Request, next_path: str) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"error": "unauthorized", "detail": "log in again"}, 401)
    target = f"{PREFIX}/login" + (f"?next={_quote(next_path)}" if next_path else "")
    if request.headers.get("sec-fetch-site") == "cross-site" and request.method == "GET":
        # SameSite=Strict cookies are not sent on a navigation from another site; a reload
        # from this page is same-site and sends them, so a logged-in person gets through.
        return HTMLResponse(
            render_html("bounce.html", {"target": request.url.path, "login": target}),
            status_code=200,
        )
    return RedirectResponse(target, status_code=303)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


class UiRoute(APIRoute):
    """Routes whose errors become pages: login redirects, 403 for CSRF, AAMI errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except LoginRequired as exc:
                response = _login_redirect(request, exc.next_path)
            except CsrfRejected:
                response = error_page(
                    request,
                    403,
                    "This form's security token is missing or belongs to another session. "
                    "Reload the page and submit it again.",
                )
            except AamiError as exc:
                response = error_page(request, exc.status_code, exc.detail)
            except RequestValidationError as exc:
                messages = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                response = error_page(request, 400, messages or "bad request")
            except IntegrityError as exc:
                log.info("integrity error in the UI: %s", exc.orig)
                response = error_page(
                    request, 409, "The change conflicts with data written at the same time; retry."
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return handler


def done(action: Callable[[], object]) -> Callable[[], bool]:
    """Wrap an action that returns nothing, so ``attempt`` can tell that it ran."""

    def run() -> bool:
        action()
        return True

    return run


def attempt(
    session: Session, action: Callable[[], T], fields: tuple[str, ...]
) -> tuple[T | None, Errors, int]:
    """Run a change; on a refusal, undo what it flushed and say where the problem is.

    Returns the result, the errors by field (``""`` for the top of the form) and the
    status code the page should have.
    """
    try:
        return action(), {}, 200
    except ValidationError as exc:
        session.rollback()
        return None, validation_errors(exc, fields), 422
    except AamiError as exc:
        # The service may have flushed part of the change: nothing of it may be committed.
        session.rollback()
        return None, attach_error({}, exc.detail, fields), exc.status_code
