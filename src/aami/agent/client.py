"""Talk to the AAMI server (the agent's only HTTP), and keep the last good check list.

Errors::

    ServerError                   the server could not give us what we asked for
     ├── ServerUnreachable        connection refused, timeout, 5xx: not the node's fault
     ├── ServerRejected           4xx (bad token, unknown target): carries the server's detail
     └── BadResponse              2xx/304 that does not match the contract
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import httpx

__all__ = [
    "BadResponse",
    "CachedChecks",
    "Check",
    "CheckList",
    "ChecksClient",
    "Registration",
    "ServerError",
    "ServerRejected",
    "ServerUnreachable",
    "SyncResult",
    "load_cache",
    "register",
    "save_cache",
    "sync_checks",
]

log = logging.getLogger("aami.agent")

USER_AGENT = "aami-agent"


class ServerError(Exception):
    """The server could not give us what we asked for."""


class ServerUnreachable(ServerError):
    """No usable answer: connection error, timeout or a 5xx."""


class ServerRejected(ServerError):
    """A 4xx answer; ``detail`` is the server's explanation."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class BadResponse(ServerError):
    """An answer that does not match the API contract."""


@dataclass(frozen=True, slots=True)
class Check:
    """One effective check as ``GET /api/v1/checks/...`` returns it."""

    name: str
    script_type: str
    script_content: str
    language: str
    config: dict[str, object]  # key order matters: it is the order of the script's argv
    version: str
    hash: str
    timeout_seconds: float

    @classmethod
    def from_json(cls, item: object) -> Check:
        """Build a check from one item of the API's list; ``BadResponse`` if malformed."""
        if not isinstance(item, dict):
            raise BadResponse("a check is not an object")
        name, content, digest = item.get("name"), item.get("script_content"), item.get("hash")
        if not isinstance(name, str) or not name:
            raise BadResponse("a check has no name")
        if not isinstance(content, str) or not isinstance(digest, str):
            raise BadResponse(f"check {name!r}: script_content and hash must be strings")
        config = item.get("config") or {}
        if not isinstance(config, dict):
            raise BadResponse(f"check {name!r}: config must be an object")
        timeout = item.get("timeout_seconds", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise BadResponse(f"check {name!r}: timeout_seconds must be a positive number")
        return cls(
            name=name,
            script_type=str(item.get("script_type") or ""),
            script_content=content,
            language=str(item.get("language") or ""),
            config={str(k): v for k, v in config.items()},
            version=str(item.get("version") or ""),
            hash=digest,
            timeout_seconds=float(timeout),
        )

    def to_json(self) -> dict[str, object]:
        """The check in the API's shape (for the cache)."""
        return {
            "name": self.name,
            "script_type": self.script_type,
            "script_content": self.script_content,
            "language": self.language,
            "config": self.config,
            "version": self.version,
            "hash": self.hash,
            "timeout_seconds": self.timeout_seconds,
        }


@dataclass(frozen=True, slots=True)
class CheckList:
    """A 200 answer: the checks and the ETag to send next time."""

    checks: list[Check]
    etag: str | None


@dataclass(frozen=True, slots=True)
class Registration:
    """What ``POST /api/v1/bootstrap/register`` returns."""

    target_id: str
    hostname: str
    group_ids: list[str]
    node_token: str


@dataclass(frozen=True, slots=True)
class CachedChecks:
    """The last good check list, its ETag and when it was last confirmed by the server."""

    checks: list[Check]
    etag: str | None
    synced_at: float


@dataclass(frozen=True, slots=True)
class SyncResult:
    """Where this run's checks came from.

    ``checks`` is None when neither the server nor the cache had a list. ``source`` is
    ``server`` (200), ``not_modified`` (304), ``cache`` (fallback) or ``none``.
    """

    checks: list[Check] | None
    source: Literal["server", "not_modified", "cache", "none"]
    server_reachable: bool
    sync_ok: bool
    last_sync: float | None
    message: str = ""


class ChecksClient:
    """HTTP client for the node-facing API, authenticated with the node token."""

    def __init__(
        self,
        server_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=server_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def fetch_checks(
        self, *, target_id: str | None, hostname: str, etag: str | None = None
    ) -> CheckList | None:
        """Fetch the node's effective checks; None means 304 (the cached list still holds)."""
        if target_id:
            url, params = f"/api/v1/checks/target/{quote(target_id, safe='')}", {}
        else:
            url, params = "/api/v1/checks/node", {"hostname": hostname}
        headers = {"If-None-Match": etag} if etag else {}
        response = _send(self._http, "GET", url, params=params, headers=headers)
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            raise BadResponse(f"unexpected status {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise BadResponse("the check list is not JSON") from None
        if not isinstance(document, list):
            raise BadResponse("the check list is not a JSON list")
        return CheckList([Check.from_json(item) for item in document], response.headers.get("etag"))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ChecksClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def register(
    server_url: str,
    bootstrap_token: str,
    *,
    hostname: str,
    ip_address: str,
    labels: Mapping[str, str],
    node_exporter_port: int,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> Registration:
    """Register this node with a bootstrap token and return its target id and node token."""
    body = {
        "hostname": hostname,
        "ip_address": ip_address,
        "labels": dict(labels),
        "node_exporter_port": node_exporter_port,
    }
    with httpx.Client(
        base_url=server_url.rstrip("/"),
        headers={"Authorization": f"Bearer {bootstrap_token}", "User-Agent": USER_AGENT},
        timeout=timeout,
        transport=transport,
    ) as http:
        response = _send(http, "POST", "/api/v1/bootstrap/register", body=body)
    if response.status_code not in (200, 201):
        raise BadResponse(f"unexpected status {response.status_code}")
    try:
        document = response.json()
        registration = Registration(
            target_id=str(document["target_id"]),
            hostname=str(document.get("hostname") or hostname),
            group_ids=[str(g) for g in document.get("group_ids") or []],
            node_token=str(document["node_token"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadResponse("the registration answer lacks target_id or node_token") from None
    if not registration.target_id or not registration.node_token:
        raise BadResponse("the registration answer lacks target_id or node_token")
    return registration


def sync_checks(
    client: ChecksClient,
    cache_path: Path,
    *,
    target_id: str | None,
    hostname: str,
    now: float | None = None,
) -> SyncResult:
    """Fetch the check list (with the cached ETag), falling back to the cache on any failure."""
    now = time.time() if now is None else now
    cached = load_cache(cache_path)
    etag = cached.etag if cached else None
    try:
        fetched = client.fetch_checks(target_id=target_id, hostname=hostname, etag=etag)
    except ServerError as exc:
        reachable = not isinstance(exc, ServerUnreachable)
        if isinstance(exc, ServerRejected):
            message = f"server refused the check list ({exc.status_code}): {exc.detail}"
        elif reachable:
            message = f"bad answer from the server: {exc}"
        else:
            message = f"server unreachable: {exc}"
        if cached is None:
            return SyncResult(None, "none", reachable, False, None, message + "; no cache")
        return SyncResult(
            cached.checks, "cache", reachable, False, cached.synced_at, message + "; using cache"
        )
    if fetched is None:
        if cached is None:  # we only send If-None-Match with a cache, so this is a server bug
            return SyncResult(None, "none", True, False, None, "304 without a cached list")
        save_cache(cache_path, CachedChecks(cached.checks, cached.etag, now))
        return SyncResult(cached.checks, "not_modified", True, True, now)
    save_cache(cache_path, CachedChecks(fetched.checks, fetched.etag, now))
    return SyncResult(fetched.checks, "server", True, True, now)


def load_cache(path: Path) -> CachedChecks | None:
    """Read the cached check list; None if there is none or it is unreadable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        checks = [Check.from_json(item) for item in document["checks"]]
        etag = document.get("etag")
        synced_at = float(document["synced_at"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, BadResponse) as exc:
        log.warning("ignoring unreadable check cache %s: %s", path, exc)
        return None
    return CachedChecks(checks, etag if isinstance(etag, str) else None, synced_at)


def save_cache(path: Path, cached: CachedChecks) -> None:
    """Write the check list cache atomically (mode 0600: scripts may be private)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {
        "etag": cached.etag,
        "synced_at": cached.synced_at,
        "checks": [check.to_json() for check in cached.checks],
    }
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)  # rename(2) is atomic: a crash never leaves half a cache
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _send(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: object = None,
) -> httpx.Response:
    """Send a request, mapping transport errors, 5xx and 4xx to ``ServerError``s."""
    try:
        response = http.request(method, url, params=params, headers=headers, json=body)
    except httpx.TimeoutException:
        raise ServerUnreachable(f"{http.base_url} timed out") from None
    except httpx.HTTPError as exc:
        raise ServerUnreachable(f"cannot reach {http.base_url}: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise ServerUnreachable(f"{http.base_url} answered {response.status_code}")
    if 400 <= response.status_code < 500:
        raise ServerRejected(response.status_code, _detail(response))
    return response


def _detail(response: httpx.Response) -> str:
    """The server's ``detail`` (its error contract), else a short reason phrase."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("detail"):
        detail = document["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail)
    return response.reason_phrase or f"HTTP {response.status_code}"
