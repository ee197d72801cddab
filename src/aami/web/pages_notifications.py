"""Notification channels (receivers) and routes, and the route tester: "where would an alert
with these labels go?", answered by Alertmanager's own routing (amtool) on the config AAMI
renders. A channel's secret is write-only: the pages say whether one is set, never what."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from aami.alertmanager import notifications
from aami.alertmanager.models import NotificationChannel, NotificationRoute
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alertmanager.rendering import ALLOWED_SETTINGS
from aami.alertmanager.schemas import (
    ChannelCreate,
    ChannelUpdate,
    Matcher,
    RouteCreate,
    RouteTestRequest,
    RouteTestResult,
    RouteUpdate,
)
from aami.api.state import services
from aami.errors import AamiError
from aami.web.common import (
    ACTOR,
    PREFIX,
    DbDep,
    FormDep,
    LoginDep,
    UiRoute,
    attempt,
    done,
    page,
    redirect,
)
from aami.web.forms import (
    Errors,
    FieldError,
    FormData,
    format_kv,
    parse_bool,
    parse_kv,
    validation_errors,
)

router = APIRouter(route_class=UiRoute)

CHANNEL_FIELDS = ("name", "type", "settings", "secret")
ROUTE_FIELDS = (
    "name",
    "matchers",
    "receiver",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "continue",
    "position",
)
CHANNEL_TYPES = tuple(ALLOWED_SETTINGS)
_MATCHER = re.compile(r"^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)$")
_ESCAPE = re.compile(r"\\(.)")
_POSITION = re.compile(r"^-?\d{1,9}$")
_MAX_LABELS_TEXT = 60_000


def _publisher(request: Request) -> AlertmanagerPublisher:
    return services(request).alertmanager_publisher


# ---- reading forms ---------------------------------------------------------------------


def _setting(key: str, value: str, expected: type | tuple[type, ...] | None) -> Any:
    if expected is bool:
        parsed = parse_bool(value)
        if parsed is None:
            raise FieldError("settings", f"{key}: {value!r} is not true or false")
        return parsed
    if expected is int:
        if not value.isdigit() or len(value) > 9:
            raise FieldError("settings", f"{key}: {value!r} is not a whole number")
        return int(value)
    return value


def parse_settings(text: str, kind: str) -> dict[str, Any]:
    """``key=value`` lines as a channel's settings, each typed as its type expects."""
    allowed = ALLOWED_SETTINGS.get(kind, {})
    return {
        key: _setting(key, value, allowed.get(key))
        for key, value in parse_kv(text, "settings").items()
    }


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _ESCAPE.sub(r"\1", value[1:-1])
    return value


def parse_matchers(text: str) -> list[dict[str, Any]]:
    """Matcher lines (``severity="critical"``, ``group=~"prod.*"``, ``team!=ml``)."""
    found: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _MATCHER.match(line)
        if match is None:
            raise FieldError(
                "matchers",
                f"line {number}: {line[:80]!r} is not name=value, name!=value, "
                "name=~regex or name!~regex (the name a label name)",
            )
        name, op, value = match.groups()
        found.append(
            {
                "name": name,
                "value": _unquote(value.strip()),
                "is_regex": "~" in op,
                "is_equal": op in ("=", "=~"),
            }
        )
    return found


def _place(errors: Errors) -> Errors:
    """A service's message about ``settings.x`` goes next to the settings field."""
    top = errors.get("", "")
    for field in ("settings", "matchers", "group_by"):
        if top.startswith(f"{field}.") or top.startswith(f"{field}["):
            errors[field] = errors.pop("")
    return errors


def _read_channel(form: FormData, kind: str) -> tuple[dict[str, str], dict[str, Any], Errors]:
    # The secret is never sent back into the form, even when the form comes back with errors.
    values = {name: form.get(name) for name in ("name", "type", "settings")}
    errors: Errors = {}
    data: dict[str, Any] = {}
    try:
        data["settings"] = parse_settings(form.get("settings"), kind)
    except FieldError as exc:
        errors[exc.field] = exc.message
    if form.get("secret"):
        data["secret"] = form.get("secret")
    elif form.has("remove_secret"):
        data["secret"] = None
    return values, data, errors


def _position(form: FormData, errors: Errors) -> int | None:
    text = form.text("position")
    if not text:
        return None
    if not _POSITION.match(text):
        errors["position"] = f"{text[:20]!r} is not a whole number"
        return None
    return int(text)


def _read_route(form: FormData) -> tuple[dict[str, str], dict[str, Any], Errors]:
    values = {name: form.get(name) for name in ROUTE_FIELDS if form.has(name)}
    values["continue"] = "on" if form.has("continue") else ""
    errors: Errors = {}
    data: dict[str, Any] = {
        "receiver": form.text("receiver"),
        "group_by": [g.strip() for g in form.get("group_by").split(",") if g.strip()] or None,
        "continue": form.has("continue"),
    }
    for name in ("group_wait", "group_interval", "repeat_interval"):
        data[name] = form.text(name) or None
    position = _position(form, errors)
    if position is not None:
        data["position"] = position
    try:
        data["matchers"] = parse_matchers(form.get("matchers"))
    except FieldError as exc:
        errors[exc.field] = exc.message
    return values, data, errors


