"""The UI's way to the Alertmanager service: installed or not, reachable or not.

``aami.alertmanager.service`` is imported when a page needs it, so the UI renders (and
says so) on a server built without it. Every call returns ``(value, problem)``: a page
shows the value, or the problem in place of it.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

import httpx
from fastapi import Request

from aami.errors import Unavailable

__all__ = ["NOT_INSTALLED", "Alertmanager", "connect", "firing"]

log = logging.getLogger(__name__)

NOT_INSTALLED = "Alertmanager support not installed"
_MODULE = "aami.alertmanager.service"


def _service() -> ModuleType | None:
    try:
        return importlib.import_module(_MODULE)
    except ModuleNotFoundError as exc:
        # Only the module's own absence means "not installed"; a missing import inside it
        # is a bug that must show.
        if exc.name in ("aami.alertmanager", _MODULE):
            return None
        raise


class Alertmanager:
    """The service module and the client of this app, when both exist."""

    def __init__(self, service: ModuleType | None, client: Any, settings: Any) -> None:
        self.service = service
        self.client = client
        self.settings = settings

    @property
    def installed(self) -> bool:
        return self.service is not None and self.client is not None

    def _call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
        if not self.installed:
            return None, NOT_INSTALLED
        try:
            return getattr(self.service, name)(*args, **kwargs), None
        except Unavailable as exc:
            return None, f"Alertmanager unreachable: {exc.detail}"
        except httpx.HTTPError as exc:
            return None, f"Alertmanager unreachable: {type(exc).__name__}"

    def alerts(self, session: Any, **filters: str | None) -> tuple[list[Any], str | None]:
        """Alerts Alertmanager holds, filtered like the API (group, severity, target).

        The session lets the service accept a group's name or a target's id as well.
        """
        found, problem = self._call("list_alerts", self.client, session=session, **filters)
        return list(found or []), problem

    def silences(self, session: Any) -> tuple[list[Any], str | None]:
        found, problem = self._call("list_silences", self.client, session=session)
        return list(found or []), problem

    def silence(
        self, session: Any, *, kind: str, value: str, actor: str, hours: float, comment: str
    ) -> tuple[Any, str | None]:
        """Silence a target or a group; guardrail refusals (Invalid) propagate."""
        if kind == "group":
            return self._call(
                "silence_group",
                session,
                self.client,
                self.settings,
                actor=actor,
                group=value,
                hours=hours,
                comment=comment,
            )
        return self._call(
            "silence_target",
            session,
            self.client,
            self.settings,
            actor=actor,
            target=value,
            hours=hours,
            comment=comment,
        )

    def expire(self, session: Any, silence_id: str, *, actor: str) -> tuple[None, str | None]:
        _, problem = self._call("expire_silence", session, self.client, silence_id, actor=actor)
        return None, problem


def connect(request: Request) -> Alertmanager:
    """The Alertmanager access of this request's app."""
    state = request.app.state
    return Alertmanager(_service(), getattr(state, "alertmanager", None), state.settings)


def firing(alerts: list[Any]) -> list[Any]:
    """Alerts that notify: active, neither silenced nor inhibited."""
    return [a for a in alerts if getattr(a, "state", "active") == "active"]
