"""The database's disk full: requests get a 503 that says so (never a reset connection),
readiness fails, and both recover once there is space again. A real server process on a
SQLite file in a small tmpfs."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import TOKEN
from tests.support.ports import free_port
from tests.support.processes import aami_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_database_disk_is_a_503_and_not_ready_then_recovers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _tmpfs(data, "8m"):
        port = free_port()
        server = aami_server(
            tmp_path,
            port=port,
            token=TOKEN,
            env={
                "AAMI_DATABASE_URL": f"sqlite:///{data / 'aami.db'}",
                "PROMETHEUS_RULE_PATH": str(tmp_path / "rules"),
                "PROMETHEUS_URL": "http://127.0.0.1:1",
                "ALERTMANAGER_URL": "http://127.0.0.1:1",
            },
        ).start()
        url = f"http://127.0.0.1:{port}"
        try:
            server.wait_http(f"{url}/health/ready")
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, headers=headers, timeout=10) as api:
                created = api.post("/api/v1/groups", json={"id": "g1", "name": "one"})
                assert created.status_code == 201, created.text
                # Empty the write-ahead log, so the next write must grow a file, then fill the disk.
                with sqlite3.connect(data / "aami.db") as db:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                filler = data / "filler"
                fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * 65536)
                os.close(fd)

                response = api.post("/api/v1/groups", json={"id": "g2", "name": "two"})
                assert response.status_code == 503, response.text
                body = response.json()
                assert body["error"] == "unavailable"
                assert "disk is full" in body["detail"]
                # reads still work
                assert api.get("/api/v1/groups/g1").status_code == 200

                def not_ready() -> dict[str, str] | None:
                    answer = httpx.get(f"{url}/health/ready", timeout=5)
                    return answer.json() if answer.status_code == 503 else None

                ready = wait_for(not_ready, timeout=10, what="readiness to fail")
                assert "disk is full" in ready["detail"]

                filler.unlink()
                wait_for(
                    lambda: httpx.get(f"{url}/health/ready", timeout=5).status_code == 200,
                    timeout=10,
                    what="ready again",
                )
                again = api.post("/api/v1/groups", json={"id": "g2", "name": "two"})
                assert again.status_code == 201, again.text
                assert server.popen is not None
                assert server.popen.poll() is None
        finally:
            server.stop()
