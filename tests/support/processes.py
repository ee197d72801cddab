"""Start the real programs (the AAMI server, Prometheus, node_exporter) for a test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.wait import wait_for


@dataclass
class Process:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_http(self, url: str, *, timeout: float = 30) -> None:
        def probe() -> bool:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited {self.popen.returncode}:\n{self.log_path.read_text()}"
                )
            return httpx.get(url, timeout=1).status_code == 200

        wait_for(probe, timeout=timeout, what=f"{self.name} at {url}")

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def binary(name: str) -> str:
    """Return the path of a Debian-packaged program; the test fails if it is missing."""
    path = shutil.which(name)
    assert path, f"{name} is not installed; scripts/setup installs it"
    return path


def aami_server(tmp: Path, *, port: int, token: str, env: dict[str, str] | None = None) -> Process:
    """The AAMI server as a real process on SQLite in ``tmp``."""
    environment = {
        **os.environ,
        "AAMI_ADMIN_TOKEN": token,
        "AAMI_DATABASE_URL": f"sqlite:///{tmp / 'aami.db'}",
        "PROMETHEUS_RULE_PATH": str(tmp / "rules"),
        **(env or {}),
    }
    return Process(
        "aami-server",
        [
            sys.executable,
            "-m",
            "aami",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        tmp / "aami-server.log",
        env=environment,
    )


def node_exporter(tmp: Path, *, port: int, textfile_dir: Path) -> Process:
    return Process(
        "node_exporter",
        [
            binary("prometheus-node-exporter"),
            f"--web.listen-address=127.0.0.1:{port}",
            f"--collector.textfile.directory={textfile_dir}",
        ],
        tmp / "node_exporter.log",
    )


def prometheus(tmp: Path, *, port: int, config: Path) -> Process:
    """A real Prometheus. After a reload its notifier takes about 5 s to find Alertmanager
    again; a firing alert stays valid in Alertmanager for 4 x the resend delay, so 3 s
    keeps alerts from flapping across reloads while still re-sending quickly."""
    (tmp / "prometheus-data").mkdir(exist_ok=True)
    return Process(
        "prometheus",
        [
            binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--rules.alert.resend-delay=3s",
        ],
        tmp / "prometheus.log",
    )


def alertmanager(tmp: Path, *, port: int, config: Path) -> Process:
    """A real Alertmanager, clustering off, on a loopback port."""
    (tmp / "alertmanager-data").mkdir(exist_ok=True)
    return Process(
        "alertmanager",
        [
            binary("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={tmp / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        tmp / "alertmanager.log",
    )
