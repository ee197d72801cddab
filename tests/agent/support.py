"""A fake AAMI server for agent tests: the node API's contract (signed checks, the signing
key document), via MockTransport or real HTTPS on a loopback port with a test CA."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aami.agent.signing import check_message, endorsement_message, key_id, save_keys
from aami.security.tls import StackTls, ensure_stack_tls

# The seed's Example 3 ScriptTemplate, exactly as its JSON spells `script_content`.
SEED_MOUNT_CHECK: str = json.loads(
    r'''"#!/bin/bash\nPATHS=\"$1\"\nfor path in ${PATHS//,/ }; do\n  if mountpoint -q \"$path\"; then\n    echo \"mount_status{path=\\\"$path\\\"} 1\"\n  else\n    echo \"mount_status{path=\\\"$path\\\"} 0\"\n  fi\ndone"'''  # noqa: E501
)

NODE_TOKEN = "node-token-s3cret-0123456789"

# The server's signing key in these tests (fixed, so failures are reproducible).
SERVER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def raw(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def kid(key: Ed25519PrivateKey) -> str:
    return key_id(raw(key))


def sign(check: dict[str, object], *keys: Ed25519PrivateKey) -> dict[str, object]:
    """``check`` with ``signatures`` by ``keys`` (the server's key by default)."""
    config = check["config"]
    assert isinstance(config, dict)
    message = check_message(
        name=str(check["name"]),
        script_type=str(check["script_type"]),
        language=str(check["language"]),
        version=str(check["version"]),
        hash=str(check["hash"]),
        timeout_seconds=float(check["timeout_seconds"]),  # type: ignore[arg-type]
        config=config,
    )
    signatures = [
        {"key_id": kid(key), "signature": base64.b64encode(key.sign(message)).decode()}
        for key in keys or (SERVER_KEY,)
    ]
    return {**check, "signatures": signatures}


def key_document(*keys: Ed25519PrivateKey) -> dict[str, object]:
    """``GET /api/v1/checks/signing-keys``: each key endorsed by the others."""
    return {
        "algorithm": "ed25519",
        "keys": [
            {
                "key_id": kid(key),
                "public_key": base64.b64encode(raw(key)).decode(),
                "endorsements": [
                    {
                        "key_id": kid(other),
                        "signature": base64.b64encode(
                            other.sign(endorsement_message(raw(key)))
                        ).decode(),
                    }
                    for other in keys
                    if other is not key
                ],
            }
            for key in keys
        ],
    }


def pin(path: Path, *keys: Ed25519PrivateKey) -> Path:
    """Write an agent's pinned-keys file trusting ``keys`` (the server's by default)."""
    save_keys(path, {kid(key): raw(key) for key in keys or (SERVER_KEY,)})
    return path


def make_check(
    name: str,
    script: str,
    *,
    language: str = "bash",
    config: Mapping[str, object] | None = None,
    timeout: float = 30,
    digest: str | None = None,
    signed: bool = True,
) -> dict[str, object]:
    """One item of ``GET /api/v1/checks/...``, signed by ``SERVER_KEY`` unless ``signed`` is
    false, with a correct hash unless ``digest`` is given."""
    check: dict[str, object] = {
        "name": name,
        "script_type": "custom",
        "script_content": script,
        "language": language,
        "config": dict(config or {}),
        "version": "1.0.0",
        "hash": digest or hashlib.sha256(script.encode("utf-8")).hexdigest(),
        "timeout_seconds": timeout,
    }
    return sign(check) if signed else check


@dataclass
class FakeServer:
    """The checks endpoints with ETags; ``mode`` makes it fail the way a real one can."""

    checks: list[dict[str, object]] = field(default_factory=list)
    mode: str = "ok"  # ok | down | timeout | 500 | 401 | 404
    keys: list[Ed25519PrivateKey] = field(default_factory=lambda: [SERVER_KEY])
    key_requests: list[httpx.Request] = field(default_factory=list)  # not in ``requests``
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
        keys = request.url.path == "/api/v1/checks/signing-keys"
        (self.key_requests if keys else self.requests).append(request)
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        response = self._answer(request)
        if not keys:
            self.statuses.append(response.status_code)
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "500":
            return httpx.Response(500, text="boom")
        if request.headers.get("authorization") != f"Bearer {NODE_TOKEN}" or self.mode == "401":
            return httpx.Response(401, json={"error": "unauthorized", "detail": "bad node token"})
        if request.url.path == "/api/v1/checks/signing-keys":
            return httpx.Response(200, json=key_document(*self.keys))
        if self.mode == "404":
            return httpx.Response(404, json={"error": "not_found", "detail": "no target tgt-1"})
        if request.headers.get("if-none-match") == self.etag:
            return httpx.Response(304, headers={"ETag": self.etag})
        return httpx.Response(200, json=self.checks, headers={"ETag": self.etag})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@functools.cache
def tls_files() -> StackTls:
    """A CA and a certificate for 127.0.0.1 and localhost, made once per test process."""
    return ensure_stack_tls(Path(tempfile.mkdtemp(prefix="aami-test-tls-")))


@contextmanager
def serve(handler: Callable[[httpx.Request], httpx.Response], *, tls: bool = True) -> Iterator[str]:
    """Serve ``handler`` on a random loopback port, over HTTPS with ``tls_files()``'s
    certificate unless ``tls`` is false; yield the base URL."""

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
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_files().cert_file, tls_files().key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def agent_yaml(tmp_path: Path, url: str, **settings: object) -> Path:
    """An agent config file for a server at ``url`` (trusting ``tls_files()``'s CA and
    ``SERVER_KEY``), its directories under ``tmp_path``, plus ``settings``."""
    path = tmp_path / "agent.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "server_url": url,
                "token": NODE_TOKEN,
                "target_id": "tgt-1",
                "textfile_dir": str(tmp_path / "textfile"),
                "cache_dir": str(tmp_path / "cache"),
                "ca_file": str(tls_files().ca_file),
                **settings,
            }
        )
    )
    pin(tmp_path / "cache" / "signing-keys.json")
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
