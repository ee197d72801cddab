"""Service discovery per evaluator, as a real Prometheus shard sees it: its http_sd_configs
asks for ``?evaluator=<its name>`` with its own evaluator token, and it scrapes exactly the
targets of its groups (a target in two groups is in both shards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import TOKEN
from tests.support.ports import free_port
from tests.support.processes import Process, aami_server, prometheus
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

FLEET = {"node-a": ["grp-a"], "node-b": ["grp-b"], "node-ab": ["grp-a", "grp-b"]}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = aami_server(
        tmp_path,
        port=port,
        token=TOKEN,
        env={
            "PROMETHEUS_RELOAD_ENABLED": "false",
            "PROMETHEUS_URL": "http://127.0.0.1:1",
            "ALERTMANAGER_URL": "http://127.0.0.1:1",
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.start()
        process.wait_http(f"{url}/health/ready")
        yield url
    finally:
        process.stop()


def shard(tmp: Path, server: str, name: str, token: str) -> tuple[Process, str]:
    home = tmp / name
    home.mkdir()
    token_file = home / "token"
    token_file.write_text(token)
    port = free_port()
    config = home / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "node-exporter",
                        "http_sd_configs": [
                            {
                                "url": f"{server}/api/v1/sd/prometheus?exporter_type="
                                f"node_exporter&evaluator={name}",
                                "refresh_interval": "1s",
                                "authorization": {
                                    "type": "Bearer",
                                    "credentials_file": str(token_file),
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    process = prometheus(home, port=port, config=config)
    process.name = f"prometheus-{name}"
    return process, f"http://127.0.0.1:{port}"


def scraped(url: str) -> set[str]:
    """The instances of the targets this Prometheus has discovered (up or not)."""
    answer = httpx.get(f"{url}/api/v1/targets", params={"state": "active"}, timeout=5).json()
    return {t["labels"]["instance"] for t in answer["data"]["activeTargets"]}


def test_each_shard_scrapes_exactly_its_groups_targets(server: str, tmp_path: Path) -> None:
    api = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    for group in ("grp-a", "grp-b"):
        assert api.post("/api/v1/groups", json={"id": group, "name": group}).status_code == 201
    for index, (host, groups) in enumerate(FLEET.items()):
        body = {
            "hostname": host,
            "ip_address": f"127.0.0.{index + 10}",
            "group_ids": groups,
            "exporters": [{"type": "node_exporter", "port": 1}],
        }
        assert api.post("/api/v1/targets", json=body).status_code == 201
    shards = {}
    for name, groups in (("shard-a", ["grp-a"]), ("shard-b", ["grp-b"])):
        body = {"name": name, "url": "http://127.0.0.1:1", "groups": groups}
        created = api.post("/api/v1/evaluators", json=body)
        assert created.status_code == 201, created.text
        shards[name] = shard(tmp_path, server, name, created.json()["token"])
    try:
        for process, url in shards.values():
            process.start()
            process.wait_http(f"{url}/-/ready")
        expected = {"shard-a": {"node-a", "node-ab"}, "shard-b": {"node-b", "node-ab"}}
        for name, (_, url) in shards.items():
            wait_for(
                lambda url=url, want=expected[name]: scraped(url) == want,  # type: ignore[misc]
                timeout=30,
                what=f"{name} to discover {sorted(expected[name])}",
            )
        # A target moved out of grp-a leaves shard-a and stays in shard-b.
        node_ab = api.get("/api/v1/targets", params={"hostname": "node-ab"}).json()["data"][0]
        moved = api.put(f"/api/v1/targets/{node_ab['id']}", json={"group_ids": ["grp-b"]})
        assert moved.status_code == 200, moved.text
        _, url_a = shards["shard-a"]
        wait_for(lambda: scraped(url_a) == {"node-a"}, timeout=30, what="node-ab to leave shard-a")
        assert scraped(shards["shard-b"][1]) == {"node-b", "node-ab"}
    finally:
        for process, _ in shards.values():
            process.stop()
        api.close()
