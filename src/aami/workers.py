"""``aami server --workers N``: N server processes behind one listening address.

One Python process serves on one core. The supervisor (the process ``aami server``
starts) migrates the database, binds the address once per worker with ``SO_REUSEPORT``
(the kernel spreads new connections over the sockets), then forks the workers. Each
worker builds its own app (engine, caches, reconciler) after the fork and runs the same
guarded uvicorn server as a single process does: TLS, header timeout, connection cap and
certificate reload work per worker.

The supervisor keeps every socket open: a worker that dies is started again on its own
socket, and connections that arrived for it meanwhile wait in that socket's queue instead
of being refused. A worker that fails while starting for the first time stops everything
(exit 3, as a single process would); later it is restarted with a growing delay. SIGTERM
and SIGINT stop every worker (each finishes the requests it is serving) and then the
supervisor; SIGHUP is passed on to every worker (a renewed TLS certificate).

The workers are replicas of one another, as servers on several hosts are: the publisher
lease lets exactly one of them publish, and what the caches hold is keyed by the revision
counters in the database, so every worker answers the same data with the same ETag. What
each keeps for itself: the failed-authentication lockout (``AAMI_AUTH_FAILURE_LIMIT`` is
counted per worker) and ``AAMI_MAX_CONNECTIONS`` (a cap per worker).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import logging.config
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn.config

if TYPE_CHECKING:
    from aami.config import Settings
    from aami.serving import Limits

__all__ = [
    "STARTUP_FAILURE",
    "Supervisor",
    "WorkerSlot",
    "bind_sockets",
    "default_workers",
    "freeze_heap",
    "run_workers",
]

log = logging.getLogger("uvicorn.error")

STARTUP_FAILURE = 3  # uvicorn's exit code when its startup fails
STOP_TIMEOUT = 30.0  # seconds the workers get to finish their requests on SIGTERM
_STEADY_SECONDS = 10.0  # a worker that lived this long is restarted at once
_MAX_DELAY = 30.0
_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def bind_sockets(host: str, port: int, count: int, backlog: int = 2048) -> list[socket.socket]:
    """``count`` listening sockets on one address (``SO_REUSEPORT``); port 0 picks one port
    for all of them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@dataclass
class WorkerSlot:
    """One worker's place: its socket, its process and how it has fared."""

    index: int
    sock: socket.socket
    pid: int | None = None
    started_at: float = 0.0
    starts: int = 0
    failures: int = 0  # short lives in a row
    restart_at: float | None = None


