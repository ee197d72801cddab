"""Talk to the AAMI server (the agent's only HTTP), and keep the last good check list.

Errors::

    ServerError                   the server could not give us what we asked for
     ├── ServerUnreachable        connection refused, timeout, 5xx: not the node's fault
     │    └── TlsFailure          the handshake failed: certificate not trusted, wrong name
     ├── ServerRejected           4xx (bad token, unknown target): carries the server's detail
     ├── BadResponse              2xx/304 that does not match the contract
     └── InsecureUrl              an http:// server without insecure_http: nothing is sent

TLS: the server's certificate is verified against ``ca_file`` (else the system's CAs, or
``SSL_CERT_FILE``); ``http://`` is refused before any byte leaves unless ``insecure_http``
says otherwise, because the node token and the scripts (run as root) would travel in clear.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import httpx

from aami.agent.signing import KeysError, OfferedKey, Signature, check_message, parse_key_document

__all__ = [
    "BadResponse",
    "CachedChecks",
    "Check",
    "CheckList",
    "ChecksClient",
    "InsecureUrl",
    "Registration",
    "ServerError",
    "ServerRejected",
    "ServerUnreachable",
    "SyncResult",
    "TlsFailure",
    "fetch_signing_keys",
    "load_cache",
    "poll_registration",
    "register",
    "save_cache",
    "sync_checks",
    "tls_verify",
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


class TlsFailure(ServerUnreachable):
    """The TLS handshake failed: the server is not the one ``ca_file`` vouches for."""


class InsecureUrl(ServerError):
    """A plain ``http://`` server while ``insecure_http`` is off: nothing was sent."""

    def __init__(self, server_url: str) -> None:
        super().__init__(
            f"refusing plain HTTP to {server_url}: the node token and the check scripts "
            "would travel unprotected; use an https:// server_url (with ca_file), or set "
            "insecure_http (--insecure-http) to allow it"
        )


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
    signatures: tuple[Signature, ...] = ()

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
        signatures = item.get("signatures") or []
        try:
            if not isinstance(signatures, list):
                raise ValueError("signatures must be a list")
            parsed = tuple(Signature.from_json(signature) for signature in signatures)
        except ValueError as exc:
            raise BadResponse(f"check {name!r}: {exc}") from None
        return cls(
            name=name,
            script_type=str(item.get("script_type") or ""),
            script_content=content,
            language=str(item.get("language") or ""),
            config={str(k): v for k, v in config.items()},
            version=str(item.get("version") or ""),
            hash=digest,
            timeout_seconds=float(timeout),
            signatures=parsed,
        )

    def message(self) -> bytes:
        """The bytes its signatures are over (``aami.agent.signing.check_message``)."""
        return check_message(
            name=self.name,
            script_type=self.script_type,
            language=self.language,
            version=self.version,
            hash=self.hash,
            timeout_seconds=self.timeout_seconds,
            config=self.config,
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
            "signatures": [signature.to_json() for signature in self.signatures],
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
class PendingRegistration:
    """A 202 from ``POST /api/v1/bootstrap/register``: an admin must approve first; the
    node polls with ``poll_token`` until then."""

    registration_id: str
    hostname: str
    poll_token: str
    reasons: list[str]
    expires_at: str
    poll_interval: float


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
    error: str | None = None  # insecure_http, tls, unreachable, rejected or bad_response


class ChecksClient:
    """HTTP client for the node-facing API, authenticated with the node token."""

    def __init__(
        self,
        server_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        ca_file: Path | None = None,
        insecure_http: bool = False,
    ) -> None:
        self._refusal = _refusal(server_url, insecure_http)
        self._http = httpx.Client(
            base_url=server_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
            verify=tls_verify(ca_file),
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
        if self._refusal is not None:
            raise self._refusal
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

    def fetch_signing_keys(self) -> list[OfferedKey]:
        """The keys the server signs checks with (``GET /api/v1/checks/signing-keys``)."""
        if self._refusal is not None:
            raise self._refusal
        return _signing_keys(_send(self._http, "GET", "/api/v1/checks/signing-keys"))

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
    node_token: str | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    ca_file: Path | None = None,
    insecure_http: bool = False,
) -> Registration | PendingRegistration:
    """Register this node with a bootstrap token (and, re-registering, its current node
    token): its target id and node token, or a registration waiting for an admin."""
    refusal = _refusal(server_url, insecure_http)
    if refusal is not None:
        raise refusal
    body: dict[str, object] = {
        "hostname": hostname,
        "ip_address": ip_address,
        "labels": dict(labels),
        "node_exporter_port": node_exporter_port,
    }
    if node_token:
        body["node_token"] = node_token
    with httpx.Client(
        base_url=server_url.rstrip("/"),
        headers={"Authorization": f"Bearer {bootstrap_token}", "User-Agent": USER_AGENT},
        timeout=timeout,
        transport=transport,
        verify=tls_verify(ca_file),
    ) as http:
        response = _send(http, "POST", "/api/v1/bootstrap/register", body=body)
    if response.status_code == 202:
        return _pending(response, hostname)
    if response.status_code not in (200, 201):
        raise BadResponse(f"unexpected status {response.status_code}")
    return _registration(_json(response), hostname)


def poll_registration(
    server_url: str,
    pending: PendingRegistration,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    ca_file: Path | None = None,
    insecure_http: bool = False,
) -> Registration | None:
    """Ask whether an admin approved the registration: its node token (given once), or
    None while it waits. A rejected, expired or already collected one is ``ServerRejected``
    (403, 404, 409)."""
    refusal = _refusal(server_url, insecure_http)
    if refusal is not None:
        raise refusal
    url = f"/api/v1/bootstrap/registrations/{quote(pending.registration_id, safe='')}"
    with httpx.Client(
        base_url=server_url.rstrip("/"),
        headers={"Authorization": f"Bearer {pending.poll_token}", "User-Agent": USER_AGENT},
        timeout=timeout,
        transport=transport,
        verify=tls_verify(ca_file),
    ) as http:
        response = _send(http, "GET", url)
    if response.status_code != 200:
        raise BadResponse(f"unexpected status {response.status_code}")
    document = _json(response)
    state = document.get("status")
    if state == "pending":
        return None
    if state != "approved":
        raise BadResponse(f"unexpected registration status {state!r}")
    return _registration(document, pending.hostname)


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        document = response.json()
    except ValueError:
        raise BadResponse("the answer is not JSON") from None
    if not isinstance(document, dict):
        raise BadResponse("the answer is not a JSON object")
    return document


def _registration(document: dict[str, object], hostname: str) -> Registration:
    target_id, node_token = document.get("target_id"), document.get("node_token")
    groups = document.get("group_ids") or []
    if not isinstance(target_id, str) or not target_id or not isinstance(node_token, str):
        raise BadResponse("the registration answer lacks target_id or node_token")
    if not node_token or not isinstance(groups, list):
        raise BadResponse("the registration answer lacks target_id or node_token")
    return Registration(
        target_id=target_id,
        hostname=str(document.get("hostname") or hostname),
        group_ids=[str(g) for g in groups],
        node_token=node_token,
    )


def _pending(response: httpx.Response, hostname: str) -> PendingRegistration:
    document = _json(response)
    registration_id, poll_token = document.get("registration_id"), document.get("poll_token")
    if not isinstance(registration_id, str) or not registration_id:
        raise BadResponse("the 202 answer lacks registration_id")
    if not isinstance(poll_token, str) or not poll_token:
        raise BadResponse("the 202 answer lacks poll_token")
    reasons = document.get("reasons") or []
    interval = document.get("poll_interval_seconds", 5)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        interval = 5
    return PendingRegistration(
        registration_id=registration_id,
        hostname=str(document.get("hostname") or hostname),
        poll_token=poll_token,
        reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
        expires_at=str(document.get("expires_at") or ""),
        poll_interval=float(interval),
    )


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
        reachable = not isinstance(exc, ServerUnreachable | InsecureUrl)
        if isinstance(exc, ServerRejected):
            error, message = "rejected", f"server refused the check list ({exc.status_code}): "
            message += exc.detail
        elif isinstance(exc, InsecureUrl):
            error, message = "insecure_http", str(exc)
        elif isinstance(exc, TlsFailure):
            error, message = "tls", f"server not trusted: {exc}"
        elif reachable:
            error, message = "bad_response", f"bad answer from the server: {exc}"
        else:
            error, message = "unreachable", f"server unreachable: {exc}"
        if cached is None:
            return SyncResult(None, "none", reachable, False, None, message + "; no cache", error)
        return SyncResult(
            cached.checks,
            "cache",
            reachable,
            False,
            cached.synced_at,
            message + "; using cache",
            error,
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
        failure = _tls_failure(exc)
        if failure is not None:
            raise TlsFailure(f"TLS with {http.base_url} failed: {failure}") from None
        raise ServerUnreachable(f"cannot reach {http.base_url}: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise ServerUnreachable(f"{http.base_url} answered {response.status_code}")
    if 400 <= response.status_code < 500:
        raise ServerRejected(response.status_code, _detail(response))
    return response


def _refusal(server_url: str, insecure_http: bool) -> InsecureUrl | None:
    """The error for a plain-HTTP server that was not explicitly allowed, else None."""
    if server_url.lower().startswith("http://") and not insecure_http:
        return InsecureUrl(server_url.rstrip("/"))
    return None


def _tls_failure(exc: BaseException) -> str | None:
    """The TLS reason behind a transport error (certificate, name, protocol), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        if isinstance(seen, ssl.SSLError):
            return seen.reason or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def fetch_signing_keys(
    server_url: str,
    token: str,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    ca_file: Path | None = None,
    insecure_http: bool = False,
) -> list[OfferedKey]:
    """The server's check-signing keys, read with the node token (what registration pins)."""
    with ChecksClient(
        server_url,
        token,
        timeout=timeout,
        transport=transport,
        ca_file=ca_file,
        insecure_http=insecure_http,
    ) as client:
        return client.fetch_signing_keys()


def tls_verify(ca_file: Path | None) -> ssl.SSLContext:
    """What the server's certificate is verified against: ``ca_file`` alone, else the
    system's CAs (OpenSSL's default paths, which ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
    override)."""
    if ca_file is None:
        context = ssl.create_default_context()
    else:
        context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _signing_keys(response: httpx.Response) -> list[OfferedKey]:
    if response.status_code != 200:
        raise BadResponse(f"unexpected status {response.status_code}")
    try:
        return parse_key_document(response.json())
    except ValueError:
        raise BadResponse("the signing key document is not JSON") from None
    except KeysError as exc:
        raise BadResponse(str(exc)) from None


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
