"""End-to-end fixtures: the AAMI server, node_exporter and Prometheus as real processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.processes import Process, aami_server, node_exporter, prometheus
from tests.support.prometheus_config import shipped_config_for_test

TOKEN = "e2e-admin-token-0123456789"

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    tmp: Path
    server_url: str
    prometheus_url: str
    node_exporter_port: int
    textfile_dir: Path
    rules_dir: Path
    processes: list[Process]

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant query against the real Prometheus."""
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=5
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Server + node_exporter + Prometheus (shipped config, 1 s intervals) on free ports."""
    server_port, prom_port, node_port = free_port(), free_port(), free_port()
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    rules_dir = tmp_path / "rules"
    (rules_dir / "generated").mkdir(parents=True)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    server_url = f"http://127.0.0.1:{server_port}"
    config = shipped_config_for_test(
        tmp_path,
        server_url=server_url,
        token_file=token_file,
        rules_dir=rules_dir,
        prometheus_port=prom_port,
    )
    processes = [
        aami_server(
            tmp_path,
            port=server_port,
            token=TOKEN,
            env={
                "PROMETHEUS_RULE_PATH": str(rules_dir / "generated"),
                "PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}",
            },
        ),
        node_exporter(tmp_path, port=node_port, textfile_dir=textfile_dir),
        prometheus(tmp_path, port=prom_port, config=config),
    ]
    try:
        for process in processes:
            process.start()
        processes[0].wait_http(f"{server_url}/health/ready")
        processes[1].wait_http(f"http://127.0.0.1:{node_port}/metrics")
        processes[2].wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
        yield Stack(
            tmp_path,
            server_url,
            f"http://127.0.0.1:{prom_port}",
            node_port,
            textfile_dir,
            rules_dir,
            processes,
        )
    finally:
        for process in reversed(processes):
            process.stop()
