"""``aami server`` over TLS: HTTPS only, slow handshakes dropped like slow heads, and a
renewed certificate loaded on SIGHUP without a restart."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aami.security.tls import ensure_stack_tls
from tests.serving.support import Server, closed_by_peer, running_server
from tests.support.ports import free_port
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("tls")
    with running_server(tmp, tls=True, AAMI_HEADER_TIMEOUT="2s") as running:
        yield running


def served_certificate(server: Server) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        server.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_https_with_the_ca_and_nothing_in_clear(server: Server) -> None:
    response = server.get("/health/live")
    assert response.status_code == 200
    assert response.url.scheme == "https"
    with pytest.raises(httpx.HTTPError):  # the system's CAs do not vouch for it
        httpx.get(f"{server.url}/health/live", timeout=5)
    with pytest.raises(httpx.HTTPError):  # and the port speaks no plain HTTP
        httpx.get(f"http://127.0.0.1:{server.port}/health/live", timeout=5)


def test_a_client_that_never_starts_the_handshake_is_dropped(server: Server) -> None:
    with server.connect() as sock:
        start = time.monotonic()
        assert closed_by_peer(sock)
        elapsed = time.monotonic() - start
    assert 1.5 <= elapsed < 5, elapsed


def test_a_trickled_head_after_the_handshake_is_dropped(server: Server) -> None:
    with (
        server.connect() as raw,
        server.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        start = time.monotonic()
        tls.sendall(b"GET /health/live HTTP/1.1\r\n")
        tls.settimeout(0.2)
        closed = False
        while time.monotonic() - start < 15 and not closed:
            try:
                closed = tls.recv(1) == b""
            except TimeoutError:
                try:
                    tls.sendall(b"X-Slow: 1\r\n")
                except (OSError, ssl.SSLError):
                    closed = True
            except (OSError, ssl.SSLError):
                closed = True
        elapsed = time.monotonic() - start
    assert closed
    assert 1.5 <= elapsed < 5, elapsed


def test_sighup_loads_a_renewed_certificate(tmp_path: Path) -> None:
    with running_server(tmp_path, tls=True) as server:
        assert server.tls is not None
        before = served_certificate(server)
        renewed = ensure_stack_tls(tmp_path / "renewed")  # another CA, another certificate
        # A bad file first: the server keeps serving what it has.
        server.tls.cert_file.write_text("not a certificate\n")
        os.kill(server.pid, signal.SIGHUP)
        wait_for(
            lambda: "still serving the previous certificate" in server.log(),
            timeout=10,
            what="the failed reload to be reported",
        )
        assert served_certificate(server) == before
        # Then the renewal, as certbot or cert-manager would put it in place.
        shutil.copyfile(renewed.cert_file, server.tls.cert_file)
        shutil.copyfile(renewed.key_file, server.tls.key_file)
        shutil.copyfile(renewed.ca_file, server.tls.ca_file)
        os.kill(server.pid, signal.SIGHUP)
        wait_for(
            lambda: served_certificate(server) != before,
            timeout=10,
            what="the renewed certificate to be served",
        )
        assert server.get("/health/live").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "/etc/hostname"], "give both --tls-cert and --tls-key"),
        (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], "cannot load"),
    ],
)
def test_bad_tls_options_are_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aami", "server", "--port", str(free_port()), *args],
        env={
            **os.environ,
            "AAMI_ADMIN_TOKEN": "serving-admin-token-0123456789",
            "AAMI_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
