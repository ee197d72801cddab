"""End-to-end fixtures: the AAMI server, node_exporter, Prometheus and Alertmanager as real
processes on free loopback ports, with 1 s intervals."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aami.security.tls import ensure_stack_tls
from aami.stack.configs import alertmanager_base_for_stack, history_env
from tests.support.ports import free_port
from tests.support.processes import (
    Process,
    aami_server,
    alertmanager,
    node_exporter,
    prometheus,
)
from tests.support.prometheus_config import REPO, shipped_config_for_test
from tests.support.wait import wait_for
from tests.support.webhook import WebhookReceiver

TOKEN = "e2e-admin-token-0123456789"


@dataclass
class NodeExporter:
    port: int
    textfile_dir: Path
    process: Process

    def write_metric(self, name: str, text: str) -> None:
        """Put a .prom file in its textfile directory (written whole, then renamed)."""
        tmp = self.textfile_dir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.rename(self.textfile_dir / f"{name}.prom")


@dataclass
class Stack:
    tmp: Path
    server_url: str
    prometheus_url: str
    rules_dir: Path
    server: Process
    prometheus: Process
    node_exporters: list[NodeExporter]
    alertmanager_url: str | None = None
    webhook: WebhookReceiver | None = None
    processes: list[Process] = field(default_factory=list)
    ca_file: Path | None = None  # the CA of the server's certificate, when it serves HTTPS

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What a client of the server verifies it with."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True

    @property
    def node_exporter_port(self) -> int:
        return self.node_exporters[0].port

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
            verify=self.verify,
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant query against the real Prometheus."""
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=5
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def loaded_rules(self) -> dict[str, list[dict[str, Any]]]:
        """Alerting rules Prometheus has loaded, by group name (without the recording rule
        that stamps each AAMI group)."""
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/rules", params={"type": "alert"}, timeout=5
        )
        response.raise_for_status()
        return {g["name"]: g["rules"] for g in response.json()["data"]["groups"]}


SHIPPED_ALERTMANAGER = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def _alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """The shipped config; each receiver delivers to ``<webhook>/<receiver name>``."""
    return alertmanager_base_for_stack(
        yaml.safe_load(SHIPPED_ALERTMANAGER.read_text()),
        webhook_url,
        group_wait="0s",
        group_interval="1s",
    )


