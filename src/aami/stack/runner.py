"""``aami stack up``: the whole local stack as supervised child processes on loopback."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

from aami.auth.tokens import generate_token
from aami.stack.configs import prometheus_config, write_yaml

__all__ = ["StackError", "StackPorts", "run_stack"]

_PR_SET_PDEATHSIG = 1


class StackError(Exception):
    """The stack cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class StackPorts:
    server: int = 8080
    prometheus: int = 19090
    node_exporter: int = 19100


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)


def _die_with_parent() -> None:
    # The children must not outlive a stack that was killed without a chance to clean up.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(f"{name} is not installed; run scripts/setup (Debian package)")
    return path


def _wait_http(
    url: str,
    *,
    child: Child,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process is not None and child.process.poll() is not None:
            raise StackError(
                f"{child.name} exited with {child.process.returncode}; see {child.log_path}"
            )
        try:
            if httpx.get(url, headers=headers, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise StackError(
        f"{child.name} did not become ready at {url} in {timeout:.0f}s; see {child.log_path}"
    )


class Stack:
    def __init__(self, state_dir: Path, ports: StackPorts) -> None:
        self.state_dir = state_dir
        self.ports = ports
        self.children: list[Child] = []
        self.stopping = False

    def _token(self) -> str:
        path = self.state_dir / "admin-token"
        if path.exists():
            return path.read_text().strip()
        token = generate_token()
        path.write_text(token + "\n")
        path.chmod(0o600)
        return token

    def prepare(self) -> str:
        for port in (self.ports.server, self.ports.prometheus, self.ports.node_exporter):
            if not _port_free(port):
                raise StackError(
                    f"port {port} on 127.0.0.1 is in use; choose another with "
                    "--port / --prometheus-port / --node-exporter-port"
                )
        for sub in ("logs", "prometheus-data", "rules/generated", "rules/static", "textfile"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        token = self._token()
        shipped = Path(__file__).resolve().parents[3] / "deploy/prometheus/rules/system-alerts.yml"
        if shipped.is_file():
            shutil.copyfile(shipped, self.state_dir / "rules/static/system-alerts.yml")
        server_url = f"http://127.0.0.1:{self.ports.server}"
        write_yaml(
            self.state_dir / "prometheus.yml",
            prometheus_config(
                server_url=server_url,
                token_file=self.state_dir / "admin-token",
                rule_globs=[
                    str(self.state_dir / "rules/static/*.yml"),
                    str(self.state_dir / "rules/generated/*.yml"),
                ],
                interval="5s",
                sd_refresh="5s",
            ),
        )
        env = {
            **os.environ,
            "AAMI_ADMIN_TOKEN": token,
            "AAMI_DATABASE_URL": f"sqlite:///{self.state_dir / 'aami.db'}",
            "PROMETHEUS_URL": f"http://127.0.0.1:{self.ports.prometheus}",
            "PROMETHEUS_RULE_PATH": str(self.state_dir / "rules/generated"),
            "PYTHONUNBUFFERED": "1",
        }
        logs = self.state_dir / "logs"
        self.children = [
            Child(
                "aami-server",
                [
                    sys.executable,
                    "-m",
                    "aami",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.ports.server),
                ],
                env,
                logs / "server.log",
            ),
            Child(
                "node_exporter",
                [
                    _binary("prometheus-node-exporter"),
                    f"--web.listen-address=127.0.0.1:{self.ports.node_exporter}",
                    f"--collector.textfile.directory={self.state_dir / 'textfile'}",
                ],
                dict(os.environ),
                logs / "node_exporter.log",
            ),
            Child(
                "prometheus",
                [
                    _binary("prometheus"),
                    f"--config.file={self.state_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.state_dir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
                    "--web.enable-lifecycle",
                ],
                dict(os.environ),
                logs / "prometheus.log",
            ),
        ]
        return token

    def start(self, child: Child) -> None:
        child.log = child.log_path.open("ab")
        child.process = subprocess.Popen(
            child.argv,
            env=child.env,
            stdout=child.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()

    def stop_all(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + 10
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            if child.log is not None:
                child.log.close()

    def supervise(self) -> None:
        """Restart children that die, with a growing delay, until stopped."""
        while not self.stopping:
            for child in self.children:
                process = child.process
                if process is None or process.poll() is None or self.stopping:
                    continue
                delay = min(30.0, 2.0**child.restarts)
                print(
                    f"{child.name} exited with {process.returncode}; restarting in "
                    f"{delay:.0f}s (log: {child.log_path})",
                    flush=True,
                )
                time.sleep(delay)
                if child.log is not None:
                    child.log.close()
                if not self.stopping:
                    child.restarts += 1
                    self.start(child)
            time.sleep(0.5)


def _load_demo(server_url: str, token: str, node_exporter_port: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server_url, headers=headers, timeout=10) as client:
        response = client.post(
            "/api/v1/groups",
            json={
                "id": "demo",
                "name": "demo",
                "description": "this machine, scraped by the stack",
            },
        )
        if response.status_code not in (201, 409):
            raise StackError(f"loading demo group failed: {response.text}")
        response = client.post(
            "/api/v1/targets",
            json={
                "id": "local-node",
                "hostname": "localhost",
                "ip_address": "127.0.0.1",
                "group_ids": ["demo"],
                "labels": {"role": "demo"},
                "exporters": [{"type": "node_exporter", "port": node_exporter_port}],
            },
        )
        if response.status_code not in (201, 409):
            raise StackError(f"loading demo target failed: {response.text}")


def run_stack(state_dir: Path, *, ports: StackPorts, demo: bool = True) -> int:
    """Start everything, print where it is, supervise until SIGINT/SIGTERM; return 0."""
    stack = Stack(state_dir, ports)
    state_dir.mkdir(parents=True, exist_ok=True)
    token = stack.prepare()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stack.stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    server_url = f"http://127.0.0.1:{ports.server}"
    try:
        for child in stack.children:
            stack.start(child)
        _wait_http(f"{server_url}/health/ready", child=stack.children[0], timeout=60)
        if demo:
            _load_demo(server_url, token, ports.node_exporter)
        _wait_http(
            f"http://127.0.0.1:{ports.prometheus}/-/ready", child=stack.children[2], timeout=60
        )
        print(
            "AAMI stack is ready\n"
            f"  server       {server_url}  (API docs: {server_url}/docs)\n"
            f"  prometheus   http://127.0.0.1:{ports.prometheus}\n"
            f"  node_exporter http://127.0.0.1:{ports.node_exporter}/metrics\n"
            f"  admin token  {token}  (also in {state_dir / 'admin-token'})\n"
            f"  state dir    {state_dir}  (logs in {state_dir / 'logs'})\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        stack.supervise()
    except StackError:
        stack.stop_all()
        raise
    finally:
        stack.stop_all()
    print("AAMI stack stopped", flush=True)
    return 0
