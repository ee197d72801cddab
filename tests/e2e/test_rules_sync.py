"""`aami rules sync` for an HA pair of Prometheus servers on "other hosts", all real: the AAMI
server, two Prometheus, and one sync process beside each, with its evaluator's own token."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import TOKEN
from tests.support.ports import free_port
from tests.support.processes import Process, aami_server, binary, prometheus
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

TEMPLATE = {
    "name": "GPUHot",
    "query_template": 'aami_test_gpu_temperature{group_id="{{.group_id}}"} > {{.threshold}}',
    "default_config": {"threshold": 90},
    "severity": "critical",
    "for_duration": "0s",
}


@dataclass
class Member:
    """One Prometheus of the pair, its rules directory and its sync."""

    name: str
    url: str
    rules_dir: Path
    prometheus: Process
    sync: Process | None = None

    def alert_exprs(self) -> dict[str, list[str]]:
        """Alerting rules' expressions by group, as this Prometheus runs them."""
        response = httpx.get(f"{self.url}/api/v1/rules", params={"type": "alert"}, timeout=5)
        response.raise_for_status()
        return {
            g["name"]: [r["query"] for r in g["rules"]] for g in response.json()["data"]["groups"]
        }


@dataclass
class Pair:
    tmp: Path
    server_url: str
    members: list[Member]
    processes: list[Process] = field(default_factory=list)

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )


def _member(tmp: Path, name: str) -> Member:
    home = tmp / name
    rules_dir = home / "rules"
    rules_dir.mkdir(parents=True)
    port = free_port()
    config = home / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules_dir / "*.yml")],
            }
        )
    )
    process = prometheus(home, port=port, config=config)
    process.name = f"prometheus-{name}"
    return Member(name, f"http://127.0.0.1:{port}", rules_dir, process)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    port = free_port()
    server = aami_server(
        tmp_path,
        port=port,
        token=TOKEN,
        env={
            # AAMI's own publisher has no Prometheus here: both get their rules by sync
            "PROMETHEUS_RULE_PATH": str(tmp_path / "published"),
            "PROMETHEUS_RELOAD_ENABLED": "false",
            "PROMETHEUS_URL": "http://127.0.0.1:1",
            "ALERTMANAGER_URL": "http://127.0.0.1:1",
        },
    )
    members = [_member(tmp_path, "prom-a"), _member(tmp_path, "prom-b")]
    running = Pair(tmp_path, f"http://127.0.0.1:{port}", members)
    running.processes += [server, *(m.prometheus for m in members)]
    try:
        for process in running.processes:
            process.start()
        server.wait_http(f"{running.server_url}/health/ready")
        for member in members:
            member.prometheus.wait_http(f"{member.url}/-/ready")
        yield running
    finally:
        for process in reversed(running.processes):
            process.stop()


def _sync(pair: Pair, member: Member, token: str) -> Process:
    token_file = member.rules_dir.parent / "evaluator-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return Process(
        f"rules-sync-{member.name}",
        [
            sys.executable,
            "-m",
            "aami",
            "rules",
            "sync",
            "--server",
            pair.server_url,
            "--evaluator",
            member.name,
            "--token-file",
            str(token_file),
            "--rules-dir",
            str(member.rules_dir),
            "--evaluator-url",
            member.url,
            "--promtool",
            binary("promtool"),
            "--wait",
            "5",
            "--confirm-timeout",
            "10",
        ],
        member.rules_dir.parent / "rules-sync.log",
    )


