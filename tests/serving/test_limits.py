"""Connection limits of a real ``aami server``: slow request heads are dropped within
seconds, oversized ones refused, and 10,000 idle sockets neither exhaust the server's file
descriptors nor keep a real client out."""

from __future__ import annotations

import resource
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aami.config import Settings
from aami.serving import _connection_cap
from tests.serving.support import TOKEN, Server, closed_by_peer, running_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

HEAD = b"GET /health/live HTTP/1.1\r\nHost: aami\r\n"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def trickle_until_closed(sock: socket.socket, first: bytes, *, every: float = 0.2) -> float:
    """Send ``first``, then one header line every ``every`` s until the server closes the
    connection; return the seconds it took."""
    start = time.monotonic()
    sock.sendall(first)
    sock.settimeout(every)
    while time.monotonic() - start < 60:
        try:
            if sock.recv(1) == b"":
                return time.monotonic() - start
            raise AssertionError("the server answered a request head that never ended")
        except TimeoutError:
            pass
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return time.monotonic() - start
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            return time.monotonic() - start
    raise AssertionError("the slow client was never dropped")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("limits"), AAMI_HEADER_TIMEOUT="2s") as running:
        yield running


def test_the_defaults_are_on() -> None:
    settings = Settings(admin_token="a" * 20)
    assert settings.header_timeout == 10
    assert settings.max_connections == 4096
    assert settings.max_header_bytes == 65536
    assert settings.keep_alive_timeout == 5


def test_a_connection_that_sends_nothing_is_dropped(server: Server) -> None:
    with server.connect() as sock:
        start = time.monotonic()
        assert closed_by_peer(sock)
        elapsed = time.monotonic() - start
    assert 1.5 <= elapsed < 5, elapsed


def test_a_trickled_request_head_is_dropped_while_others_are_served(server: Server) -> None:
    with server.connect() as sock:
        elapsed = trickle_until_closed(sock, HEAD)
        # the server kept serving others meanwhile
        assert server.get("/health/live").status_code == 200
    assert 1.5 <= elapsed < 5, elapsed


def test_the_next_request_on_a_kept_alive_connection_has_a_deadline_too(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(HEAD + b"\r\n")
        sock.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        elapsed = trickle_until_closed(sock, b"GET /health/live HTTP/1.1\r\n")
    assert 1.5 <= elapsed < 5, elapsed


def test_a_slow_but_complete_request_is_served(server: Server) -> None:
    with server.connect() as sock:
        for part in (b"GET /health/live HTTP/1.1\r\n", b"Host: aami\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(0.3)  # pacing the client, well inside the 2 s deadline
        sock.settimeout(10)
        assert sock.recv(64).startswith(b"HTTP/1.1 200")


def test_an_oversized_request_head_gets_431(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(HEAD + b"X-Big: " + b"a" * 70_000)
        sock.settimeout(10)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431")


def test_ten_thousand_idle_sockets_do_not_take_the_server_down(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 10_500, f"the test needs 10,500 open files (hard limit {hard})"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sockets: list[socket.socket] = []
    try:
        # The defaults: 4096 connections at most, request heads within 10 s.
        with running_server(tmp_path) as server:
            limits = Path(f"/proc/{server.pid}/limits").read_text()
            line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
            assert line.split()[3] == line.split()[4]  # the server raised its soft limit
            baseline = server.open_files()
            start = time.monotonic()
            for _ in range(10_000):
                sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
            opened = time.monotonic() - start

            # A real client is served while the idle sockets are open ...
            response = httpx.get(f"{server.url}/api/v1/groups", headers=AUTH, timeout=10)
            assert response.status_code == 200
            # ... and the server holds no more than its cap of them.
            assert server.open_files() <= baseline + 4096 + 16
            assert server.process.popen is not None
            assert server.process.popen.poll() is None

            # Every idle socket is closed by the server: evicted at the cap, or at the
            # header timeout (10 s after it connected).
            for sock in sockets:
                sock.settimeout(max(1.0, 10 + 5 - (time.monotonic() - start)))
                assert closed_by_peer(sock)
            assert time.monotonic() - start < opened + 15
            wait_for(
                lambda: server.open_files() <= baseline + 16,
                timeout=10,
                what="the server to release the sockets' descriptors",
            )
            assert server.get("/health/live").status_code == 200
            assert "dropped connections (" in server.log()
    finally:
        for sock in sockets:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_cap_leaves_room_for_everything_else() -> None:
    assert _connection_cap(4096, 20_000) == 4096
    assert _connection_cap(4096, 1024) == 1024 - 128
    assert _connection_cap(100, 1024) == 100
