"""Two real Alertmanagers in one gossip cluster, both alerted by a real Prometheus, both
managed by a real AAMI server (ALERTMANAGER_URL names both; they read the config file AAMI
writes): one notification per alert group, not one per member; a member killed with
kill -9 leaves the alerts, the silences and AAMI's reads to the other; AAMI's publish
status names the dead member until it is back."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import TOKEN, _alertmanager_config
from tests.support.ports import free_port
from tests.support.processes import (
    PEER_TIMEOUT,
    Process,
    aami_server,
    alertmanager,
    node_exporter,
    prometheus,
)
from tests.support.prometheus_config import shipped_config_for_test
from tests.support.wait import wait_for
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.e2e

GROUP_INTERVAL = 1.0  # the test's Alertmanager config (tests/e2e/conftest.py)
RESEND_DELAY = 3.0  # Prometheus re-sends firing alerts this often (tests/support/processes.py)

# Alerts of the test's own rule file: one always fires, the others fire when node_exporter's
# textfile collector shows ``cluster_test_trigger{name="..."} 1``.
RULES = {
    "groups": [
        {
            "name": "cluster-test",
            "rules": [
                {"alert": "ClusterAlways", "expr": "vector(1)", "labels": {"severity": "warning"}},
                {
                    "alert": "ClusterTriggered",
                    "expr": "cluster_test_trigger == 1",
                    "labels": {"severity": "warning"},
                },
            ],
        }
    ]
}


@dataclass
class Member:
    url: str
    process: Process

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=5)
        response.raise_for_status()
        return response.json()


@dataclass
class Cluster:
    tmp: Path
    members: list[Member]
    server: Process
    server_url: str
    textfile_dir: Path
    webhook: WebhookReceiver
    processes: list[Process]

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def trigger(self, *names: str) -> None:
        text = "".join(f'cluster_test_trigger{{name="{name}"}} 1\n' for name in names)
        tmp = self.textfile_dir / ".cluster.prom.tmp"
        tmp.write_text(text)
        tmp.rename(self.textfile_dir / "cluster.prom")

    def notified(self, **labels: str) -> list[dict[str, Any]]:
        """Notifications (not alerts) that carry a firing alert with these labels."""
        with self.webhook._lock:
            notes = list(self.webhook.notifications)
        return [
            note
            for note in notes
            if any(
                alert["status"] == "firing"
                and all(alert["labels"].get(k) == v for k, v in labels.items())
                for alert in note.get("alerts", [])
            )
        ]

    def kill(self, member: Member) -> None:
        """kill -9: no shutdown, no goodbye to the other member."""
        popen = member.process.popen
        assert popen is not None
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait(10)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.webhook.__exit__()


def _start(tmp: Path) -> Cluster:
    webhook = WebhookReceiver().__enter__()
    rules_dir = tmp / "rules"
    (rules_dir / "generated").mkdir(parents=True)
    (rules_dir / "cluster-test.yml").write_text(yaml.safe_dump(RULES))
    token_file = tmp / "token"
    token_file.write_text(TOKEN)
    textfile_dir = tmp / "textfile"
    textfile_dir.mkdir()
    am_dir = tmp / "alertmanager"
    am_dir.mkdir()
    base = am_dir / "base.yml"
    base.write_text(yaml.safe_dump(_alertmanager_config(webhook.url(""))))
    config = am_dir / "alertmanager.yml"  # both members read the file AAMI writes
    config.write_text(base.read_text())
    web, gossip = [free_port(), free_port()], [free_port(), free_port()]
    members = [
        Member(
            f"http://127.0.0.1:{web[i]}",
            alertmanager(
                tmp,
                port=web[i],
                config=config,
                cluster_port=gossip[i],
                peers=[gossip[1 - i]],
                name=f"alertmanager-{i}",
            ),
        )
        for i in (0, 1)
    ]
    server_port, prom_port, exporter_port = free_port(), free_port(), free_port()
    server_url = f"http://127.0.0.1:{server_port}"
    server = aami_server(
        tmp,
        port=server_port,
        token=TOKEN,
        env={
            "PROMETHEUS_RULE_PATH": str(rules_dir / "generated"),
            "PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}",
            "PROMETHEUS_RELOAD_TIMEOUT": "3s",
            "ALERTMANAGER_URL": ",".join(m.url for m in members),
            "AAMI_ALERTMANAGER_CONFIG_PATH": str(config),
            "AAMI_ALERTMANAGER_BASE_CONFIG": str(base),
            "AAMI_PUBLISH_CHECK_INTERVAL": "1s",
            "AAMI_PUBLISH_RETRY_MAX": "2s",
        },
    )
    prom_config = shipped_config_for_test(
        tmp,
        server_url=server_url,
        token_file=token_file,
        rules_dir=rules_dir,
        prometheus_port=prom_port,
        alertmanager=[m.url.removeprefix("http://") for m in members],
    )
    processes = [
        *(m.process for m in members),
        node_exporter(tmp, port=exporter_port, textfile_dir=textfile_dir),
        server,
        prometheus(tmp, port=prom_port, config=prom_config),
    ]
    cluster = Cluster(tmp, members, server, server_url, textfile_dir, webhook, processes)
    try:
        for process in processes:
            process.start()
        for member in members:
            member.process.wait_http(f"{member.url}/-/ready")
        server.wait_http(f"{server_url}/health/ready")
        processes[-1].wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
        for member in members:
            wait_for(
                lambda m=member: len(m.get("/api/v2/status")["cluster"]["peers"]) == 2,  # type: ignore[misc]
                timeout=30,
                what=f"{member.url} to see both members",
            )
        with cluster.api as api:
            wait_for(lambda: _status(api)["in_sync"], timeout=60, what="both members in sync")
            api.post("/api/v1/groups", json={"id": "grp-c", "name": "cluster"})
            target = api.post(
                "/api/v1/targets",
                json={
                    "hostname": "node-c",
                    "ip_address": "127.0.0.1",
                    "group_ids": ["grp-c"],
                    "exporters": [{"type": "node_exporter", "port": exporter_port}],
                },
            )
            assert target.status_code == 201, target.text
        wait_for(
            lambda: _query(prom_port, 'up{job="node-exporter"} == 1'),
            timeout=30,
            what="node_exporter scraped",
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/query", params={"query": promql}, timeout=5
    )
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _status(api: httpx.Client) -> dict[str, Any]:
    answer: dict[str, Any] = api.get("/api/v1/alertmanager/status").json()
    return answer


def _metric(api: httpx.Client, name: str) -> float | None:
    text = api.get("/metrics").text
    found = re.search(rf'^{name}\{{target="alertmanager"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else None


def _holds(member: Member, alertname: str, **labels: str) -> bool:
    return any(
        a["labels"].get("alertname") == alertname
        and all(a["labels"].get(k) == v for k, v in labels.items())
        for a in member.get("/api/v2/alerts")
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = _start(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_an_alert_is_notified_once_not_once_per_member(cluster: Cluster) -> None:
    with cluster.api as api:
        status = _status(api)
    assert set(status["members"]) == {m.url for m in cluster.members}
    assert all(m["in_sync"] for m in status["members"].values())
    # Both members hold the alert (Prometheus alerts each): each could notify.
    for member in cluster.members:
        wait_for(
            lambda m=member: _holds(m, "ClusterAlways"),  # type: ignore[misc]
            timeout=60,
            what=f"{member.url} to hold ClusterAlways",
        )
    wait_for(
        lambda: cluster.notified(alertname="ClusterAlways"),
        timeout=60,
        what="the first notification",
    )
    # A real condition window, not a stand-in for one: the second member notifies, if it
    # ever does, PEER_TIMEOUT after the first (its position in the cluster) unless gossip
    # told it the first did, and a group is flushed every GROUP_INTERVAL while Prometheus
    # re-sends every RESEND_DELAY. Three times that passes without a second notification.
    window = 3 * (PEER_TIMEOUT + GROUP_INTERVAL + RESEND_DELAY)
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        assert len(cluster.notified(alertname="ClusterAlways")) == 1, cluster.webhook.notifications
        time.sleep(0.2)
    assert all(_holds(m, "ClusterAlways") for m in cluster.members)


def test_a_killed_member_leaves_alerts_silences_and_reads_to_the_other(
    cluster: Cluster,
) -> None:
    first, second = cluster.members
    with cluster.api as api:
        created = api.post(
            "/api/v1/silences",
            json={
                "matchers": [
                    {"name": "alertname", "value": "ClusterTriggered"},
                    {"name": "name", "value": "quiet"},
                ],
                "duration": "1h",
                "created_by": "ops",
                "comment": "maintenance of quiet",
            },
        )
        assert created.status_code == 201, created.text
        silence_id = created.json()["id"]
        for member in cluster.members:  # gossip carried it to the other member
            wait_for(
                lambda m=member: any(s["id"] == silence_id for s in m.get("/api/v2/silences")),  # type: ignore[misc]
                timeout=30,
                what=f"the silence on {member.url}",
            )
        api.get("/api/v1/silences").raise_for_status()  # AAMI reads from the first member

        cluster.kill(first)
        cluster.trigger("loud", "quiet")

        # AAMI reads from the survivor: the silence, and both new alerts (one silenced).
        silences = api.get("/api/v1/silences")
        assert silences.status_code == 200, silences.text
        assert [s["id"] for s in silences.json() if s["state"] == "active"] == [silence_id]

        def both_alerts() -> dict[str, dict[str, Any]] | None:
            response = api.get("/api/v1/alerts")
            found = {
                a["labels"].get("name"): a
                for a in response.json()
                if a["labels"].get("alertname") == "ClusterTriggered"
            }
            return found if {"loud", "quiet"} <= set(found) else None

        alerts = wait_for(both_alerts, timeout=60, what="both new alerts read through AAMI")
        assert alerts["quiet"]["silenced"] is True
        assert alerts["loud"]["silenced"] is False

        # The new alert is delivered by the survivor; the silenced one, evaluated and sent
        # together with it, is not.
        wait_for(
            lambda: cluster.notified(alertname="ClusterTriggered", name="loud"),
            timeout=60,
            what="the new alert notified by the surviving member",
        )
        assert cluster.notified(alertname="ClusterTriggered", name="quiet") == []

        # The publish status names the dead member, the survivor is in sync.
        status = wait_for(
            lambda: (answer := _status(api))["members"][first.url]["error"] and answer,
            timeout=30,
            what="the dead member named in the status",
        )
        assert status["in_sync"] is False
        assert status["out_of_sync"] == [f"config@{first.url}"]
        assert status["members"][first.url]["in_sync"] is False
        assert "does not answer" in status["members"][first.url]["error"]
        assert status["members"][second.url]["in_sync"] is True
        assert status["config"]["in_sync"] is False
        assert first.url in status["config"]["error"]
        assert first.url in status["last_error"]
        wait_for(
            lambda: _metric(api, "aami_publish_in_sync") == 0.0,
            timeout=30,
            what="/metrics: the Alertmanager target not in sync",
        )
        assert _metric(api, "aami_publish_out_of_sync_scopes") == 1.0

        # A change made meanwhile reaches the survivor; the dead member reads it at start.
        channel = api.post(
            "/api/v1/notification-channels",
            json={
                "name": "cluster-pager",
                "type": "webhook",
                "settings": {"url": "http://127.0.0.1:9/"},
            },
        )
        assert channel.status_code == 201, channel.text
        wait_for(
            lambda: "cluster-pager" in second.get("/api/v2/status")["config"]["original"],
            timeout=30,
            what="the survivor running the change",
        )
        assert _status(api)["members"][first.url]["in_sync"] is False

        first.process.start()
        first.process.wait_http(f"{first.url}/-/ready")
        status = wait_for(
            lambda: (answer := _status(api))["in_sync"] and answer,
            timeout=60,
            what="both members in sync again",
        )
        assert status["out_of_sync"] == []
        assert status["config"]["error"] is None
        assert "cluster-pager" in first.get("/api/v2/status")["config"]["original"]
        wait_for(
            lambda: _metric(api, "aami_publish_in_sync") == 1.0,
            timeout=30,
            what="/metrics: the Alertmanager target in sync again",
        )
    assert cluster.notified(alertname="ClusterTriggered", name="quiet") == []