# ---- values shown in forms -------------------------------------------------------------


def _setting_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _channel_values(channel: NotificationChannel) -> dict[str, str]:
    return {
        "name": channel.name,
        "type": channel.type,
        "settings": format_kv({k: _setting_text(v) for k, v in channel.settings.items()}),
    }


def _route_values(route: NotificationRoute | None) -> dict[str, str]:
    if route is None:
        return {"position": "100", "continue": ""}
    return {
        "name": route.name,
        "matchers": "\n".join(Matcher.model_validate(m).promql() for m in route.matchers),
        "receiver": route.receiver.name,
        "group_by": ", ".join(route.group_by or []),
        "group_wait": route.group_wait or "",
        "group_interval": route.group_interval or "",
        "repeat_interval": route.repeat_interval or "",
        "continue": "on" if route.continue_ else "",
        "position": str(route.position),
    }


# ---- the overview and the route tester -------------------------------------------------


def _test(
    request: Request, session: Session, text: str
) -> tuple[RouteTestResult | None, Errors, int]:
    if len(text) > _MAX_LABELS_TEXT:
        return None, {"labels": f"at most {_MAX_LABELS_TEXT} characters"}, 422
    try:
        data = RouteTestRequest(labels=parse_kv(text, "labels"))
    except FieldError as exc:
        return None, {exc.field: exc.message}, 422
    except ValidationError as exc:
        return None, validation_errors(exc, ("labels",)), 422
    try:
        return notifications.explain_route(session, _publisher(request), data), {}, 200
    except AamiError as exc:
        return None, {"": exc.detail}, exc.status_code


@router.get("/notifications")
def notifications_page(request: Request, _: LoginDep, session: DbDep) -> Response:
    """Channels, routes, and the route tester (``?labels=`` runs it)."""
    result: RouteTestResult | None = None
    errors: Errors = {}
    status = 200
    labels = request.query_params.get("labels")
    if labels is not None:
        result, errors, status = _test(request, session, labels)
    routes = [notifications.read_route(r) for r in notifications.list_routes(session)]
    return page(
        request,
        "notifications/index.html",
        status_code=status,
        nav="notifications",
        title="Notifications",
        channels=[notifications.read_channel(c) for c in notifications.list_channels(session)],
        routes=routes,
        route_ids={r.name: r.id for r in routes},
        managed=_publisher(request).managed,
        values={"labels": labels or ""},
        errors=errors,
        result=result,
    )


# ---- channels ---------------------------------------------------------------------------


def _settings_help(kind: str | None) -> str:
    kinds = [kind] if kind in ALLOWED_SETTINGS else list(ALLOWED_SETTINGS)
    keys = "; ".join(f"{k}: {', '.join(ALLOWED_SETTINGS[k])}" for k in kinds)
    return f"One key=value per line. Keys ({keys}); true/false for yes-or-no settings."


def _channel_form(
    request: Request,
    channel: NotificationChannel | None,
    *,
    values: dict[str, str],
    errors: Errors,
    delete_error: str = "",
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "notifications/channel.html",
        status_code=status_code,
        nav="notifications",
        title=f"Channel {channel.name}" if channel else "New notification channel",
        channel=notifications.read_channel(channel) if channel else None,
        values=values,
        errors=errors,
        delete_error=delete_error,
        types=CHANNEL_TYPES,
        settings_help=_settings_help(channel.type if channel else None),
    )


@router.get("/notifications/channels/new")
def channel_new(request: Request, _: LoginDep) -> Response:
    return _channel_form(request, None, values={"type": "webhook"}, errors={})


@router.post("/notifications/channels/new")
def channel_create(request: Request, form: FormDep, session: DbDep) -> Response:
    """Add a channel; amtool checks the config it makes before it is saved."""
    values, data, errors = _read_channel(form, form.text("type"))
    data.update(name=form.text("name"), type=form.text("type"))
    status = 422
    if not errors:
        channel, errors, status = attempt(
            session,
            lambda: notifications.create_channel(
                session, _publisher(request), actor=ACTOR, data=ChannelCreate.model_validate(data)
            ),
            CHANNEL_FIELDS,
        )
        if channel is not None:
            return redirect(f"{PREFIX}/notifications/channels/{channel.id}", "created")
    return _channel_form(request, None, values=values, errors=_place(errors), status_code=status)


@router.get("/notifications/channels/{ref}")
def channel_detail(request: Request, ref: str, _: LoginDep, session: DbDep) -> Response:
    channel = notifications.get_channel_or_raise(session, ref)
    return _channel_form(request, channel, values=_channel_values(channel), errors={})


