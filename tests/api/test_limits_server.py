"""The body cap and the bearer check against a real server process: 100 MiB bodies are
refused without being read, and the server's memory stays flat."""

from __future__ import annotations

import select
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TOKEN
from tests.support.ports import free_port
from tests.support.processes import Process, aami_server

MIB = 1024 * 1024
HUNDRED_MIB = 100 * MIB
CHUNK = b"x" * (256 * 1024)


@dataclass
class Server:
    process: Process
    port: int
    tmp: Path

    @property
    def pid(self) -> int:
        assert self.process.popen is not None
        return self.process.popen.pid


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("limits-server")
    port = free_port()
    process = aami_server(
        tmp,
        port=port,
        token=TOKEN,
        env={
            "PROMETHEUS_RELOAD_ENABLED": "false",
            "PROMETHEUS_URL": "http://127.0.0.1:1",
            "ALERTMANAGER_URL": "http://127.0.0.1:1",
        },
    ).start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/health")
        yield Server(process, port, tmp)
    finally:
        process.stop()


def _memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def _post_huge(port: int, headers: dict[str, str], *, chunked: bool = False) -> tuple[int, int]:
    """POST a 100 MiB body in 256 KiB chunks, stopping as soon as the server answers.

    Returns the status and how many body bytes went out before the answer.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        head = ["POST /api/v1/groups HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUNDRED_MIB}")
        head += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK
        sent = 0
        while sent < HUNDRED_MIB:
            readable, writable, _ = select.select([sock], [sock], [], 30)
            assert readable or writable, "the server neither answered nor read for 30 s"
            if readable:
                break  # the answer is there: stop sending
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
        assert answer.startswith(b"HTTP/1.1 "), (answer, sent)
        return int(answer.split()[1]), sent
    finally:
        sock.close()


def test_hundred_mib_bodies_are_refused_unread_and_memory_stays_flat(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    wrong = {"Authorization": "Bearer wrong-token-wrong-token"}
    admin = {"Authorization": f"Bearer {TOKEN}"}
    # Warm up every path once, so that what is measured is the bodies, not first imports.
    assert httpx.post(f"{base}/api/v1/groups", content=b"{}").status_code == 401
    assert httpx.post(f"{base}/api/v1/groups", content=b"{}", headers=wrong).status_code == 401
    assert _post_huge(server.port, {}, chunked=True)[0] == 401
    assert _post_huge(server.port, admin, chunked=True)[0] == 413
    before = _memory_kib(server.pid)

    for chunked in (False, True) * 3:  # the finding: six 100 MB unauthenticated POSTs
        status, sent = _post_huge(
            server.port, {"Content-Type": "application/json"}, chunked=chunked
        )
        # A declared length over the cap is refused at once; a streamed body for want of a
        # token, before the server reads it.
        assert status == (401 if chunked else 413)
        # Only what the sockets' buffers hold went out: the server read none of it.
        assert sent < 40 * MIB, sent
    for headers, chunked in ((wrong, False), (wrong, True), (admin, True), (admin, False)):
        status, sent = _post_huge(server.port, headers, chunked=chunked)
        assert status == 413, (headers, chunked)
        assert sent < 40 * MIB, sent

    after = _memory_kib(server.pid)
    # Ten 100 MiB bodies: the peak resident size grew by less than a few MiB.
    assert after["VmHWM"] - before["VmHWM"] < 8 * 1024, (before, after)
    assert after["VmRSS"] - before["VmRSS"] < 8 * 1024, (before, after)
    assert httpx.get(f"{base}/api/v1/groups", headers=admin).status_code == 200


def test_the_server_keeps_its_files_private(server: Server) -> None:
    # The umask of the test run would have made them 0644.
    for name in ("aami.db", "aami.db-wal", "aami.db-shm", "aami.db.encryption-key"):
        mode = stat.S_IMODE((server.tmp / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
