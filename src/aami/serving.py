"""``aami server`` under uvicorn, with TLS and the connection limits uvicorn lacks.

What uvicorn's ``Config`` offers, and why it is not enough on its own (read in uvicorn's
``protocols/http/{httptools,h11}_impl.py`` and ``server.py``):

- ``timeout_keep_alive`` closes a connection left idle *after a response*: the timer is
  armed in ``on_response_complete`` and cancelled by the first byte that arrives
  (``data_received``). A socket that never sends a request, or trickles its headers a
  byte at a time, is never timed out. uvicorn has no header-read timeout.
- ``limit_concurrency`` answers 503 once connections or tasks reach the limit, but only
  when a request's headers are complete. Sockets are accepted without bound, so idle or
  trickling sockets still use up file descriptors; and set to the connection cap, it
  would answer 503 to every request while the cap is full, which is exactly when an
  attacker fills it.
- ``h11_max_incomplete_event_size`` caps the bytes of an unfinished request head for the
  h11 protocol only; with httptools installed (``uvicorn[standard]``), uvicorn's default
  protocol, it is ignored.
- With ``ssl=``, asyncio runs the TLS handshake before the HTTP protocol sees the
  connection, with its default 60 s ``ssl_handshake_timeout``; uvicorn does not set it.

So ``Config(http=...)`` (it takes a protocol class) gets uvicorn's own protocol with a
guard mixed in (``ConnectionGuard``):

- every connection must deliver a complete request head (after the TLS handshake, which
  the guard runs itself with ``loop.start_tls``) within ``header_timeout`` of connecting,
  and each later request on a kept-alive connection within ``header_timeout`` of its first
  byte; otherwise it is closed;
- a request head larger than ``max_header_bytes`` gets 431 and the connection is closed;
- at most ``max_connections`` are open (handshaking included); at the cap, a new connection
  closes the oldest one that is not serving a request (waiting for its head or idle
  between requests), so a flood of idle sockets cannot lock real clients out; if every
  connection is serving a request, the new one is closed;
- the process raises its soft ``RLIMIT_NOFILE`` to the hard limit at start, and the cap
  is lowered to leave room for the database, files and tools if the limit is too small.

TLS: ``ServerTls`` holds the context; ``SIGHUP`` (``systemctl reload``) and a check of the
files' stat every 30 s load a renewed certificate for new connections, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import uvicorn

from aami.security.tls import ServerTls

if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _ProtocolBase
else:
    _ProtocolBase = asyncio.Protocol

__all__ = [
    "AamiServer",
    "ConnectionGuard",
    "Limits",
    "build_server",
    "guarded_protocol",
    "raise_open_files_limit",
]

log = logging.getLogger("uvicorn.error")  # configured by uvicorn: one log stream

TLS_CHECK_SECONDS = 30.0
_REPORT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits (``AAMI_HEADER_TIMEOUT``, ``AAMI_MAX_CONNECTIONS``, ...)."""

    header_timeout: float = 10.0
    max_connections: int = 4096
    max_header_bytes: int = 65536
    keep_alive_timeout: int = 5


class ConnectionGuard:
    """What every connection of one server shares; used from the event loop thread only."""

    def __init__(self, limits: Limits, tls: ServerTls | None = None) -> None:
        self.limits = limits
        self.tls = tls
        self.open = 0
        # Connections not serving a request, oldest first: the ones closed at the cap.
        self.idle: OrderedDict[_Guarded, None] = OrderedDict()
        self._unreported: Counter[str] = Counter()
        self._reported_at = -_REPORT_SECONDS

    def admit(self, connection: _Guarded) -> bool:
        """Count a new connection; at the cap, close the oldest idle one (or refuse this)."""
        self.open += 1
        if self.open <= self.limits.max_connections:
            return True
        victim = next(iter(self.idle), None)
        if victim is None:
            self.note("refused")
            return False
        victim.drop("evicted")
        return True

    def note(self, reason: str) -> None:
        """Count a dropped connection; log the counts at most once a minute."""
        self._unreported[reason] += 1
        now = time.monotonic()
        if now - self._reported_at >= _REPORT_SECONDS:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self._unreported.items()))
            log.warning(
                "dropped connections (%s); %d open, at most %d (AAMI_MAX_CONNECTIONS), "
                "request heads within %gs (AAMI_HEADER_TIMEOUT)",
                counts,
                self.open,
                self.limits.max_connections,
                self.limits.header_timeout,
            )
            self._unreported.clear()
            self._reported_at = now


