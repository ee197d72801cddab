"""The UI's way to Alertmanager: through the alerts and silences services, reachable or
not. Every call returns ``(value, problem)``: a page shows the value, or the problem in
place of it. An app without an Alertmanager client says so instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx
from fastapi import Request
from sqlalchemy.orm import Session

from aami.alertmanager import alerts, silences
from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.schemas import AlertRead, SilenceRead
from aami.api.state import services
from aami.config import Settings
from aami.errors import Unavailable

__all__ = ["NOT_INSTALLED", "Alertmanager", "connect", "firing"]

NOT_INSTALLED = "Alertmanager support not installed"

T = TypeVar("T")


class Alertmanager:
    """This app's Alertmanager client and settings, as the pages use them."""

    def __init__(self, client: AlertmanagerClient | None, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    @property
    def installed(self) -> bool:
        return self.client is not None

    def _ask(self, call: Callable[[AlertmanagerClient], T]) -> tuple[T | None, str | None]:
        if self.client is None:
            return None, NOT_INSTALLED
        try:
            return call(self.client), None
        except Unavailable as exc:
            return None, f"Alertmanager unreachable: {exc.detail}"
        except httpx.HTTPError as exc:
            return None, f"Alertmanager unreachable: {type(exc).__name__}"

    def alerts(
        self,
        session: Session,
        *,
        group: str | None = None,
        severity: str | None = None,
        target: str | None = None,
        shown: alerts.Shown | None = None,
    ) -> tuple[list[AlertRead], str | None]:
        """Alerts Alertmanager holds, filtered like the API (group, severity, target, and
        which of active, silenced and inhibited are ``shown``).

        The session lets the service accept a group's name or a target's id as well.
        """
        found, problem = self._ask(
            lambda client: alerts.list_alerts(
                client,
                group=group,
                severity=severity,
                target=target,
                session=session,
                shown=shown,
            )
        )
        return list(found or []), problem

    def silences(self, session: Session) -> tuple[list[SilenceRead], str | None]:
        found, problem = self._ask(lambda client: silences.list_silences(client, session))
        return list(found or []), problem

    def silence(
        self, session: Session, *, kind: str, value: str, actor: str, hours: float, comment: str
    ) -> tuple[SilenceRead | None, str | None]:
        """Silence a target or a group; guardrail refusals (Invalid) propagate."""
        settings = self.settings
        if kind == "group":
            return self._ask(
                lambda client: silences.silence_group(
                    session,
                    client,
                    settings,
                    actor=actor,
                    group=value,
                    hours=hours,
                    comment=comment,
                )
            )
        return self._ask(
            lambda client: silences.silence_target(
                session,
                client,
                settings,
                actor=actor,
                target=value,
                hours=hours,
                comment=comment,
            )
        )

    def expire(self, session: Session, silence_id: str, *, actor: str) -> tuple[None, str | None]:
        _, problem = self._ask(
            lambda client: silences.expire_silence(session, client, silence_id, actor=actor)
        )
        return None, problem


def connect(request: Request) -> Alertmanager:
    """The Alertmanager access of this request's app."""
    app = services(request)
    return Alertmanager(app.alertmanager, app.settings)


def firing(found: list[AlertRead]) -> list[AlertRead]:
    """Alerts that notify: active, neither silenced nor inhibited."""
    return [a for a in found if a.state == "active"]
