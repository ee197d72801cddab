"""A fake AAMI server for agent tests: the node API's contract, via MockTransport or real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml

# The seed's Example 3 ScriptTemplate, exactly as its JSON spells `script_content`.
SEED_MOUNT_CHECK: str = json.loads(
    r'''"#!/bin/bash\nPATHS=\"$1\"\nfor path in ${PATHS//,/ }; do\n  if mountpoint -q \"$path\"; then\n    echo \"mount_status{path=\\\"$path\\\"} 1\"\n  else\n    echo \"mount_status{path=\\\"$path\\\"} 0\"\n  fi\ndone"'''  # noqa: E501
)

NODE_TOKEN = "node-token-s3cret-0123456789"


def make_check(
    name: str,
    script: str,
    *,
    language: str = "bash",
    config: Mapping[str, object] | None = None,
    timeout: float = 30,
    digest: str | None = None,
) -> dict[str, object]:
    """One item of ``GET /api/v1/checks/...`` with a correct hash unless ``digest`` is given."""
    return {
        "name": name,
        "script_type": "custom",
        "script_content": script,
        "language": language,
        "config": dict(config or {}),
        "version": "1.0.0",
        "hash": digest or hashlib.sha256(script.encode("utf-8")).hexdigest(),
        "timeout_seconds": timeout,
    }


@dataclass
class FakeServer:
    """The checks endpoints with ETags; ``mode`` makes it fail the way a real one can."""

    checks: list[dict[str, object]] = field(default_factory=list)
    mode: str = "ok"  # ok | down | timeout | 500 | 401 | 404
    revision: int = 1
    requests: list[httpx.Request] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def set_checks(self, checks: list[dict[str, object]]) -> None:
        self.checks = checks
        self.revision += 1

    @property
    def etag(self) -> str:
        return f'"rev-{self.revision}"'

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        response = self._answer(request)
        self.statuses.append(response.status_code)
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "500":
            return httpx.Response(500, text="boom")
        if request.headers.get("authorization") != f"Bearer {NODE_TOKEN}" or self.mode == "401":
            return httpx.Response(401, json={"error": "unauthorized", "detail": "bad node token"})
        if self.mode == "404":
            return httpx.Response(404, json={"error": "not_found", "detail": "no target tgt-1"})
        if request.headers.get("if-none-match") == self.etag:
            return httpx.Response(304, headers={"ETag": self.etag})
        return httpx.Response(200, json=self.checks, headers={"ETag": self.etag})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@contextmanager
def serve(handler: Callable[[httpx.Request], httpx.Response]) -> Iterator[str]:
    """Serve ``handler`` over real HTTP on a random loopback port; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = httpx.Request(
                self.command,
                f"http://127.0.0.1{self.path}",
                headers=list(self.headers.items()),
                content=body,
            )
            response = handler(request)
            content = response.read()
            self.send_response(response.status_code)
            for key, value in response.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def agent_yaml(tmp_path: Path, url: str) -> Path:
    """An agent config file for a server at ``url``, its directories under ``tmp_path``."""
    path = tmp_path / "agent.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "server_url": url,
                "token": NODE_TOKEN,
                "target_id": "tgt-1",
                "textfile_dir": str(tmp_path / "textfile"),
                "cache_dir": str(tmp_path / "cache"),
            }
        )
    )
    return path


def live_group_members(pgid: int) -> list[int]:
    """Pids of processes in group ``pgid`` that are not zombies (read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def children(pid: int) -> dict[int, str]:
    """Processes whose parent is ``pid``, zombies included: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def ignored_signals(pid: int) -> set[int]:
    """The signals ``pid`` ignores (its SigIgn mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {signum for signum in range(1, 65) if mask & (1 << (signum - 1))}
    return set()