class Supervisor:
    """Forks the workers, restarts those that die, stops them all on SIGTERM/SIGINT.

    ``serve(index, sock)`` runs in the forked child and returns the exit code: it builds
    the app and runs the server on ``sock`` until it is told to stop.
    """

    def __init__(
        self,
        sockets: list[socket.socket],
        serve: Callable[[int, socket.socket], int],
        *,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.slots = [WorkerSlot(i, sock) for i, sock in enumerate(sockets)]
        self.serve = serve
        self.stop_timeout = stop_timeout
        self._stopping = False
        self._exit_code = 0

    def run(self) -> int:
        """Supervise until told to stop; the exit code of the whole server."""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for slot in self.slots:
                self._spawn(slot)
            while not self._stopping:
                self._step()
            self._stop_all()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            for slot in self.slots:
                slot.sock.close()
        return self._exit_code

    def _step(self) -> None:
        now = time.monotonic()
        due = [s.restart_at for s in self.slots if s.pid is None and s.restart_at is not None]
        timeout = max(0.0, min(due, default=now + 1.0) - now)
        info = signal.sigtimedwait(_SIGNALS, min(timeout, 1.0))
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
            log.info("stopping %d workers", len(self.slots))
            self._stopping = True
            return
        if info is not None and info.si_signo == signal.SIGHUP:
            self._signal_all(signal.SIGHUP)
        self._reap()
        now = time.monotonic()
        for slot in self.slots:
            if slot.pid is None and slot.restart_at is not None and slot.restart_at <= now:
                self._spawn(slot)

    def _spawn(self, slot: WorkerSlot) -> None:
        slot.restart_at = None
        slot.starts += 1
        slot.started_at = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child leaves through os._exit
            os._exit(self._child(slot))
        slot.pid = pid
        log.info("worker %d started (pid %d)", slot.index, pid)

    def _child(self, slot: WorkerSlot) -> int:  # pragma: no cover - runs in the child
        code = 1
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            for signum in _SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            _die_with_parent()
            for other in self.slots:
                if other is not slot:
                    other.sock.close()
            code = self.serve(slot.index, slot.sock)
        except BaseException:  # the child must never return into the supervisor's code
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
        return code

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left
                for each in self.slots:
                    each.pid = None
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is not None:
                self._exited(slot, status)

    def _exited(self, slot: WorkerSlot, status: int) -> None:
        pid, slot.pid = slot.pid, None
        code = os.waitstatus_to_exitcode(status)
        lived = time.monotonic() - slot.started_at
        how = f"signal {-code}" if code < 0 else f"code {code}"
        if self._stopping:
            return
        if code == STARTUP_FAILURE and slot.starts == 1:
            log.error("worker %d could not start (%s): stopping", slot.index, how)
            self._exit_code = STARTUP_FAILURE
            self._stopping = True
            return
        slot.failures = 0 if lived >= _STEADY_SECONDS else slot.failures + 1
        delay = 0.0 if slot.failures == 0 else min(_MAX_DELAY, 0.5 * 2 ** (slot.failures - 1))
        slot.restart_at = time.monotonic() + delay
        log.warning(
            "worker %d (pid %d) exited with %s after %.1fs; restarting in %.1fs",
            slot.index,
            pid or 0,
            how,
            lived,
            delay,
        )

    def _signal_all(self, signum: int) -> None:
        for slot in self.slots:
            if slot.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signum)

    def _stop_all(self) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(s.pid is not None for s in self.slots):
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("workers did not stop within %gs: killing them", self.stop_timeout)
                self._signal_all(signal.SIGKILL)
                deadline = time.monotonic() + 5.0
            signal.sigtimedwait(_SIGNALS, max(0.05, min(left, 0.5)))
            self._reap()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM this worker if the supervisor dies (a kill -9 of it)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the supervisor died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def freeze_heap() -> None:
    """Move what exists now out of the collector's way and collect young objects rarely,
    as a single ``aami server`` process does (see there)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run_workers(
    settings: Settings, *, host: str, port: int, log_level: str, limits: Limits, workers: int
) -> int:
    """Migrate, bind, and supervise ``workers`` server processes (0: one per core)."""
    from aami.db.migrate import upgrade
    from aami.db.session import make_engine

    count = workers or default_workers()
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    logging.getLogger("uvicorn.error").setLevel(log_level.upper())
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)  # once, before the workers start
    finally:
        engine.dispose()
    try:
        sockets = bind_sockets(host, port, count)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        return STARTUP_FAILURE

    def serve(index: int, sock: socket.socket) -> int:  # pragma: no cover - in the child
        return _serve_worker(
            settings,
            sock,
            host=host,
            port=port,
            log_level=log_level,
            limits=limits,
            announce=index == 0,
        )

    freeze_heap()  # what the workers inherit stays shared with the supervisor's pages
    log.info("serving with %d worker processes", count)
    return Supervisor(sockets, serve).run()


def _serve_worker(  # pragma: no cover - runs in the child
    settings: Settings,
    sock: socket.socket,
    *,
    host: str,
    port: int,
    log_level: str,
    limits: Limits,
    announce: bool,
) -> int:
    from aami.app import create_app
    from aami.security.tls import ServerTls
    from aami.serving import build_server

    tls = None
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        tls = ServerTls(settings.tls_cert_file, settings.tls_key_file)
    application = create_app(settings)
    server = build_server(
        application, host=host, port=port, log_level=log_level, limits=limits, tls=tls
    )
    server.announce = announce
    freeze_heap()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0 if server.started else STARTUP_FAILURE
