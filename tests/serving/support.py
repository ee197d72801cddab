"""A real ``aami server`` process for the serving tests, over HTTP or HTTPS."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from aami.security.tls import StackTls, ensure_stack_tls
from tests.support.ports import free_port
from tests.support.processes import Process, aami_server
from tests.support.wait import wait_for

TOKEN = "serving-admin-token-0123456789"


class Server:
    """A running server: its base URL, process and (with TLS) its files."""

    def __init__(self, process: Process, port: int, tls: StackTls | None) -> None:
        self.process = process
        self.port = port
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        assert self.process.popen is not None
        return self.process.popen.pid

    def client_context(self) -> ssl.SSLContext:
        assert self.tls is not None
        return ssl.create_default_context(cafile=str(self.tls.ca_file))

    def get(self, path: str, timeout: float = 10) -> httpx.Response:
        verify: ssl.SSLContext | bool = self.client_context() if self.tls else True
        return httpx.get(self.url + path, verify=verify, timeout=timeout)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def open_files(self) -> int:
        return len(list(Path(f"/proc/{self.pid}/fd").iterdir()))

    def log(self) -> str:
        return self.process.log_path.read_text()


@contextmanager
def running_server(tmp: Path, *, tls: bool = False, **env: str) -> Iterator[Server]:
    """Start ``aami server`` (SQLite in ``tmp``), wait until it answers, stop it after."""
    port = free_port()
    files = ensure_stack_tls(tmp / "tls") if tls else None
    environment = {"PROMETHEUS_RELOAD_ENABLED": "false", **env}
    if files is not None:
        environment |= {
            "AAMI_TLS_CERT_FILE": str(files.cert_file),
            "AAMI_TLS_KEY_FILE": str(files.key_file),
        }
    process = aami_server(tmp, port=port, token=TOKEN, env=environment)
    server = Server(process, port, files)
    process.start()
    try:

        def ready() -> bool:
            assert process.popen is not None
            if process.popen.poll() is not None:
                raise AssertionError(f"aami server exited:\n{server.log()}")
            return server.get("/health/live", timeout=2).status_code == 200

        wait_for(ready, timeout=60, what="aami server to answer")
        yield server
    finally:
        process.stop()


def closed_by_peer(sock: socket.socket) -> bool:
    """Block until the server closes ``sock`` (EOF or reset); False if it sends data first."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return True
