"""The one place that talks HTTP to Alertmanager (API v2 and /-/reload)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

__all__ = ["AlertmanagerClient", "AlertmanagerError", "AlertmanagerUnreachable"]


def _is_silence_id(value: str) -> bool:
    """Alertmanager's silence ids are UUIDs; anything else never reaches a URL path."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class AlertmanagerError(Exception):
    """Alertmanager answered, but not with what was asked; the message says why."""


class AlertmanagerUnreachable(AlertmanagerError):
    """Alertmanager does not answer."""


class AlertmanagerClient:
    def __init__(
        self, base_url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AlertmanagerUnreachable(
                f"Alertmanager at {self.base_url} does not answer: {type(exc).__name__}"
            ) from None
        if response.status_code >= 500:
            raise AlertmanagerUnreachable(
                f"Alertmanager at {self.base_url} answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        if response.status_code >= 400:
            raise AlertmanagerError(
                f"Alertmanager refused {method} {path} ({response.status_code}): "
                f"{response.text.strip()[:500]}"
            )
        return response

    def alerts(
        self,
        *,
        filters: list[str] | None = None,
        receiver: str | None = None,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
    ) -> list[dict[str, Any]]:
        """GET /api/v2/alerts; ``filters`` are matchers such as ``severity="critical"``."""
        params: list[tuple[str, str]] = [
            ("active", str(active).lower()),
            ("silenced", str(silenced).lower()),
            ("inhibited", str(inhibited).lower()),
        ]
        params += [("filter", f) for f in filters or []]
        if receiver:
            params.append(("receiver", receiver))
        result: list[dict[str, Any]] = self._request("GET", "/api/v2/alerts", params=params).json()
        return result

    def alert_groups(self, *, filters: list[str] | None = None) -> list[dict[str, Any]]:
        params = [("filter", f) for f in filters or []]
        result: list[dict[str, Any]] = self._request(
            "GET", "/api/v2/alerts/groups", params=params
        ).json()
        return result

    def silences(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/api/v2/silences").json()
        return result

    def silence(self, silence_id: str) -> dict[str, Any] | None:
        """The silence, or None when Alertmanager has none with this id (or it is no id)."""
        if not _is_silence_id(silence_id):
            return None
        try:
            result: dict[str, Any] = self._request("GET", f"/api/v2/silence/{silence_id}").json()
        except AlertmanagerError as exc:
            if isinstance(exc, AlertmanagerUnreachable):
                raise
            return None
        return result

    def create_silence(self, body: dict[str, Any]) -> str:
        response = self._request("POST", "/api/v2/silences", json=body)
        return str(response.json()["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        if not _is_silence_id(silence_id):
            raise AlertmanagerError(f"{silence_id!r} is not a silence id (a UUID)")
        self._request("DELETE", f"/api/v2/silence/{silence_id}")

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/api/v2/status").json()
        return result

    def reload(self) -> None:
        self._request("POST", "/-/reload")

    def ready(self) -> bool:
        try:
            return self._http.get("/-/ready", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False
