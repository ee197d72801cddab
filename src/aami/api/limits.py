"""Limits applied before any work: the body size cap, the bearer header before the body,
and the lockout of addresses that keep failing to authenticate.

FastAPI reads and parses a route's body before it resolves the route's dependencies
(``fastapi/routing.py``, ``get_request_handler``: ``await request.body()`` comes before
``solve_dependencies``), so no auth dependency can keep a large unauthenticated body out
of memory. ``RequestGuard`` is a plain ASGI middleware between the server and the app:

- before anything else, an address that failed to authenticate too often gets 429 on
  ``/api/v1`` (with ``Retry-After``), and a declared ``Content-Length`` over the limit 413;
- when the app first asks for the body, a request to ``/api/v1`` without a well-formed
  ``Authorization: Bearer <token>`` gets its 401 and nothing is read; otherwise the body
  streams through, counted, and the request fails with 413 the moment it passes the
  limit.

The bearer check waits for the first ``receive()``, after routing, so ``/metrics`` still
labels those 401s with their route and an unknown path stays a 404; requests that never
read a body (GET) are authenticated by the route's dependencies as before. A refusal
answers ``Connection: close``: the server drops the rest of the body instead of reading
it.

Every 401 the app answers to a request that carried a bearer token counts as a failure
of its client address (``AuthLimiter``); the UI's login form counts its own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aami.auth.tokens import matches
from aami.registration.addresses import client_address

__all__ = ["API_PREFIX", "AuthLimiter", "RequestGuard", "bearer_credential", "request_address"]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def bearer_credential(authorization: str | None) -> str | None:
    """The token of a well-formed ``Bearer <token>`` header, else None (as FastAPI's
    ``HTTPBearer`` reads it)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def request_address(scope: Scope, trusted_proxies: Sequence[str]) -> str:
    """The client address a request is counted against: its peer, or what trusted
    proxies forwarded (``AAMI_TRUSTED_PROXIES``)."""
    peer = scope.get("client")
    host = str(peer[0]) if peer else ""
    forwarded = Headers(scope=scope).getlist("x-forwarded-for")
    return client_address(host or None, forwarded, trusted_proxies) or host or "unknown"


class AuthLimiter:
    """Failed authentications per client address within a sliding ``window``; an address
    that reaches ``limit`` of them is refused for ``block`` seconds. Successes do not
    count and do not reset the count. ``limit`` 0 turns it off.

    In-process: each replica counts on its own. At most ``max_addresses`` addresses are
    tracked; when full, the oldest entries go first.
    """

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        block: float,
        trusted_proxies: Sequence[str] = (),
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.block = block
        self.trusted_proxies = tuple(trusted_proxies)
        self.max_addresses = max_addresses
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}
        self._last_block_ends = -math.inf

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    @property
    def any_blocked(self) -> bool:
        """May some address be blocked now? Cheap and lock-free: once the last block has
        run out it is False, and no request pays for working out its address."""
        return self.enabled and self.clock() < self._last_block_ends

    def address(self, scope: Scope) -> str:
        return request_address(scope, self.trusted_proxies)

    def retry_after(self, address: str) -> int:
        """Whole seconds until ``address`` may try again; 0 when it may now."""
        if not self.enabled:
            return 0
        with self._lock:
            until = self._blocked.get(address)
            if until is None:
                return 0
            left = until - self.clock()
            if left <= 0:
                del self._blocked[address]
                return 0
            return max(1, math.ceil(left))

    def failure(self, address: str) -> None:
        """Count a failed authentication; block the address when it reaches the limit."""
        if not self.enabled:
            return
        now = self.clock()
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                self._make_room(now)
                failures = self._failures[address] = deque()
            failures.append(now)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) >= self.limit:
                del self._failures[address]
                self._blocked[address] = now + self.block
                self._last_block_ends = max(self._last_block_ends, now + self.block)
                blocked = True
            else:
                blocked = False
        if blocked:
            log.warning(
                "%s failed to authenticate %d times within %gs: refused for %gs",
                address,
                self.limit,
                self.window,
                self.block,
            )

    def _make_room(self, now: float) -> None:
        if len(self._failures) + len(self._blocked) < self.max_addresses:
            return
        for address in [a for a, f in self._failures.items() if f[-1] <= now - self.window]:
            del self._failures[address]
        for address in [a for a, until in self._blocked.items() if until <= now]:
            del self._blocked[address]
        while self._failures and len(self._failures) + len(self._blocked) >= self.max_addresses:
            del self._failures[next(iter(self._failures))]


