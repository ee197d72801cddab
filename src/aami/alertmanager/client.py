"""The one place that talks HTTP to Alertmanager (API v2 and /-/reload).

``ALERTMANAGER_URL`` may name several members of one Alertmanager gossip cluster. Reads
go to any member that answers: the one that answered last is asked first, and a member
that does not answer (connection refused, timeout, 5xx) hands the request to the next.
A write (a silence created or expired) goes to one member, and gossip carries it to the
others; it moves on to the next member only when the request never left (no connection),
so a silence is never made twice. Reloading and the config each member runs are asked of
every member by the config publisher (``members``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

__all__ = [
    "AlertmanagerClient",
    "AlertmanagerError",
    "AlertmanagerUnreachable",
    "split_urls",
]


def _is_silence_id(value: str) -> bool:
    """Alertmanager's silence ids are UUIDs; anything else never reaches a URL path."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def split_urls(value: str | Sequence[str]) -> list[str]:
    """The members in ``ALERTMANAGER_URL`` (comma-separated), without trailing slashes."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [part.strip().rstrip("/") for part in parts if part.strip()]


class AlertmanagerError(Exception):
    """Alertmanager answered, but not with what was asked; the message says why."""


class AlertmanagerUnreachable(AlertmanagerError):
    """Alertmanager does not answer. ``sent`` is False when the request never left (no
    connection), so repeating it elsewhere cannot do it twice."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


# The request never reached Alertmanager: another member may be asked to do it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)


class AlertmanagerClient:
    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.urls = split_urls(base_url)
        if not self.urls:
            raise ValueError("no Alertmanager URL")
        self._current = 0  # the member that answered last
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        if len(self.urls) == 1:
            self._http = httpx.Client(base_url=self.urls[0], timeout=timeout, transport=transport)
            self._members = [self]
        else:
            self._members = [
                AlertmanagerClient(url, timeout=timeout, transport=transport) for url in self.urls
            ]

    @property
    def base_url(self) -> str:
        """The member asked first: the one that answered last."""
        return self.urls[self._current]

    @property
    def clustered(self) -> bool:
        return len(self.urls) > 1

    @property
    def members(self) -> list[AlertmanagerClient]:
        """One client per member, in the order of ``ALERTMANAGER_URL`` (just this one when
        there is one)."""
        return list(self._members)

    def describe(self) -> str:
        """How messages name it: the URL, or every member's."""
        if not self.clustered:
            return f"Alertmanager at {self.urls[0]}"
        return f"the Alertmanager cluster ({', '.join(self.urls)})"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        for member in self._members:
            if member is not self:
                member.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to this one member."""
        assert self._http is not None, "a cluster client sends through its members"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AlertmanagerUnreachable(
                f"Alertmanager at {self.base_url} does not answer: {type(exc).__name__}",
                sent=not isinstance(exc, _NOT_SENT),
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

    def _request(
        self, method: str, path: str, *, write: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Ask the member that answered last, then the others in order. A write moves on
        only while the request never left: one that may have arrived is not repeated."""
        if self._http is not None:
            return self._send(method, path, **kwargs)
        with self._lock:
            start = self._current
        failures: list[str] = []
        for offset in range(len(self._members)):
            index = (start + offset) % len(self._members)
            try:
                response = self._members[index]._send(method, path, **kwargs)
            except AlertmanagerUnreachable as exc:
                if write and exc.sent:
                    raise
                failures.append(str(exc))
                continue
            with self._lock:
                self._current = index
            return response
        raise AlertmanagerUnreachable(
            "no member of the Alertmanager cluster answers: " + "; ".join(failures), sent=False
        )

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
        response = self._request("POST", "/api/v2/silences", write=True, json=body)
        return str(response.json()["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        if not _is_silence_id(silence_id):
            raise AlertmanagerError(f"{silence_id!r} is not a silence id (a UUID)")
        self._request("DELETE", f"/api/v2/silence/{silence_id}", write=True)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/api/v2/status").json()
        return result

    def reload(self) -> None:
        """Reload every member; the first failure is raised once all were asked."""
        failure: AlertmanagerError | None = None
        for member in self._members:
            try:
                member._send("POST", "/-/reload")
            except AlertmanagerError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def ready(self) -> bool:
        """Whether a member (any one of a cluster) is ready."""
        for member in self._members:
            assert member._http is not None
            try:
                if member._http.get("/-/ready", timeout=3).status_code == 200:
                    return True
            except httpx.HTTPError:
                continue
        return False
