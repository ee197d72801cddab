"""``aami stack up --alertmanager-cluster``: what the stack prepares for two gossiping
Alertmanagers (the processes themselves run in tests/e2e/test_alertmanager_cluster.py)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from aami.cli.main import app
from aami.stack.runner import Stack, StackPorts
from tests.support.ports import free_port


def _ports() -> StackPorts:
    return StackPorts(
        server=free_port(),
        prometheus=free_port(),
        node_exporter=free_port(),
        alertmanager=free_port(),
        webhook=free_port(),
        victoria_metrics=free_port(),
        vmagent=free_port(),
        vmalert=free_port(),
        alertmanager_peer=free_port(),
        alertmanager_gossip=free_port(),
        alertmanager_peer_gossip=free_port(),
    )


def test_two_members_gossip_with_each_other_and_both_are_alerted_and_managed(
    tmp_path: Path,
) -> None:
    ports = _ports()
    stack = Stack(tmp_path, ports, alertmanager_cluster=True)
    stack.prepare()
    members = [c for c in stack.children if c.name.startswith("alertmanager")]
    assert [c.name for c in members] == ["alertmanager", "alertmanager-peer"]
    first, second = (set(c.argv) for c in members)
    gossip, peer_gossip = ports.alertmanager_gossip, ports.alertmanager_peer_gossip
    assert {
        f"--web.listen-address=127.0.0.1:{ports.alertmanager}",
        f"--cluster.listen-address=127.0.0.1:{gossip}",
        f"--cluster.peer=127.0.0.1:{peer_gossip}",
    } <= first
    assert {
        f"--web.listen-address=127.0.0.1:{ports.alertmanager_peer}",
        f"--cluster.listen-address=127.0.0.1:{peer_gossip}",
        f"--cluster.peer=127.0.0.1:{gossip}",
    } <= second
    # One config file for both, each its own data.
    assert len({a for a in first | second if a.startswith("--config.file=")}) == 1
    assert len({a for a in first | second if a.startswith("--storage.path=")}) == 2

    addresses = [f"127.0.0.1:{ports.alertmanager}", f"127.0.0.1:{ports.alertmanager_peer}"]
    prometheus = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == addresses
    [server] = [c for c in stack.children if c.name == "aami-server"]
    assert server.env["ALERTMANAGER_URL"] == ",".join(f"http://{a}" for a in addresses)


def test_without_the_option_one_alertmanager_runs_unclustered(tmp_path: Path) -> None:
    stack = Stack(tmp_path, _ports())
    stack.prepare()
    [member] = [c for c in stack.children if c.name.startswith("alertmanager")]
    assert "--cluster.listen-address=" in member.argv
    [server] = [c for c in stack.children if c.name == "aami-server"]
    assert "," not in server.env["ALERTMANAGER_URL"]


def test_the_option_is_offered() -> None:
    result = CliRunner().invoke(app, ["stack", "up", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--alertmanager-cluster" in result.output
