"""The web UI at /ui: server-rendered pages over the same services as the API.

``install(app)`` mounts the static files and includes ``router``. Pages need a login with
the admin token (a session kept on the server; the HttpOnly, SameSite=Strict cookie
holds only its random id); every POST carries the session's CSRF token.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from aami.alerts import service as alerts
from aami.api.state import services
from aami.auth.tokens import matches
from aami.checks import service as checks
from aami.errors import NotFound
from aami.groups import service as groups
from aami.publishing import service as publishing
from aami.publishing.types import Target
from aami.targets import service as targets
from aami.web import (
    pages_alerting,
    pages_alerts,
    pages_audit,
    pages_checks,
    pages_inventory,
    pages_notifications,
    pages_publishing,
    pages_registrations,
    pages_silences,
    pages_tokens,
)
from aami.web.alertmanager import connect, firing
from aami.web.common import (
    LOGIN_COOKIE,
    PREFIX,
    STATIC_DIR,
    CsrfRejected,
    DbDep,
    FormDep,
    LoginDep,
    UiRoute,
    admin_token,
    current_session,
    end_session,
    page,
    redirect,
    safe_next,
    set_session_cookie,
    start_session,
)
from aami.web.forms import parse_form
from aami.web.prometheus import target_health
from aami.web.security import (
    COOKIE_NAME,
    WebSession,
    csrf_ok,
    csrf_token,
    load_session,
    new_session,
    sign_session,
)

__all__ = ["install", "router"]

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=UiRoute)


# ---- login -----------------------------------------------------------------------------


def _login_page(
    request: Request, *, next_path: str, error: str = "", status_code: int = 200
) -> Response:
    """The login form, with a fresh anonymous session whose id the CSRF token signs."""
    token = admin_token(request)
    anonymous = load_session(token, request.cookies.get(LOGIN_COOKIE))
    if anonymous is None:
        anonymous = new_session(authenticated=False)
    request.state.web_session = None
    response = page(
        request,
        "login.html",
        status_code=status_code,
        title="Log in",
        login_csrf=csrf_token(token, anonymous),
        next_path=next_path,
        error=error,
    )
    # Its own cookie and path: visiting the login page never replaces a logged-in session.
    response.set_cookie(
        LOGIN_COOKIE,
        sign_session(token, anonymous),
        max_age=3600,
        path=f"{PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    """The login page; a logged-in person goes straight on."""
    if current_session(request) is not None:
        return redirect(safe_next(next))
    request.state.web_session = None
    return _login_page(request, next_path=safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token; on success start a server-side session (a new id).

    An address with too many failed logins (or API token checks) gets 429 before its
    form is read; a wrong token counts as one more failure.
    """
    token = admin_token(request)
    limiter = services(request).auth_limiter
    address = limiter.address(request.scope)
    wait = limiter.retry_after(address)
    if wait:
        response = _login_page(
            request,
            next_path=safe_next(""),
            error=f"Too many failed logins from this address. Try again in {wait} s.",
            status_code=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    form = parse_form(await request.body(), request.headers.get("content-type", ""))
    anonymous = load_session(token, request.cookies.get(LOGIN_COOKIE))
    if anonymous is None or not csrf_ok(token, anonymous, form.get("csrf_token")):
        raise CsrfRejected()
    next_path = safe_next(form.text("next"))
    if not matches(form.text("token"), token):
        limiter.failure(address)
        return _login_page(
            request,
            next_path=next_path,
            error="That is not the admin token (AAMI_ADMIN_TOKEN).",
            status_code=401,
        )
    response = redirect(next_path)
    set_session_cookie(response, request, await run_in_threadpool(start_session, request))
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout")
def logout(request: Request, _: FormDep, session: DbDep) -> Response:
    """End the session on the server (its cookie is dead even if replayed) and forget it."""
    web_session: WebSession = request.state.web_session
    end_session(request, session, web_session)
    response = redirect(f"{PREFIX}/login", "loggedout")
    response.delete_cookie(COOKIE_NAME, path=PREFIX)
    return response


# ---- dashboard -------------------------------------------------------------------------


def _counts(session: Any) -> dict[str, int]:
    return {
        "Groups": groups.list_groups(session, limit=1)[1],
        "Targets": targets.list_targets(session, limit=1)[1],
        "Alert templates": alerts.list_templates(session, limit=1)[1],
        "Alert rules": alerts.list_rules(session, limit=1)[1],
        "Script templates": checks.list_templates(session, limit=1)[1],
        "Script policies": checks.list_policies(session, limit=1)[1],
    }


def _severity_rank(severity: str) -> int:
    order = ("critical", "warning", "info")
    return order.index(severity) if severity in order else len(order)


@router.get("/")
def dashboard(request: Request, _: LoginDep, session: DbDep) -> Response:
    """Counts, scrape health, firing alerts, the last publish."""
    am = connect(request)
    held, am_problem = am.alerts(session)
    now_firing = firing(held)
    by_severity = Counter(a.labels.get("severity", "none") for a in now_firing)
    by_group = Counter(a.labels.get("group", a.labels.get("group_id", "—")) for a in now_firing)
    return page(
        request,
        "dashboard.html",
        nav="dashboard",
        title="Dashboard",
        counts=_counts(session),
        health=target_health(request),
        am_problem=am_problem,
        firing_count=len(now_firing),
        by_severity=sorted(by_severity.items(), key=lambda item: _severity_rank(item[0])),
        by_group=by_group.most_common(),
        latest=publishing.latest(session, Target.PROMETHEUS),
        sync=pages_publishing.sync_summary(request, session),
    )


for _module in (
    pages_inventory,
    pages_alerting,
    pages_checks,
    pages_publishing,
    pages_alerts,
    pages_silences,
    pages_registrations,
    pages_notifications,
    pages_audit,
    pages_tokens,
):
    router.include_router(_module.router)


@router.get("/{path:path}")
def not_found(path: str, _: LoginDep) -> Response:
    """Any other address under /ui."""
    raise NotFound(f"there is no page at {PREFIX}/{path}")


def install(app: FastAPI) -> None:
    """Serve the UI from ``app``: static files at /ui/static, pages under /ui. Idempotent."""
    if getattr(app.state, "web_ui_installed", False):
        return
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(router)
    app.state.web_ui_installed = True
