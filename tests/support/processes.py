"""Start the real programs (the AAMI server, Prometheus, node_exporter, Alertmanager,
VictoriaMetrics, vmagent, vmalert) for a test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.wait import wait_for

# Seconds a clustered Alertmanager waits per position in the cluster before it notifies
# (the member before it has notified by then, and said so by gossip).
PEER_TIMEOUT = 2.0


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

    def wait_http(self, url: str, *, timeout: float = 90) -> None:
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


def alertmanager(
    tmp: Path,
    *,
    port: int,
    config: Path,
    cluster_port: int | None = None,
    peers: Sequence[int] = (),
    name: str = "alertmanager",
) -> Process:
    """A real Alertmanager on a loopback port: clustering off, or with ``cluster_port`` a
    member gossiping on that port with the members at ``peers`` (short intervals: a peer
    timeout of 2 s, gossip every 100 ms). Each ``name`` has its own data and log."""
    (tmp / f"{name}-data").mkdir(exist_ok=True)
    cluster = (
        [
            f"--cluster.listen-address=127.0.0.1:{cluster_port}",
            *(f"--cluster.peer=127.0.0.1:{peer}" for peer in peers),
            f"--cluster.peer-timeout={PEER_TIMEOUT:g}s",
            "--cluster.gossip-interval=100ms",
            "--cluster.pushpull-interval=2s",
        ]
        if cluster_port is not None
        else ["--cluster.listen-address="]
    )
    return Process(
        name,
        [
            binary("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={tmp / f'{name}-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *cluster,
        ],
        tmp / f"{name}.log",
    )


def victoria_metrics(tmp: Path, *, port: int) -> Process:
    """A single-node VictoriaMetrics on a loopback port (never the Debian service's 8428).
    Samples become visible to queries after ``-search.latencyOffset`` (30 s by default);
    1 s keeps a test's 1 s scrapes and evaluations close to what it just wrote."""
    (tmp / "victoria-metrics-data").mkdir(exist_ok=True)
    return Process(
        "victoria-metrics",
        [
            binary("victoria-metrics"),
            f"-storageDataPath={tmp / 'victoria-metrics-data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=1d",
            "-search.latencyOffset=1s",
            "-search.disableCache",
        ],
        tmp / "victoria-metrics.log",
    )


def vmagent(tmp: Path, *, port: int, config: Path, remote_write: str) -> Process:
    """vmagent scraping what ``config`` names (service discovery every second) and
    remote-writing to ``remote_write`` (a ``.../api/v1/write`` URL)."""
    (tmp / "vmagent-data").mkdir(exist_ok=True)
    return Process(
        "vmagent",
        [
            binary("vmagent"),
            f"-promscrape.config={config}",
            "-promscrape.httpSDCheckInterval=1s",
            f"-remoteWrite.url={remote_write}",
            f"-remoteWrite.tmpDataPath={tmp / 'vmagent-data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
        ],
        tmp / "vmagent.log",
    )


def vmalert(
    tmp: Path,
    *,
    port: int,
    rules_glob: str,
    datasource: str,
    notifier: str,
    remote_write: str | None = None,
    check_interval: str | None = None,
) -> Process:
    """vmalert evaluating the rule files ``rules_glob`` matches every second against
    ``datasource`` and notifying the Alertmanager at ``notifier``. It reads the files again
    on ``/-/reload`` (or SIGHUP), and with ``check_interval`` also on its own. Recording
    rules (AAMI's stamp ``aami_rule_group_info`` is one) need ``remote_write``, where their
    samples go (``datasource`` by default); vmalert refuses to start without it."""
    return Process(
        "vmalert",
        [
            binary("vmalert"),
            f"-rule={rules_glob}",
            f"-datasource.url={datasource}",
            f"-notifier.url={notifier}",
            f"-remoteWrite.url={remote_write or datasource}",
            "-evaluationInterval=1s",
            f"-httpListenAddr=127.0.0.1:{port}",
            *([f"-configCheckInterval={check_interval}"] if check_interval else []),
        ],
        tmp / "vmalert.log",
    )


def vmalert_dry_run(rule_file: Path) -> subprocess.CompletedProcess[str]:
    """``vmalert -dryRun``: parse a rule file, its expressions (MetricsQL) and templates."""
    return subprocess.run(
        [binary("vmalert"), "-dryRun", f"-rule={rule_file}", "-loggerLevel=ERROR"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