def _evaluator(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/evaluators/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _confirmed(api: httpx.Client, name: str, than: str | None = None) -> dict[str, Any] | None:
    """The evaluator once it is in sync on a desired revision other than ``than``."""
    evaluator = _evaluator(api, name)
    if (
        evaluator["in_sync"] is True
        and evaluator["loaded_revision"] == evaluator["desired_revision"]
        and evaluator["desired_revision"] != than
    ):
        return evaluator
    return None


def _log(member: Member) -> str:
    return (member.rules_dir.parent / "rules-sync.log").read_text()


def test_an_ha_pair_converges_and_a_dead_member_catches_up(pair: Pair) -> None:
    a, b = pair.members
    with pair.api as api:
        assert api.post("/api/v1/groups", json={"id": "grp-ha", "name": "ha"}).status_code == 201
        tokens = {}
        for member in pair.members:
            response = api.post(
                "/api/v1/evaluators",
                json={
                    "name": member.name,
                    "kind": "prometheus",
                    "url": member.url,
                    "groups": ["grp-ha"],
                },
            )
            assert response.status_code == 201, response.text
            tokens[member.name] = response.json()["token"]
        # each token is its own evaluator's: prom-a's cannot read prom-b's rules
        denied = httpx.get(
            f"{pair.server_url}/api/v1/evaluators/prom-b/rules",
            headers={"Authorization": f"Bearer {tokens['prom-a']}"},
            timeout=10,
        )
        assert denied.status_code == 403

        for member in pair.members:
            member.sync = _sync(pair, member, tokens[member.name])
            pair.processes.append(member.sync.start())

        assert api.post("/api/v1/alert-templates", json=TEMPLATE).status_code == 201
        response = api.post(
            "/api/v1/alert-rules",
            json={"template_id": "GPUHot", "group_id": "grp-ha", "config": {"threshold": 80}},
        )
        assert response.status_code == 201, response.text
        rule_id = response.json()["id"]

        # both Prometheus run the rule, and AAMI has each one's confirmation
        for member in pair.members:
            wait_for(
                lambda m=member: any(  # type: ignore[misc]
                    "> 80" in expr for expr in m.alert_exprs().get("aami-grp-ha", [])
                ),
                timeout=60,
                what=f"{member.name} to run the rule",
            )
        first = {
            m.name: wait_for(
                lambda m=m: _confirmed(api, m.name),  # type: ignore[misc]
                timeout=60,
                what=f"{m.name} confirmed in sync",
            )
            for m in pair.members
        }
        revision = first["prom-a"]["desired_revision"]
        assert first["prom-b"]["desired_revision"] == revision  # an HA pair: the same set
        # AAMI's own look, without the syncs' word: each Prometheus runs the stamped groups
        for member in pair.members:
            loaded = api.get(f"/api/v1/evaluators/{member.name}/loaded").json()
            assert loaded["in_sync"] is True, loaded
            assert "aami-grp-ha" in {g["group"] for g in loaded["groups"]}
        assert first["prom-a"]["report_error"] is None
        names = sorted(p.name for p in a.rules_dir.glob("*.yml"))
        assert "group-grp-ha.yml" in names
        assert names == sorted(p.name for p in b.rules_dir.glob("*.yml"))
        for name in names:
            assert (a.rules_dir / name).read_bytes() == (b.rules_dir / name).read_bytes()

        # prom-b dies; the threshold changes: prom-a converges, prom-b's sync says why not
        assert b.prometheus.popen is not None
        b.prometheus.popen.kill()
        b.prometheus.popen.wait()
        response = api.put(f"/api/v1/alert-rules/{rule_id}", json={"config": {"threshold": 75}})
        assert response.status_code == 200, response.text
        second = wait_for(
            lambda: _confirmed(api, "prom-a", than=revision),
            timeout=60,
            what="prom-a confirmed on the new revision",
        )
        assert any("> 75" in expr for expr in a.alert_exprs()["aami-grp-ha"])
        down = wait_for(
            lambda: (e := _evaluator(api, "prom-b"))["report_error"] and e,
            timeout=60,
            what="prom-b's sync to report its error",
        )
        assert down["in_sync"] is False
        assert down["desired_revision"] == second["desired_revision"]
        assert down["loaded_revision"] != second["desired_revision"]
        assert "prometheus" in down["report_error"]
        assert api.get("/api/v1/evaluators/prom-b/loaded").json()["reachable"] is False
        assert TOKEN not in _log(b)
        assert tokens["prom-b"] not in _log(b)

        # prom-b comes back with the files it had: its sync installs the new set, reloads,
        # confirms
        b.prometheus.start()
        b.prometheus.wait_http(f"{b.url}/-/ready")
        wait_for(
            lambda: _confirmed(api, "prom-b", than=revision),
            timeout=90,
            what="prom-b to catch up",
        )
        assert any("> 75" in expr for expr in b.alert_exprs()["aami-grp-ha"])
        assert _evaluator(api, "prom-b")["report_error"] is None
        assert api.get("/api/v1/evaluators/prom-b/loaded").json()["in_sync"] is True
        assert (a.rules_dir / "group-grp-ha.yml").read_bytes() == (
            b.rules_dir / "group-grp-ha.yml"
        ).read_bytes()
