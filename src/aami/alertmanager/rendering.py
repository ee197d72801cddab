"""Managed receivers and routes on top of the shipped Alertmanager config (pure).

Channel settings are whitelisted per type: a setting that Alertmanager would read as a
file path or an arbitrary HTTP option cannot come from the API. Secrets go to files of
their own (``api_url_file``, ``routing_key_file``, ``auth_password_file``,
``credentials_file``), never into the config text.

With ``history`` (AAMI_HISTORY_WEBHOOK_URL and AAMI_HISTORY_TOKEN set), the config also
sends every alert to AAMI's alert-history webhook: a receiver ``aami-history`` and the
first route under the root, with no matchers (it matches every alert), ``group_by:
['...']`` (each alert its own group, so each transition is reported on its own) and
``continue: true``. A matched child keeps its parent from being a match, so the root's
other routes move one level down, under a route with no matchers and the root's receiver:
an alert no route matches still goes to the root's receiver, as without the history.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ALLOWED_SETTINGS",
    "HISTORY_RECEIVER",
    "ChannelSpec",
    "ConfigError",
    "HistorySpec",
    "RouteSpec",
    "history_receiver",
    "history_route",
    "render_config",
    "route_with_history",
]

HISTORY_RECEIVER = "aami-history"

ALLOWED_SETTINGS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "webhook": {"url": str, "send_resolved": bool, "max_alerts": int},
    "slack": {"channel": str, "username": str, "title": str, "text": str, "send_resolved": bool},
    "email": {
        "to": str,
        "from": str,
        "smarthost": str,
        "auth_username": str,
        "hello": str,
        "require_tls": bool,
        "send_resolved": bool,
    },
    "pagerduty": {"severity": str, "client": str, "send_resolved": bool},
}
_SECRET_FIELD = {
    "slack": "api_url_file",
    "pagerduty": "routing_key_file",
    "email": "auth_password_file",
}
_NEEDS_SECRET = {"slack": "the Slack webhook URL", "pagerduty": "the PagerDuty routing key"}
_REQUIRED = {"webhook": ("url",), "email": ("to",)}


class ConfigError(ValueError):
    """Managed notification config that cannot be rendered; the message says why."""


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    type: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    has_secret: bool = False


@dataclass(frozen=True, slots=True)
class RouteSpec:
    name: str
    receiver: str
    matchers: tuple[str, ...]
    position: int = 100
    continue_: bool = False
    group_by: tuple[str, ...] | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None


@dataclass(frozen=True, slots=True)
class HistorySpec:
    """AAMI's alert-history webhook as Alertmanager reaches it."""

    url: str
    credentials_file: str
    ca_file: str | None = None


def history_receiver(spec: HistorySpec) -> dict[str, Any]:
    """The receiver that posts to AAMI's history webhook with the history token (read
    from a file, written ``type: Bearer``)."""
    http_config: dict[str, Any] = {
        "authorization": {"type": "Bearer", "credentials_file": spec.credentials_file}
    }
    if spec.ca_file:
        http_config["tls_config"] = {"ca_file": spec.ca_file}
    return {
        "name": HISTORY_RECEIVER,
        "webhook_configs": [{"url": spec.url, "send_resolved": True, "http_config": http_config}],
    }


def history_route() -> dict[str, Any]:
    """Every alert, one per group, to the history receiver; later routes still match."""
    return {"receiver": HISTORY_RECEIVER, "group_by": ["..."], "continue": True}


def route_with_history(root: Mapping[str, Any]) -> dict[str, Any]:
    """The root route with the history route first and its own routes one level down,
    under a catch-all with the root's receiver (so the root's receiver still gets what no
    other route matches)."""
    rest: dict[str, Any] = {"receiver": root.get("receiver")}
    if root.get("routes"):
        rest["routes"] = list(root["routes"])
    return {**root, "routes": [history_route(), rest]}


def check_channel(spec: ChannelSpec) -> None:
    """Raise ConfigError if the channel's settings are not acceptable."""
    allowed = ALLOWED_SETTINGS[spec.type]
    for key, value in spec.settings.items():
        if key not in allowed:
            raise ConfigError(
                f"settings.{key} is not a {spec.type} setting AAMI manages "
                f"(allowed: {', '.join(sorted(allowed))})"
            )
        if not isinstance(value, allowed[key]) or (allowed[key] is int and isinstance(value, bool)):
            raise ConfigError(f"settings.{key} has the wrong type")
    for key in _REQUIRED.get(spec.type, ()):
        if not spec.settings.get(key):
            raise ConfigError(f"settings.{key} is required for a {spec.type} channel")
    if spec.type in _NEEDS_SECRET and not spec.has_secret:
        raise ConfigError(f"secret: a {spec.type} channel needs {_NEEDS_SECRET[spec.type]}")
    url = spec.settings.get("url")
    if url is not None and not str(url).startswith(("http://", "https://")):
        raise ConfigError("settings.url must be an http:// or https:// URL")


def _receiver(spec: ChannelSpec, secrets_dir: Path) -> dict[str, Any]:
    check_channel(spec)
    body: dict[str, Any] = {"send_resolved": True, **spec.settings}
    secret_file = str(secrets_dir / spec.name)
    if spec.type == "webhook":
        if spec.has_secret:
            body["http_config"] = {"authorization": {"credentials_file": secret_file}}
        return {"name": spec.name, "webhook_configs": [body]}
    if spec.has_secret:
        body[_SECRET_FIELD[spec.type]] = secret_file
    return {"name": spec.name, f"{spec.type}_configs": [body]}


def _route(spec: RouteSpec) -> dict[str, Any]:
    route: dict[str, Any] = {"receiver": spec.receiver, "matchers": list(spec.matchers)}
    if spec.group_by is not None:
        route["group_by"] = list(spec.group_by)
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if getattr(spec, key) is not None:
            route[key] = getattr(spec, key)
    route["continue"] = spec.continue_
    return route


def render_config(
    base: Mapping[str, Any],
    channels: Iterable[ChannelSpec],
    routes: Iterable[RouteSpec],
    *,
    secrets_dir: Path,
    history: HistorySpec | None = None,
) -> dict[str, Any]:
    """The full Alertmanager config: managed receivers appended, managed routes first,
    and with ``history`` the history receiver and its route before all of them."""
    config = copy.deepcopy(dict(base))
    receivers = list(config.get("receivers") or [])
    shipped = {r["name"] for r in receivers}
    if history is not None:
        if HISTORY_RECEIVER in shipped:
            raise ConfigError(
                f"the shipped config defines a receiver named {HISTORY_RECEIVER!r}, which AAMI "
                "adds itself when AAMI_HISTORY_WEBHOOK_URL is set; remove one of them"
            )
        receivers.append(history_receiver(history))
        shipped.add(HISTORY_RECEIVER)
    managed = []
    for channel in sorted(channels, key=lambda c: c.name):
        if channel.name in shipped:
            raise ConfigError(
                f"name: receiver {channel.name!r} is defined by the shipped config; pick "
                "another name"
            )
        managed.append(_receiver(channel, secrets_dir))
    config["receivers"] = receivers + managed
    known = shipped | {r["name"] for r in managed}
    ordered = sorted(routes, key=lambda r: (r.position, r.name))
    for route in ordered:
        if route.receiver not in known:
            raise ConfigError(f"receiver: no receiver named {route.receiver!r}")
    root = dict(config.get("route") or {})
    root["routes"] = [_route(r) for r in ordered] + list(root.get("routes") or [])
    config["route"] = route_with_history(root) if history is not None else root
    return config