def start_stack(
    tmp: Path,
    *,
    node_exporters: int = 1,
    with_alertmanager: bool = False,
    server_env: dict[str, str] | None = None,
    tls: bool = False,
    history_token: str | None = None,
) -> Stack:
    """Start everything; the caller stops ``stack.processes`` in reverse order. With
    ``tls``, the server serves HTTPS with a certificate from a CA of the test's own, which
    Prometheus trusts for service discovery and for its scrape of AAMI. With
    ``history_token`` (and ``with_alertmanager``), the Alertmanager config the server writes
    sends every alert to the server's alert-history webhook with that token."""
    server_port, prom_port = free_port(), free_port()
    rules_dir = tmp / "rules"
    (rules_dir / "generated").mkdir(parents=True)
    token_file = tmp / "token"
    token_file.write_text(TOKEN)
    certificates = ensure_stack_tls(tmp / "tls") if tls else None
    server_url = f"{'https' if tls else 'http'}://127.0.0.1:{server_port}"
    processes: list[Process] = []
    webhook = None
    alertmanager_url = None
    if with_alertmanager:
        webhook = WebhookReceiver().__enter__()
        am_port = free_port()
        (tmp / "alertmanager").mkdir()
        am_base = tmp / "alertmanager" / "base.yml"
        am_base.write_text(yaml.safe_dump(_alertmanager_config(webhook.url(""))))
        am_config = tmp / "alertmanager" / "alertmanager.yml"
        am_config.write_text(am_base.read_text())
        processes.append(alertmanager(tmp, port=am_port, config=am_config))
        alertmanager_url = f"http://127.0.0.1:{am_port}"
    exporters = []
    for index in range(node_exporters):
        textfile_dir = tmp / f"textfile-{index}"
        textfile_dir.mkdir()
        port = free_port()
        process = node_exporter(tmp, port=port, textfile_dir=textfile_dir)
        process.log_path = tmp / f"node_exporter-{index}.log"
        exporters.append(NodeExporter(port, textfile_dir, process))
        processes.append(process)
    config = shipped_config_for_test(
        tmp,
        server_url=server_url,
        token_file=token_file,
        rules_dir=rules_dir,
        prometheus_port=prom_port,
        alertmanager=alertmanager_url.removeprefix("http://") if alertmanager_url else None,
        ca_file=certificates.ca_file if certificates else None,
    )
    server = aami_server(
        tmp,
        port=server_port,
        token=TOKEN,
        env={
            "PROMETHEUS_RULE_PATH": str(rules_dir / "generated"),
            "PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}",
            "ALERTMANAGER_URL": alertmanager_url or "http://127.0.0.1:1",
            "PROMETHEUS_RELOAD_TIMEOUT": "3s",
            "AAMI_SILENCE_WATCH_INTERVAL": "1",
            **(
                {
                    "AAMI_ALERTMANAGER_CONFIG_PATH": str(tmp / "alertmanager" / "alertmanager.yml"),
                    "AAMI_ALERTMANAGER_BASE_CONFIG": str(tmp / "alertmanager" / "base.yml"),
                }
                if with_alertmanager
                else {}
            ),
            **(
                {
                    "AAMI_TLS_CERT_FILE": str(certificates.cert_file),
                    "AAMI_TLS_KEY_FILE": str(certificates.key_file),
                }
                if certificates
                else {}
            ),
            **(
                history_env(
                    server_url=server_url,
                    token_file=_token_file(tmp / "history-token", history_token),
                    ca_file=certificates.ca_file if certificates else None,
                )
                if history_token
                else {}
            ),
            **(server_env or {}),
        },
    )
    prom = prometheus(tmp, port=prom_port, config=config)
    processes += [server, prom]
    stack = Stack(
        tmp,
        server_url,
        f"http://127.0.0.1:{prom_port}",
        rules_dir / "generated",
        server,
        prom,
        exporters,
        alertmanager_url,
        webhook,
        processes,
        certificates.ca_file if certificates else None,
    )
    try:
        for process in processes:
            process.start()
        if certificates is None:
            server.wait_http(f"{server_url}/health/ready")
        else:
            wait_for(
                lambda: server_ready(server, f"{server_url}/health/ready", stack.verify),
                timeout=30,
                what="aami-server over https",
            )
        for exporter in exporters:
            exporter.process.wait_http(f"http://127.0.0.1:{exporter.port}/metrics")
        prom.wait_http(f"{stack.prometheus_url}/-/ready")
        if alertmanager_url:
            processes[0].wait_http(f"{alertmanager_url}/-/ready")
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def _token_file(path: Path, token: str) -> Path:
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def server_ready(process: Process, url: str, verify: ssl.SSLContext | bool) -> bool:
    assert process.popen is not None
    if process.popen.poll() is not None:
        raise AssertionError(f"{process.name} exited:\n{process.log_path.read_text()}")
    return httpx.get(url, timeout=1, verify=verify).status_code == 200


def stop_stack(stack: Stack) -> None:
    for process in reversed(stack.processes):
        process.stop()
    if stack.webhook is not None:
        stack.webhook.__exit__()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Server + node_exporter + Prometheus (shipped config, 1 s intervals)."""
    running = start_stack(tmp_path)
    try:
        yield running
    finally:
        stop_stack(running)


@pytest.fixture
def alert_stack(tmp_path: Path) -> Iterator[Stack]:
    """Server + two node_exporters + Prometheus + Alertmanager + a webhook receiver."""
    running = start_stack(tmp_path, node_exporters=2, with_alertmanager=True)
    try:
        yield running
    finally:
        stop_stack(running)