class _Guarded(_ProtocolBase):
    """Mixed in before uvicorn's HTTP protocol class (see the module docstring)."""

    guard: ClassVar[ConnectionGuard]

    _raw: asyncio.Transport | None = None
    _counted = False
    _made = False  # uvicorn's own connection_made has run
    _closed = False
    _deadline: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _handshake: asyncio.Task[None] | None = None
    _wrapped = False  # start_tls has handed the transport to its SSL protocol
    _early: bytearray | None = None  # TLS bytes read before that (uvloop reads at once)
    _plain: bytearray | None = None  # decrypted bytes that came before our connection_made

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard
        self._raw = transport
        self._counted = True
        if not guard.admit(self):
            self._closed = True
            transport.abort()
            return
        guard.idle[self] = None
        self._arm()
        if guard.tls is None:
            self._made = True
            super().connection_made(transport)
            return
        self._early, self._plain = bytearray(), bytearray()
        self._handshake = self.loop.create_task(self._start_tls(transport, guard.tls))

    async def _start_tls(self, transport: asyncio.Transport, tls: ServerTls) -> None:
        timeout = self.guard.limits.header_timeout
        starting = asyncio.ensure_future(
            self.loop.start_tls(
                transport, self, tls.context, server_side=True, ssl_handshake_timeout=timeout
            )
        )
        # start_tls's first step, which runs before this one resumes, pauses the transport,
        # hands it to its SSL protocol and schedules that protocol's connection_made and the
        # resumption. Bytes read before (uvloop starts reading right after connection_made,
        # even when it paused) came here: they go to the SSL protocol next, before anything
        # read later. Both asyncio's and uvloop's start_tls work this way.
        await asyncio.sleep(0)
        self._wrapped = True
        early, self._early = bytes(self._early or b""), None
        ssl_protocol = transport.get_protocol()
        if early and ssl_protocol is not self:
            self.loop.call_soon(_feed, ssl_protocol, early)
        try:
            secure = await starting
        except Exception as exc:  # any failed handshake ends the same way: closed
            log.debug("TLS handshake failed: %s", exc)
            self.drop("tls_handshake")
            self._forget()
            return
        if secure is None or self._closed:
            if secure is not None:
                secure.abort()
            self._forget()
            return
        self._made = True
        super().connection_made(secure)
        plain, self._plain = bytes(self._plain or b""), None
        if plain:  # a request that came with the end of the handshake
            self.data_received(plain)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._made:
            super().connection_lost(exc)
        self._forget()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if not self._made:  # TLS: the handshake is not done, or our task has not resumed
            held = self._plain if self._wrapped else self._early
            if held is None or len(held) + len(data) > self.guard.limits.max_header_bytes:
                self.drop("tls_handshake")
                return
            held += data
            return
        waiting = self._deadline is not None
        if not waiting and self.cycle is not None and self.cycle.response_complete:
            self._arm()  # the first bytes of the next request on a kept-alive connection
            waiting = True
        before = self.cycle
        super().data_received(data)
        if not waiting or self._closed:
            return
        if self.cycle is not before:  # the head is complete: a request is being served
            self._disarm()
            self.guard.idle.pop(self, None)
            self._head_bytes = 0
            return
        self._head_bytes += len(data)
        if self._head_bytes > self.guard.limits.max_header_bytes:
            self.guard.note("header_too_large")
            self._closed = True
            self._disarm()
            self.guard.idle.pop(self, None)
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"connection: close\r\ncontent-length: 0\r\n\r\n"
            )
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._closed and not self.transport.is_closing():
            self.guard.idle[self] = None  # between requests: may be closed at the cap

    def drop(self, reason: str) -> None:
        """Close the connection now (whatever layer it is in) and say why in the counts."""
        if self._closed:
            return
        self._closed = True
        self.guard.note(reason)
        self._disarm()
        self.guard.idle.pop(self, None)
        if self._raw is not None:
            self._raw.abort()

    def _arm(self) -> None:
        self._disarm()
        self._head_bytes = 0
        self._deadline = self.loop.call_later(self.guard.limits.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        self.drop("header_timeout")

    def _forget(self) -> None:
        """Leave the books (idempotent: a failed handshake may also report the loss)."""
        self._disarm()
        self.guard.idle.pop(self, None)
        self._closed = True
        if self._counted:
            self._counted = False
            self.guard.open -= 1


def _feed(protocol: Any, data: bytes) -> None:
    """Deliver ``data`` as if read from the socket; SSL protocols are buffered protocols
    (``get_buffer``/``buffer_updated``), uvloop's without subclassing asyncio's."""
    if not hasattr(protocol, "get_buffer"):
        protocol.data_received(data)
        return
    view = memoryview(data)
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        protocol.buffer_updated(size)
        view = view[size:]


def _uvicorn_protocol() -> type[asyncio.Protocol]:
    """The class uvicorn's ``http="auto"`` picks: httptools if installed, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def guarded_protocol(
    guard: ConnectionGuard, base: type[asyncio.Protocol] | None = None
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (or ``base``) with ``guard`` applied."""
    bases = (_Guarded, base or _uvicorn_protocol())
    return type("GuardedHTTPProtocol", bases, {"guard": guard})


def raise_open_files_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _connection_cap(wanted: int, open_files: int) -> int:
    """``wanted``, lowered so that sockets never take the descriptors everything else needs."""
    if open_files == resource.RLIM_INFINITY:
        return wanted
    room = open_files - max(128, open_files // 8)
    if room < wanted:
        log.warning(
            "AAMI_MAX_CONNECTIONS=%d does not fit the open files limit (%d): using %d; "
            "raise LimitNOFILE= (systemd) or ulimit -n",
            wanted,
            open_files,
            max(room, 16),
        )
    return max(16, min(wanted, room))


EVENT_LOOP = "asyncio"


class AamiServer(uvicorn.Server):
    """uvicorn's server; with TLS, it reloads the certificate on SIGHUP and when it changes."""

    def __init__(self, config: uvicorn.Config, guard: ConnectionGuard) -> None:
        super().__init__(config)
        self.guard = guard
        self._tls_watch: asyncio.Task[None] | None = None
        # With sockets bound beforehand (``--workers``) uvicorn says nothing; one worker does.
        self.announce = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if sockets is not None and self.started and self.announce:
            self._log_started_message(sockets)
        tls = self.guard.tls
        if tls is None or not self.started:
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, tls.reload)
        self._tls_watch = loop.create_task(self._watch(tls))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._tls_watch is not None:
            self._tls_watch.cancel()
        await super().shutdown(sockets=sockets)

    @staticmethod
    async def _watch(tls: ServerTls) -> None:
        while True:
            await asyncio.sleep(TLS_CHECK_SECONDS)
            tls.reload_if_changed()

    def _log_started_message(self, listeners: Sequence[socket.SocketType]) -> None:
        # uvicorn would say http://: the TLS it knows of is off, the guard does the handshake.
        scheme = "https" if self.guard.tls is not None else "http"
        for listener in listeners:
            host, port = listener.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info("AAMI server listening on %s://%s:%d", scheme, shown, port)
        if self.guard.tls is None:
            log.warning(
                "serving plain HTTP: agents refuse it unless told insecure_http; "
                "set AAMI_TLS_CERT_FILE and AAMI_TLS_KEY_FILE (docs/deployment.md, TLS)"
            )


def build_server(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str,
    limits: Limits,
    tls: ServerTls | None,
) -> AamiServer:
    """The uvicorn server ``aami server`` runs: guarded protocol, limits, TLS."""
    cap = _connection_cap(limits.max_connections, raise_open_files_limit())
    guard = ConnectionGuard(replace(limits, max_connections=cap), tls)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=False,
        http=guarded_protocol(guard),
        ws="none",  # AAMI has no WebSocket routes; an upgrade would escape the guard
        timeout_keep_alive=limits.keep_alive_timeout,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        # limit_concurrency stays unset: the guard caps connections at accept (see above).
        # asyncio's own loop, not uvloop: with uvloop a saturated server answered some
        # requests hundreds of ms late while the rest took 20 ms (100 connections on one
        # core: p99 460-670 ms, max 1.3 s; with asyncio's loop p99 31-36 ms, max 86 ms, at
        # the same throughput). bench/checks_open.py measures it.
        loop=EVENT_LOOP,
    )
    return AamiServer(config, guard)
