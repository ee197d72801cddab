"""The VictoriaMetrics path, all real: vmagent finds node_exporter through AAMI's service
discovery (with the service-discovery token) and remote-writes to victoria-metrics; vmalert
evaluates AAMI's per-group rules, which `aami rules sync` fetches for an evaluator of kind
vmalert, against it and notifies Alertmanager, whose webhook receiver is the test's. And
`aami stack up --victoria-metrics`."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aami.alerts.defaults import DEFAULT_ALERT_TEMPLATES
from aami.stack.control import read_record
from tests.e2e.conftest import TOKEN, NodeExporter, _alertmanager_config
from tests.support.ports import free_port
from tests.support.processes import (
    Process,
    aami_server,
    alertmanager,
    binary,
    node_exporter,
    victoria_metrics,
    vmagent,
    vmalert,
)
from tests.support.victoriametrics import query, stamp, vmagent_config_for_test, vmalert_groups
from tests.support.wait import wait_for
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.e2e

SD_TOKEN = "e2e-sd-token-0123456789abcdef"
DEFAULT_TEMPLATE_NAMES = [template["name"] for template in DEFAULT_ALERT_TEMPLATES]


@dataclass
class VmStack:
    tmp: Path
    server_url: str
    vm_url: str
    vmalert_url: str
    rules_dir: Path
    exporter: NodeExporter
    webhook: WebhookReceiver
    processes: list[Process] = field(default_factory=list)

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        return query(self.vm_url, promql)


def _start(tmp: Path) -> VmStack:
    server_port, am_port, ne_port = free_port(), free_port(), free_port()
    vm_port, agent_port, alert_port = free_port(), free_port(), free_port()
    server_url = f"http://127.0.0.1:{server_port}"
    vm_url = f"http://127.0.0.1:{vm_port}"
    alertmanager_url = f"http://127.0.0.1:{am_port}"
    rules_dir = tmp / "vmalert-rules"  # what `aami rules sync` writes, vmalert reads
    rules_dir.mkdir()
    textfile_dir = tmp / "textfile"
    textfile_dir.mkdir()
    sd_token_file = tmp / "sd-token"
    sd_token_file.write_text(SD_TOKEN + "\n")

    webhook = WebhookReceiver().__enter__()
    (tmp / "alertmanager").mkdir()
    am_config = tmp / "alertmanager" / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(_alertmanager_config(webhook.url(""))))
    agent_config = vmagent_config_for_test(
        tmp,
        server_url=server_url,
        token_file=sd_token_file,
        own_targets=[f"127.0.0.1:{port}" for port in (vm_port, agent_port, alert_port)],
    )
    exporter = NodeExporter(
        ne_port, textfile_dir, node_exporter(tmp, port=ne_port, textfile_dir=textfile_dir)
    )
    server = aami_server(
        tmp,
        port=server_port,
        token=TOKEN,
        env={
            "AAMI_SD_TOKEN": SD_TOKEN,
            # AAMI's own publisher writes for a Prometheus that is not there; vmalert gets
            # its rules from `aami rules sync` alone
            "PROMETHEUS_RULE_PATH": str(tmp / "published"),
            "PROMETHEUS_RELOAD_ENABLED": "false",
            "PROMETHEUS_URL": "http://127.0.0.1:1",
            "ALERTMANAGER_URL": alertmanager_url,
        },
    )
    processes = [
        alertmanager(tmp, port=am_port, config=am_config),
        exporter.process,
        victoria_metrics(tmp, port=vm_port),
        server,
        vmagent(tmp, port=agent_port, config=agent_config, remote_write=f"{vm_url}/api/v1/write"),
        vmalert(
            tmp,
            port=alert_port,
            rules_glob=str(rules_dir / "*.yml"),
            datasource=vm_url,
            notifier=alertmanager_url,
        ),
    ]
    stack = VmStack(
        tmp,
        server_url,
        vm_url,
        f"http://127.0.0.1:{alert_port}",
        rules_dir,
        exporter,
        webhook,
        processes,
    )
    try:
        for process in processes:
            process.start()
        processes[0].wait_http(f"{alertmanager_url}/-/ready")
        exporter.process.wait_http(f"http://127.0.0.1:{ne_port}/metrics")
        processes[2].wait_http(f"{vm_url}/health")
        server.wait_http(f"{server_url}/health/ready")
        processes[4].wait_http(f"http://127.0.0.1:{agent_port}/health")
        processes[5].wait_http(f"{stack.vmalert_url}/health")
    except BaseException:
        _stop(stack)
        raise
    return stack


def _stop(stack: VmStack) -> None:
    for process in reversed(stack.processes):
        process.stop()
    stack.webhook.__exit__()


@pytest.fixture
def vm_stack(tmp_path: Path) -> Iterator[VmStack]:
    """AAMI + node_exporter + victoria-metrics + vmagent + vmalert + Alertmanager + a
    webhook receiver, on free loopback ports, 1 s intervals."""
    running = _start(tmp_path)
    try:
        yield running
    finally:
        _stop(running)


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _sync_argv(stack: VmStack, evaluator: str, token_file: Path, *extra: str) -> list[str]:
    """``aami rules sync`` for the test's vmalert, writing into its rules directory."""
    return [
        sys.executable,
        "-m",
        "aami",
        "rules",
        "sync",
        "--server",
        stack.server_url,
        "--evaluator",
        evaluator,
        "--token-file",
        str(token_file),
        "--rules-dir",
        str(stack.rules_dir),
        "--evaluator-url",
        stack.vmalert_url,
        "--kind",
        "vmalert",
        "--vmalert",
        binary("vmalert"),
        *extra,
    ]


