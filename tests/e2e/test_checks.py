"""The custom check path, all real and over TLS: AAMI policy → agent (signed checks over
https, trusting the stack's CA) → textfile → node_exporter (discovered by Prometheus's
service discovery over https with ``ca_file``) → Prometheus → the spec's
MountPointUnavailable rule → Alertmanager → webhook."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aami.agent.signing import load_keys
from tests.api.test_checks import MOUNT_CHECK
from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

MOUNT_RULE = {
    "name": "MountPointUnavailable",
    "query_template": 'mount_status{group_id="{{.group_id}}"} == 0',
    "severity": "critical",
    "for_duration": "0s",
    "annotations": {
        "summary": "Mount point {{ $labels.path }} unavailable on {{ $labels.instance }}"
    },
}


@pytest.fixture
def alert_stack(tmp_path: Path) -> Iterator[Stack]:
    """Server (HTTPS) + two node_exporters + Prometheus + Alertmanager + a webhook."""
    running = start_stack(tmp_path, node_exporters=2, with_alertmanager=True, tls=True)
    try:
        yield running
    finally:
        stop_stack(running)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Server (HTTPS) + node_exporter + Prometheus."""
    running = start_stack(tmp_path, tls=True)
    try:
        yield running
    finally:
        stop_stack(running)


def _agent(stack: Stack, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "aami",
            "agent",
            "once",
            "--config",
            str(config),
            "--textfile-dir",
            str(stack.node_exporters[0].textfile_dir),
            "--cache-dir",
            str(config.parent / "agent-cache"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _register(stack: Stack, tmp: Path) -> Path:
    """Register the node the way an operator would: bootstrap token → agent register."""
    with stack.api as api:
        token = api.post(
            "/api/v1/bootstrap-tokens", json={"name": "ml-racks", "group_id": "ml-training-group"}
        ).json()["token"]
    config = tmp / "agent.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aami",
            "agent",
            "register",
            "--server",
            stack.server_url,
            "--bootstrap-token",
            token,
            "--hostname",
            "gpu-node-01",
            "--ip-address",
            "127.0.0.1",
            "--node-exporter-port",
            str(stack.node_exporter_port),
            "--config",
            str(config),
            "--ca-file",
            str(stack.ca_file),
            "--cache-dir",
            str(tmp / "agent-cache"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert token not in result.stdout + result.stderr
    assert "pinned check-signing keys" in result.stdout
    return config


def test_mount_check_alert_fires_and_resolves(alert_stack: Stack, tmp_path: Path) -> None:
    stack = alert_stack
    assert stack.webhook is not None
    data, models, datasets = (tmp_path / name for name in ("data", "models", "datasets"))
    for path in (data, models, datasets):
        path.mkdir()
    with stack.api as api:
        api.post("/api/v1/groups", json={"id": "ml-training-group", "name": "ML training"})
        api.post("/api/v1/script-templates", json=MOUNT_CHECK)
        api.post(
            "/api/v1/script-policies",
            json={
                "template_id": "mount-check",
                "scope": "group",
                "group_id": "ml-training-group",
                # /proc is a mount point; the other two are plain directories
                "config": {"paths": f"/proc,{models},{datasets}"},
                "is_active": True,
            },
        )
        api.post("/api/v1/alert-templates", json=MOUNT_RULE)
        api.post(
            "/api/v1/alert-rules",
            json={"template_id": "MountPointUnavailable", "group_id": "ml-training-group"},
        )
    config = _register(stack, tmp_path)
    assert stack.server_url.startswith("https://")
    result = _agent(stack, config)
    assert result.returncode == 0, result.stdout + result.stderr
    # the agent ran the script because the key it pinned at registration signed it
    with stack.api as api:
        served_keys = [k["key_id"] for k in api.get("/api/v1/checks/signing-keys").json()["keys"]]
    assert list(load_keys(tmp_path / "agent-cache" / "signing-keys.json")) == served_keys

    written = (stack.node_exporters[0].textfile_dir / "aami_mount-check.prom").read_text()
    assert [line for line in written.splitlines() if not line.startswith("#")] == [
        'mount_status{path="/proc"} 1',
        f'mount_status{{path="{models}"}} 0',
        f'mount_status{{path="{datasets}"}} 0',
    ]
    series = wait_for(
        lambda: stack.query(f'mount_status{{path="{models}"}} == 0'),
        timeout=30,
        what="mount_status scraped by Prometheus",
    )
    assert series[0]["metric"]["group_id"] == "ml-training-group"
    assert series[0]["metric"]["instance"] == "gpu-node-01"
    # the node came from service discovery read over https, and AAMI is scraped over https
    targets = httpx.get(f"{stack.prometheus_url}/api/v1/targets", timeout=5).json()["data"]
    by_job = {t["labels"]["job"]: t for t in targets["activeTargets"]}
    assert by_job["node-exporter"]["labels"]["instance"] == "gpu-node-01"
    assert by_job["node-exporter"]["discoveredLabels"]["__meta_url"].startswith("https://")
    wait_for(lambda: stack.query('up{job="aami"} == 1'), timeout=30, what="AAMI scraped over https")
    assert by_job["aami"]["scrapeUrl"].startswith("https://")
    assert stack.query(
        f'aami_agent_signing_key_info{{instance="gpu-node-01",key_id="{served_keys[0]}"}}'
    )
    alert = stack.webhook.wait_for_alert(
        alertname="MountPointUnavailable_MLTraining", path=str(models)
    )
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == (f"Mount point {models} unavailable on gpu-node-01")

    # the path becomes available: a bind mount would need privileges, so the policy now
    # watches a real mount point instead, and the alert for the old path resolves
    with stack.api as api:
        policy_id = api.get("/api/v1/script-policies").json()["data"][0]["id"]
        api.put(f"/api/v1/script-policies/{policy_id}", json={"config": {"paths": "/proc"}})
    result = _agent(stack, config)
    assert result.returncode == 0, result.stdout + result.stderr

    webhook = stack.webhook

    def resolved() -> bool:
        return any(
            a["labels"].get("path") == str(models) for a in webhook.alerts(status="resolved")
        )

    wait_for(resolved, timeout=60, what="the resolved notification")


def test_server_down_agent_runs_cached_checks(stack: Stack, tmp_path: Path) -> None:
    with stack.api as api:
        api.post("/api/v1/groups", json={"id": "ml-training-group", "name": "ML training"})
        api.post("/api/v1/script-templates", json=MOUNT_CHECK)
        api.post(
            "/api/v1/script-policies",
            json={"template_id": "mount-check", "scope": "global", "config": {"paths": "/proc"}},
        )
    config = _register(stack, tmp_path)
    first = _agent(stack, config)
    assert first.returncode == 0, first.stdout + first.stderr
    textfile = stack.node_exporters[0].textfile_dir
    (textfile / "aami_mount-check.prom").unlink()
    wait_for(
        lambda: stack.query('up{instance="gpu-node-01"} == 1'),
        timeout=30,
        what="the registered node discovered before the server goes away",
    )

    stack.server.stop()
    second = _agent(stack, config)
    assert second.returncode == 0, second.stdout + second.stderr
    assert 'mount_status{path="/proc"} 1' in (textfile / "aami_mount-check.prom").read_text()
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families((textfile / "aami_agent.prom").read_text())
        for s in family.samples
    }
    assert samples["aami_agent_server_reachable"] == 0
    assert samples["aami_check_success"] == 1
    wait_for(
        lambda: stack.query('aami_agent_server_reachable{instance="gpu-node-01"} == 0'),
        timeout=30,
        what="Prometheus to see that the agent lost its server",
    )