class _Refused(Exception):
    """Raised into the app from ``receive``: the guard answers the request itself."""


@dataclass
class _Refusal:
    status: int
    kind: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)

    def messages(self) -> tuple[Message, Message]:
        body = orjson.dumps({"error": self.kind, "detail": self.detail})
        headers = {
            "content-type": "application/json",
            "content-length": str(len(body)),
            # The rest of the body is not wanted: the server closes instead of draining it.
            "connection": "close",
            **self.headers,
        }
        start: Message = {
            "type": "http.response.start",
            "status": self.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        }
        return start, {"type": "http.response.body", "body": body, "more_body": False}


def _unauthorized() -> _Refusal:
    return _Refusal(
        401,
        "unauthorized",
        "missing bearer token: send 'Authorization: Bearer <token>'",
        {"www-authenticate": "Bearer"},
    )


def _too_large(limit: int) -> _Refusal:
    return _Refusal(
        413,
        "content_too_large",
        f"the request body is larger than this server accepts here ({limit} bytes)",
    )


def _too_many_attempts(retry_after: int) -> _Refusal:
    return _Refusal(
        429,
        "too_many_requests",
        f"too many failed authentication attempts from this address; retry in {retry_after} s",
        {"retry-after": str(retry_after)},
    )


class RequestGuard:
    """The pure ASGI middleware described in the module docstring.

    ``max_body`` applies to every request; ``large_bodies`` maps exact paths to a larger
    limit that only the admin token gets (the config-as-code document).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: AuthLimiter,
        max_body: int,
        admin_token: str,
        large_bodies: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body = max_body
        self.admin_token = admin_token
        self.large_bodies = dict(large_bodies or {})

    def _limit(self, path: str, token: str | None) -> int:
        large = self.large_bodies.get(path)
        if large is not None and token is not None and matches(token, self.admin_token):
            return max(large, self.max_body)
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        limiter = self.limiter
        # The client's address is worked out only when it matters (an address is blocked,
        # or this request fails to authenticate): the checks endpoint is a hot path.
        if api and limiter.any_blocked:
            wait = limiter.retry_after(limiter.address(scope))
            if wait:
                for message in _too_many_attempts(wait).messages():
                    await send(message)
                return
        headers = Headers(scope=scope)
        token = bearer_credential(headers.get("authorization"))
        limit = self._limit(path, token)
        declared = _content_length(headers.get("content-length"))
        if declared is not None and declared > limit:
            for message in _too_large(limit).messages():
                await send(message)
            return
        exchange = _Exchange(
            receive=receive,
            send=send,
            limit=limit,
            need_bearer=api and token is None,
            on_unauthorized=(
                (lambda: limiter.failure(limiter.address(scope)))
                if api and token is not None and limiter.enabled
                else None
            ),
        )
        await exchange.run(self.app, scope)


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


@dataclass
class _Exchange:
    """One request through the guard: the counted body and, once refused, the answer."""

    receive: Receive
    send: Send
    limit: int
    need_bearer: bool
    on_unauthorized: Callable[[], None] | None
    received: int = 0
    refusal: _Refusal | None = None
    app_started: bool = False
    answered: bool = False

    def _refuse(self, refusal: _Refusal) -> _Refused:
        self.refusal = refusal
        return _Refused(refusal.detail)

    async def guarded_receive(self) -> Message:
        if self.refusal is not None:
            raise _Refused(self.refusal.detail)
        if self.need_bearer:
            raise self._refuse(_unauthorized())
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise self._refuse(_too_large(self.limit))
        return message

    async def guarded_send(self, message: Message) -> None:
        if self.refusal is not None:
            # Whatever the app made of the refused body is replaced by the refusal.
            if not self.app_started:
                await self._answer()
            return
        if message["type"] == "http.response.start":
            self.app_started = True
            if message["status"] == 401 and self.on_unauthorized is not None:
                self.on_unauthorized()
        await self.send(message)

    async def _answer(self) -> None:
        if self.answered or self.refusal is None:
            return
        self.answered = True
        for message in self.refusal.messages():
            await self.send(message)

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self.guarded_receive, self.guarded_send)
        except Exception:
            if self.refusal is None or self.app_started:
                raise
        if self.refusal is not None and not self.app_started:
            await self._answer()