def _evaluator(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/evaluators/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_vmalert_notifies_through_alertmanager_with_the_group_labels(vm_stack: VmStack) -> None:
    stack = vm_stack
    stack.exporter.write_metric("gpu", "aami_test_gpu_temperature 85\n")
    with stack.api as api:
        _created(api.post("/api/v1/groups", json={"id": "grp-vm", "name": "production"}))
        _created(api.post("/api/v1/groups", json={"id": "grp-dev", "name": "development"}))
        _created(
            api.post(
                "/api/v1/targets",
                json={
                    "id": "node-a",
                    "hostname": "gpu-node-a",
                    "ip_address": "127.0.0.1",
                    "group_ids": ["grp-vm", "grp-dev"],
                    "labels": {"rack": "r1"},
                    "exporters": [{"type": "node_exporter", "port": stack.exporter.port}],
                },
            )
        )

        # vmagent found the target through AAMI (with the SD token) and the series in
        # victoria-metrics carry the group labels, as under Prometheus
        series = wait_for(
            lambda: stack.query('aami_test_gpu_temperature{job="node-exporter"}'),
            timeout=60,
            what="the textfile metric in victoria-metrics",
        )
        labels = series[0]["metric"]
        assert labels["instance"] == "gpu-node-a"
        assert labels["group"] == "production"
        assert labels["group_id"] == "grp-vm"
        assert labels["groups"] == ",grp-vm,grp-dev,"
        assert labels["target_id"] == "node-a"
        assert labels["exporter_type"] == "node_exporter"
        assert labels["target_label_rack"] == "r1"

        _created(
            api.post(
                "/api/v1/alert-templates",
                json={
                    "name": "GPUHot",
                    "query_template": (
                        'aami_test_gpu_temperature{group_id="{{.group_id}}"} > {{.threshold}}'
                    ),
                    "default_config": {"threshold": 70},
                    "severity": "critical",
                    "for_duration": "0s",
                    "annotations": {"summary": "{{ $labels.instance }} is hot"},
                },
            )
        )
        rule = _created(
            api.post("/api/v1/alert-rules", json={"template_id": "GPUHot", "group_id": "grp-vm"})
        )
        # grp-dev gets every default template too, as the server renders them: the sync
        # checks them with vmalert -dryRun (MetricsQL) before vmalert sees them
        assert api.post("/api/v1/seed").status_code == 200
        for name in ["GPUHot", *DEFAULT_TEMPLATE_NAMES]:
            _created(
                api.post("/api/v1/alert-rules", json={"template_id": name, "group_id": "grp-dev"})
            )
        created = _created(
            api.post(
                "/api/v1/evaluators",
                json={"name": "vm-a", "kind": "vmalert", "url": stack.vmalert_url, "groups": None},
            )
        )
        token_file = stack.tmp / "evaluator-token"
        token_file.write_text(created["token"] + "\n")
        token_file.chmod(0o600)
        assert vmalert_groups(stack.vmalert_url) == {}  # nothing reaches vmalert by itself

        # one pass of `aami rules sync`: fetch, vmalert -dryRun, write, /-/reload, confirm,
        # report
        once = subprocess.run(
            _sync_argv(stack, "vm-a", token_file, "--once", "--wait", "0"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert once.returncode == 0, once.stdout + once.stderr
        assert sorted(p.name for p in stack.rules_dir.glob("*.yml")) == [
            "group-grp-dev.yml",
            "group-grp-vm.yml",
        ]
        loaded = vmalert_groups(stack.vmalert_url)["aami-grp-vm"]
        assert [r["name"] for r in loaded] == ["aami_rule_group_info", "GPUHot_Production"]
        group_stamp = stamp(loaded)
        assert group_stamp is not None
        assert group_stamp["aami_rule_group"] == "aami-grp-vm"
        development = vmalert_groups(stack.vmalert_url)["aami-grp-dev"]
        assert {r["name"] for r in development} == {
            "aami_rule_group_info",
            "GPUHot_Development",
            *(f"{name}_Development" for name in DEFAULT_TEMPLATE_NAMES),
        }

        def evaluated() -> list[dict[str, Any]] | None:
            rules = vmalert_groups(stack.vmalert_url)["aami-grp-dev"]
            done = all(not r["lastEvaluation"].startswith("0001-") for r in rules)
            return rules if done else None

        # victoria-metrics answers every query (no evaluation error)
        development = wait_for(evaluated, timeout=30, what="every grp-dev rule evaluated")
        assert [r for r in development if r["health"] != "ok"] == []
        evaluator = _evaluator(api, "vm-a")
        assert evaluator["in_sync"] is True
        assert evaluator["loaded_revision"] == evaluator["desired_revision"]
        assert evaluator["desired_revision"] in once.stdout

        alert = stack.webhook.wait_for_alert(alertname="GPUHot_Production", timeout=90)
        assert alert["labels"]["group"] == "production"
        assert alert["labels"]["group_id"] == "grp-vm"
        assert alert["labels"]["groups"] == ",grp-vm,grp-dev,"
        assert alert["labels"]["instance"] == "gpu-node-a"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["aami_template"] == "GPUHot"
        assert alert["labels"]["alertgroup"] == "aami-grp-vm"  # vmalert's own label
        assert alert["annotations"]["summary"] == "gpu-node-a is hot"
        # routed by the shipped Alertmanager config: the production team and on-call
        paths = {n["path"] for n in stack.webhook.notifications if n.get("alerts")}
        assert {"/production-team", "/oncall"} <= paths

        # below the threshold the alert resolves, and Alertmanager says so
        stack.exporter.write_metric("gpu", "aami_test_gpu_temperature 20\n")
        wait_for(
            lambda: [
                a
                for a in stack.webhook.alerts(status="resolved")
                if a["labels"].get("alertname") == "GPUHot_Production"
            ],
            timeout=90,
            what="the resolved notification",
        )

        # the loop follows AAMI: a rule deleted, its file goes and vmalert drops its group
        loop = Process(
            "aami-rules-sync",
            _sync_argv(stack, "vm-a", token_file, "--wait", "5"),
            stack.tmp / "rules-sync.log",
        )
        stack.processes.append(loop.start())
        assert api.delete(f"/api/v1/alert-rules/{rule['id']}").status_code == 204
        wait_for(
            lambda: "aami-grp-vm" not in vmalert_groups(stack.vmalert_url),
            timeout=60,
            what="vmalert to drop aami-grp-vm",
        )
        assert [p.name for p in stack.rules_dir.glob("*.yml")] == ["group-grp-dev.yml"]
        assert "aami-grp-dev" in vmalert_groups(stack.vmalert_url)

        def reported_again() -> dict[str, Any] | None:
            now = _evaluator(api, "vm-a")
            moved = now["loaded_revision"] != evaluator["loaded_revision"]
            return now if now["in_sync"] and moved else None

        after = wait_for(reported_again, timeout=60, what="the evaluator to report the change")
        assert after["report_error"] is None


ROOT = Path(__file__).resolve().parents[2]
AAMI = ROOT / ".venv" / "bin" / "aami"


def _metric(url: str, name: str) -> float:
    """The sum of a counter's series on a /metrics page."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    )


@contextlib.contextmanager
def _stack_up(tmp: Path, env: dict[str, str], name: str) -> Iterator[str]:
    """``aami stack up --no-demo --victoria-metrics`` in its own session until it is ready;
    yields what it printed. Stopped with SIGINT (Ctrl-C) afterwards."""
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(AAMI), "stack", "up", "--no-demo", "--victoria-metrics"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "AAMI stack is ready" in log.read_text() or process.poll() is not None,
            timeout=120,
            what="aami stack up --victoria-metrics to be ready",
        )
        assert process.poll() is None, log.read_text()
        yield log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _stack_api(state: Path, port: int) -> httpx.Client:
    return httpx.Client(
        base_url=f"https://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {(state / 'admin-token').read_text().strip()}"},
        verify=ssl.create_default_context(cafile=str(state / "tls" / "ca.pem")),
        timeout=30,
    )


def test_stack_up_victoria_metrics_runs_vmalert_on_aamis_rules(tmp_path: Path) -> None:
    names = ("SERVER", "PROMETHEUS", "NODE_EXPORTER", "ALERTMANAGER", "WEBHOOK")
    ports = {f"AAMI_STACK_{name}_PORT": free_port() for name in names}
    vm = {
        "AAMI_STACK_VICTORIA_METRICS_PORT": free_port(),
        "AAMI_STACK_VMAGENT_PORT": free_port(),
        "AAMI_STACK_VMALERT_PORT": free_port(),
    }
    state = tmp_path / "stack"
    env = {**os.environ, "AAMI_STATE_DIR": str(state)}
    env.update({key: str(port) for key, port in {**ports, **vm}.items()})
    with _stack_up(tmp_path, env, "stack") as printed:
        vm_url = f"http://127.0.0.1:{vm['AAMI_STACK_VICTORIA_METRICS_PORT']}"
        vmalert_url = f"http://127.0.0.1:{vm['AAMI_STACK_VMALERT_PORT']}"
        assert vmalert_url in printed
        recorded = read_record(state)
        assert recorded is not None
        assert {"victoria-metrics", "vmagent", "vmalert", "aami-rules-sync"} <= {
            c.name for c in recorded[1]
        }

        # the shipped static rules are loaded from the start
        assert "aami-self" in vmalert_groups(vmalert_url)  # deploy/prometheus/rules/aami.yml

        (state / "textfile" / "gpu.prom").write_text("aami_test_gpu_temperature 85\n")
        with _stack_api(state, ports["AAMI_STACK_SERVER_PORT"]) as api:
            _created(api.post("/api/v1/groups", json={"id": "grp-s", "name": "stackgroup"}))
            _created(
                api.post(
                    "/api/v1/targets",
                    json={
                        "hostname": "stack-node",
                        "ip_address": "127.0.0.1",
                        "group_ids": ["grp-s"],
                        "exporters": [
                            {
                                "type": "node_exporter",
                                "port": ports["AAMI_STACK_NODE_EXPORTER_PORT"],
                            }
                        ],
                    },
                )
            )
            _created(
                api.post(
                    "/api/v1/alert-templates",
                    json={
                        "name": "GPUHot",
                        "query_template": (
                            'aami_test_gpu_temperature{group_id="{{.group_id}}"} > {{.threshold}}'
                        ),
                        "default_config": {"threshold": 70},
                        "severity": "warning",
                        "for_duration": "0s",
                    },
                )
            )
            _created(
                api.post("/api/v1/alert-rules", json={"template_id": "GPUHot", "group_id": "grp-s"})
            )

        # vmagent scraped the node through AAMI's discovery (over TLS, with the SD token)
        series = wait_for(
            lambda: query(vm_url, 'aami_test_gpu_temperature{job="node-exporter"}'),
            timeout=90,
            what="the node's metric in the stack's victoria-metrics",
        )
        assert series[0]["metric"]["group_id"] == "grp-s"
        assert series[0]["metric"]["instance"] == "stack-node"
        # the stack's `aami rules sync` gave vmalert the group's rules; it fired and told
        # Alertmanager
        loaded = wait_for(
            lambda: vmalert_groups(vmalert_url).get("aami-grp-s"),
            timeout=60,
            what="the stack's vmalert to load aami-grp-s",
        )
        assert "GPUHot_Stackgroup" in [r["name"] for r in loaded]
        assert [p.name for p in (state / "rules" / "vmalert").glob("*.yml")] == ["group-grp-s.yml"]
        with _stack_api(state, ports["AAMI_STACK_SERVER_PORT"]) as api:
            evaluator = wait_for(
                lambda: (e := _evaluator(api, "stack-vmalert"))["in_sync"] and e,
                timeout=60,
                what="the stack's vmalert reported in sync",
            )
        assert evaluator["kind"] == "vmalert"
        assert evaluator["url"] == vmalert_url
        wait_for(
            lambda: _metric(vmalert_url, "vmalert_alerts_sent_total") > 0,
            timeout=90,
            what="vmalert to send GPUHot_Stackgroup to the stack's Alertmanager",
        )
        assert _metric(vmalert_url, "vmalert_alerts_send_errors_total") == 0
        # Prometheus fires the same rule; without vmalert's alertgroup label both are one
        # alert to Alertmanager
        prometheus = f"http://127.0.0.1:{ports['AAMI_STACK_PROMETHEUS_PORT']}"
        wait_for(
            lambda: _metric(prometheus, "prometheus_notifications_sent_total") > 0,
            timeout=90,
            what="Prometheus to send its alert too",
        )
        am = f"http://127.0.0.1:{ports['AAMI_STACK_ALERTMANAGER_PORT']}"
        alerts = httpx.get(f"{am}/api/v2/alerts", timeout=5).json()
        fired = [a for a in alerts if a["labels"]["alertname"] == "GPUHot_Stackgroup"]
        assert len(fired) == 1, fired
        assert "alertgroup" not in fired[0]["labels"]

    # the same state dir again, vmalert on another port: the evaluator follows
    vm["AAMI_STACK_VMALERT_PORT"] = free_port()
    env["AAMI_STACK_VMALERT_PORT"] = str(vm["AAMI_STACK_VMALERT_PORT"])
    moved_url = f"http://127.0.0.1:{vm['AAMI_STACK_VMALERT_PORT']}"
    with (
        _stack_up(tmp_path, env, "again"),
        _stack_api(state, ports["AAMI_STACK_SERVER_PORT"]) as api,
    ):
        wait_for(
            lambda: vmalert_groups(moved_url).get("aami-grp-s"),
            timeout=60,
            what="the restarted stack's vmalert to load aami-grp-s",
        )

        def reported_again() -> dict[str, Any] | None:
            now = _evaluator(api, "stack-vmalert")
            fresh = now["last_report_at"] != evaluator["last_report_at"]
            return now if now["in_sync"] and fresh else None

        # a new report: the new stack's sync works with the token it was given
        again = wait_for(reported_again, timeout=90, what="the stack's vmalert reported again")
        assert again["url"] == moved_url
        assert again["report_error"] is None