@router.post("/notifications/channels/{ref}")
def channel_update(request: Request, ref: str, form: FormDep, session: DbDep) -> Response:
    """Change a channel's settings; a secret typed here replaces the one it has."""
    channel = notifications.get_channel_or_raise(session, ref)
    values, data, errors = _read_channel(form, channel.type)
    values.update(name=channel.name, type=channel.type)
    status = 422
    if not errors:
        updated, errors, status = attempt(
            session,
            lambda: notifications.update_channel(
                session,
                _publisher(request),
                actor=ACTOR,
                channel=channel,
                data=ChannelUpdate.model_validate(data),
            ),
            CHANNEL_FIELDS,
        )
        if updated is not None:
            return redirect(f"{PREFIX}/notifications/channels/{updated.id}", "saved")
    return _channel_form(request, channel, values=values, errors=_place(errors), status_code=status)


@router.post("/notifications/channels/{ref}/delete")
def channel_delete(request: Request, ref: str, _: FormDep, session: DbDep) -> Response:
    """Delete a channel no route uses; one in use stays, and the page says which routes."""
    channel = notifications.get_channel_or_raise(session, ref)
    _done, errors, status = attempt(
        session,
        done(
            lambda: notifications.delete_channel(
                session, _publisher(request), actor=ACTOR, channel=channel
            )
        ),
        (),
    )
    if errors:
        return _channel_form(
            request,
            channel,
            values=_channel_values(channel),
            errors={},
            delete_error=errors[""],
            status_code=status,
        )
    return redirect(f"{PREFIX}/notifications", "deleted")


# ---- routes -----------------------------------------------------------------------------


def _route_form(
    request: Request,
    session: Session,
    route: NotificationRoute | None,
    *,
    values: dict[str, str],
    errors: Errors,
    delete_error: str = "",
    status_code: int = 200,
) -> Response:
    channels = notifications.list_channels(session)
    return page(
        request,
        "notifications/route.html",
        status_code=status_code,
        nav="notifications",
        title=f"Route {route.name}" if route else "New notification route",
        route=notifications.read_route(route) if route else None,
        values=values,
        errors=errors,
        delete_error=delete_error,
        receivers=[(c.name, c.name) for c in channels],
    )


@router.get("/notifications/routes/new")
def route_new(request: Request, _: LoginDep, session: DbDep) -> Response:
    return _route_form(request, session, None, values=_route_values(None), errors={})


@router.post("/notifications/routes/new")
def route_create(request: Request, form: FormDep, session: DbDep) -> Response:
    """Add a route, tried before the shipped config's routes in ``position`` order."""
    values, data, errors = _read_route(form)
    data["name"] = form.text("name")
    status = 422
    if not errors:
        route, errors, status = attempt(
            session,
            lambda: notifications.create_route(
                session, _publisher(request), actor=ACTOR, data=RouteCreate.model_validate(data)
            ),
            ROUTE_FIELDS,
        )
        if route is not None:
            return redirect(f"{PREFIX}/notifications/routes/{route.id}", "created")
    return _route_form(
        request, session, None, values=values, errors=_place(errors), status_code=status
    )


@router.get("/notifications/routes/{route_id}")
def route_detail(request: Request, route_id: str, _: LoginDep, session: DbDep) -> Response:
    route = notifications.get_route_or_raise(session, route_id)
    return _route_form(request, session, route, values=_route_values(route), errors={})


@router.post("/notifications/routes/{route_id}")
def route_update(request: Request, route_id: str, form: FormDep, session: DbDep) -> Response:
    route = notifications.get_route_or_raise(session, route_id)
    values, data, errors = _read_route(form)
    values["name"] = route.name
    status = 422
    if not errors:
        updated, errors, status = attempt(
            session,
            lambda: notifications.update_route(
                session,
                _publisher(request),
                actor=ACTOR,
                route=route,
                data=RouteUpdate.model_validate(data),
            ),
            ROUTE_FIELDS,
        )
        if updated is not None:
            return redirect(f"{PREFIX}/notifications/routes/{updated.id}", "saved")
    return _route_form(
        request, session, route, values=values, errors=_place(errors), status_code=status
    )


@router.post("/notifications/routes/{route_id}/delete")
def route_delete(request: Request, route_id: str, _: FormDep, session: DbDep) -> Response:
    route = notifications.get_route_or_raise(session, route_id)
    _done, errors, status = attempt(
        session,
        done(
            lambda: notifications.delete_route(
                session, _publisher(request), actor=ACTOR, route=route
            )
        ),
        (),
    )
    if errors:
        return _route_form(
            request,
            session,
            route,
            values=_route_values(route),
            errors={},
            delete_error=errors[""],
            status_code=status,
        )
    return redirect(f"{PREFIX}/notifications", "deleted")
