"""The README's two commands, run as documented."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.prometheus_config import REPO
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_readme_starts_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text().splitlines()[:10]
    commands = [line.split("#")[0].strip() for line in head if line.startswith("make ")]
    assert commands == ["make up", "make test"]


def test_setup_is_idempotent() -> None:
    result = subprocess.run(
        ["make", "-s", "setup"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "setup: ready" in result.stdout
    assert "installing" not in result.stdout  # everything was already there


def test_make_up_reaches_ready_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    ports = {
        "AAMI_STACK_SERVER_PORT": free_port(),
        "AAMI_STACK_PROMETHEUS_PORT": free_port(),
        "AAMI_STACK_NODE_EXPORTER_PORT": free_port(),
    }
    env = {
        **os.environ,
        "AAMI_STATE_DIR": str(tmp_path / "state"),
        **{k: str(v) for k, v in ports.items()},
    }
    log = tmp_path / "make-up.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "up"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "AAMI stack is ready" in log.read_text(),
            timeout=120,
            what="make up to print that the stack is ready",
        )
        text = log.read_text()
        token = re.search(r"admin token\s+(\S+)", text)
        assert token is not None, text
        prometheus = f"http://127.0.0.1:{ports['AAMI_STACK_PROMETHEUS_PORT']}"

        def demo_target_up() -> bool:
            result = httpx.get(
                f"{prometheus}/api/v1/query",
                params={"query": 'up{job="node-exporter",group_id="grp-123"} == 1'},
                timeout=5,
            ).json()["data"]["result"]
            return len(result) == 1

        wait_for(demo_target_up, timeout=60, what="the demo node_exporter up in Prometheus")
        # The server speaks HTTPS only, with a certificate from the stack's own CA.
        server = f"https://127.0.0.1:{ports['AAMI_STACK_SERVER_PORT']}"
        assert f"server        {server}" in text
        trust = ssl.create_default_context(cafile=str(tmp_path / "state" / "tls" / "ca.pem"))
        groups = httpx.get(
            f"{server}/api/v1/groups",
            headers={"Authorization": f"Bearer {token.group(1)}"},
            verify=trust,
        ).json()
        assert [g["id"] for g in groups["data"]] == ["grp-123", "grp-456"]
        # What the stack's Prometheus runs is what the database says (the shipped rules on
        # AAMI itself, loaded beside them, are not taken for AAMI's own groups).
        status = wait_for(
            lambda: (
                (
                    answer := httpx.get(
                        f"{server}/api/v1/prometheus/status",
                        headers={"Authorization": f"Bearer {token.group(1)}"},
                        verify=trust,
                    ).json()
                )["in_sync"]
                and answer
            ),
            timeout=60,
            what="the stack's rules in sync",
        )
        assert set(status["groups"]) == {"grp-123", "grp-456"}
        rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert "aami-self" in {g["name"] for g in rules}
        # Prometheus read service discovery (above) and scrapes AAMI over https, with the CA
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
        urls = {t["labels"]["job"]: t["scrapeUrl"] for t in targets["activeTargets"]}
        assert urls["aami"] == f"{server}/metrics"

        # the demo alert goes the whole way: agent -> node_exporter -> Prometheus ->
        # Alertmanager -> the stack's local receiver, within a minute or so
        notifications = tmp_path / "state" / "notifications.jsonl"

        def demo_alert_delivered() -> bool:
            if not notifications.exists():
                return False
            return any(
                alert["labels"].get("alertname") == "MountPointUnavailable_Production"
                for line in notifications.read_text().splitlines()
                for alert in json.loads(line).get("alerts", [])
            )

        wait_for(demo_alert_delivered, timeout=150, what="the demo alert at the local receiver")
        assert "notification to oncall: MountPointUnavailable_Production" in log.read_text()

        # ... and into AAMI's alert history, posted by Alertmanager with the history token
        def demo_alert_recorded() -> bool:
            history = httpx.get(
                f"{server}/api/v1/alert-history",
                params={"alertname": "MountPointUnavailable_Production", "status": "firing"},
                headers={"Authorization": f"Bearer {token.group(1)}"},
                verify=trust,
            ).json()
            return bool(history["data"])

        wait_for(demo_alert_recorded, timeout=60, what="the demo alert in the alert history")

        children = _descendants(make.pid)
        # make, aami stack, server, node_exporter, alertmanager, prometheus, agent
        assert len(children) >= 6
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        make.wait(timeout=30)
        assert "AAMI stack stopped" in log.read_text()
        wait_for(
            lambda: not [pid for pid in children if _alive(pid)],
            timeout=15,
            what="every child of the stack to exit",
        )
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
