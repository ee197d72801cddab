"""``aami stack up``: the whole local stack as supervised child processes on loopback.

Everything that talks to the AAMI server does so over TLS: a local CA and a server
certificate are made in ``<state dir>/tls/`` (``aami.security.tls``); Prometheus's service
discovery and its scrape of AAMI (job ``aami``) trust that CA (``tls_config: ca_file``), and
so does the agent (``ca_file``), which pins the server's check-signing key when it
registers.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import httpx
import yaml

from aami.auth.tokens import generate_token
from aami.security.tls import StackTls, ensure_stack_tls
from aami.stack.configs import (
    alertmanager_base_for_stack,
    history_env,
    prometheus_config,
    vmagent_config,
    write_yaml,
)
from aami.stack.control import clear_record, recorded, running_supervisor, write_record
from aami.stack.receiver import LocalReceiver

_REPO = Path(__file__).resolve().parents[3]

__all__ = ["StackError", "StackPorts", "private_state_dir", "run_stack"]

_PR_SET_PDEATHSIG = 1
VMALERT_EVALUATOR = "stack-vmalert"  # the stack's vmalert, as an evaluator in AAMI


class StackError(Exception):
    """The stack cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class StackPorts:
    server: int = 8080
    prometheus: int = 19090
    node_exporter: int = 19100
    alertmanager: int = 19093
    webhook: int = 19095
    # --alertmanager-cluster: a second Alertmanager, and the two members' gossip ports
    alertmanager_peer: int = 19094
    alertmanager_gossip: int = 19096
    alertmanager_peer_gossip: int = 19097
    victoria_metrics: int = 18428
    vmagent: int = 18429
    vmalert: int = 18880


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)


def _die_with_parent() -> None:
    # The children must not outlive a stack that was killed without a chance to clean up.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(f"{name} is not installed; run scripts/setup (Debian package)")
    return path


def _wait_http(
    url: str,
    *,
    child: Child,
    timeout: float,
    headers: dict[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process is not None and child.process.poll() is not None:
            raise StackError(
                f"{child.name} exited with {child.process.returncode}; see {child.log_path}"
            )
        try:
            if httpx.get(url, headers=headers, timeout=1.0, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise StackError(
        f"{child.name} did not become ready at {url} in {timeout:.0f}s; see {child.log_path}"
    )


class Stack:
    def __init__(
        self,
        state_dir: Path,
        ports: StackPorts,
        *,
        victoria_metrics: bool = False,
        alertmanager_cluster: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.ports = ports
        self.victoria_metrics = victoria_metrics
        self.alertmanager_cluster = alertmanager_cluster  # two gossiping Alertmanagers
        self.children: list[Child] = []
        self.stopping = False
        self.server_url = f"https://127.0.0.1:{ports.server}"
        self.tls: StackTls | None = None

    @property
    def trust_file(self) -> Path:
        """The local CA's certificate: what everything talking to the server trusts."""
        assert self.tls is not None, "prepare() makes the certificates"
        return self.tls.ca_file

    def trust(self) -> ssl.SSLContext:
        """What the stack's own requests to the server verify it with: the local CA."""
        return ssl.create_default_context(cafile=str(self.trust_file))

    def _token(self) -> str:
        path = self.state_dir / "admin-token"
        if path.exists():
            return path.read_text().strip()
        token = generate_token()
        path.write_text(token + "\n")
        path.chmod(0o600)
        return token

    def _sd_token_file(self) -> Path:
        """Prometheus reads service discovery with a token that can do nothing else."""
        path = self.state_dir / "sd-token"
        if not path.exists():
            path.write_text(generate_token("aamisd") + "\n")
            path.chmod(0o600)
        return path

    def _history_token_file(self) -> Path:
        """Alertmanager posts alert history with a token that can do nothing else."""
        path = self.state_dir / "history-token"
        if not path.exists():
            path.write_text(generate_token("aamihist") + "\n")
            path.chmod(0o600)
        return path

    def prepare(self) -> str:
        ports = self.ports
        for port in (
            ports.server,
            ports.prometheus,
            ports.node_exporter,
            ports.alertmanager,
            ports.webhook,
        ):
            if not _port_free(port):
                raise StackError(
                    f"port {port} on 127.0.0.1 is in use; choose others with --port, "
                    "--prometheus-port, --node-exporter-port, --alertmanager-port, "
                    "--webhook-port"
                )
        for sub in (
            "logs",
            "prometheus-data",
            "rules/generated",
            "rules/static",
            "textfile",
            "alertmanager-data",
            "alertmanager",
            "agent-cache",
        ):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        token = self._token()
        self.tls = tls = ensure_stack_tls(self.state_dir / "tls")
        for name in ("system-alerts.yml", "aami.yml"):  # the node rules, and AAMI's own
            shipped_rules = _REPO / "deploy/prometheus/rules" / name
            if shipped_rules.is_file():
                shutil.copyfile(shipped_rules, self.state_dir / "rules/static" / name)
        write_yaml(
            self.state_dir / "prometheus.yml",
            prometheus_config(
                server_url=self.server_url,
                ca_file=tls.ca_file,
                token_file=self._sd_token_file(),
                rule_globs=[
                    str(self.state_dir / "rules/static/*.yml"),
                    str(self.state_dir / "rules/generated/*.yml"),
                ],
                alertmanagers=self.alertmanager_addresses(),
                interval="5s",
                sd_refresh="5s",
            ),
        )
        shipped_am = _REPO / "deploy/alertmanager/alertmanager.yml"
        base = alertmanager_base_for_stack(
            yaml.safe_load(shipped_am.read_text()) if shipped_am.is_file() else None,
            f"http://127.0.0.1:{ports.webhook}",
        )
        am_dir = self.state_dir / "alertmanager"
        write_yaml(am_dir / "base.yml", base)
        if not (am_dir / "alertmanager.yml").exists():
            write_yaml(am_dir / "alertmanager.yml", base)
        env = {
            **os.environ,
            "AAMI_ADMIN_TOKEN": token,
            "AAMI_SD_TOKEN": (self.state_dir / "sd-token").read_text().strip(),
            "AAMI_DATABASE_URL": f"sqlite:///{self.state_dir / 'aami.db'}",
            "PROMETHEUS_URL": f"http://127.0.0.1:{ports.prometheus}",
            "PROMETHEUS_RULE_PATH": str(self.state_dir / "rules/generated"),
            "ALERTMANAGER_URL": ",".join(f"http://{a}" for a in self.alertmanager_addresses()),
            "AAMI_ALERTMANAGER_CONFIG_PATH": str(am_dir / "alertmanager.yml"),
            "AAMI_ALERTMANAGER_BASE_CONFIG": str(am_dir / "base.yml"),
            "AAMI_TLS_CERT_FILE": str(tls.cert_file),
            "AAMI_TLS_KEY_FILE": str(tls.key_file),
            "AAMI_SIGNING_KEY_FILE": str(self.state_dir / "signing.key"),
            # Every alert is recorded in AAMI's alert history too (the managed config).
            **history_env(
                server_url=self.server_url,
                token_file=self._history_token_file(),
                ca_file=tls.ca_file,
            ),
            "PYTHONUNBUFFERED": "1",
        }
        logs = self.state_dir / "logs"
        self.children = [
            Child(
                "aami-server",
                [
                    sys.executable,
                    "-m",
                    "aami",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports.server),
                ],
                env,
                logs / "server.log",
            ),
            Child(
                "node_exporter",
                [
                    _binary("prometheus-node-exporter"),
                    f"--web.listen-address=127.0.0.1:{ports.node_exporter}",
                    f"--collector.textfile.directory={self.state_dir / 'textfile'}",
                ],
                dict(os.environ),
                logs / "node_exporter.log",
            ),
            *self._alertmanager_children(am_dir / "alertmanager.yml"),
            Child(
                "prometheus",
                [
                    _binary("prometheus"),
                    f"--config.file={self.state_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.state_dir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                    "--web.enable-lifecycle",
                    "--rules.alert.resend-delay=5s",
                ],
                dict(os.environ),
                logs / "prometheus.log",
            ),
        ]
        if self.victoria_metrics:
            self.children += self._victoria_metrics_children()
        return token

    def _victoria_metrics_children(self) -> list[Child]:
        """victoria-metrics, vmagent (the same targets as Prometheus, found the same way)
        and vmalert (the static rules, and AAMI's in ``rules/vmalert``, which ``aami rules
        sync`` keeps there once the server is up; alerting every Alertmanager of the
        stack). vmalert leaves out its ``alertgroup`` label, so its alerts are Prometheus's
        alerts to Alertmanager, which sends each one once."""
        ports = self.ports
        for port, flag in (
            (ports.victoria_metrics, "--victoria-metrics-port"),
            (ports.vmagent, "--vmagent-port"),
            (ports.vmalert, "--vmalert-port"),
        ):
            if not _port_free(port):
                raise StackError(f"port {port} on 127.0.0.1 is in use; choose another with {flag}")
        state = self.state_dir
        for sub in ("victoria-metrics-data", "vmagent-data", "rules/vmalert"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        write_yaml(
            state / "vmagent.yml",
            vmagent_config(
                server_url=self.server_url,
                token_file=self._sd_token_file(),
                own_targets=[
                    f"127.0.0.1:{port}"
                    for port in (ports.victoria_metrics, ports.vmagent, ports.vmalert)
                ],
                interval="5s",
                ca_file=self.trust_file,
            ),
        )
        storage = f"http://127.0.0.1:{ports.victoria_metrics}"
        logs = state / "logs"
        return [
            Child(
                "victoria-metrics",
                [
                    _binary("victoria-metrics"),
                    f"-storageDataPath={state / 'victoria-metrics-data'}",
                    f"-httpListenAddr=127.0.0.1:{ports.victoria_metrics}",
                    "-search.latencyOffset=5s",
                ],
                dict(os.environ),
                logs / "victoria-metrics.log",
            ),
            Child(
                "vmagent",
                [
                    _binary("vmagent"),
                    f"-promscrape.config={state / 'vmagent.yml'}",
                    "-promscrape.httpSDCheckInterval=5s",
                    f"-remoteWrite.url={storage}/api/v1/write",
                    f"-remoteWrite.tmpDataPath={state / 'vmagent-data'}",
                    f"-httpListenAddr=127.0.0.1:{ports.vmagent}",
                ],
                dict(os.environ),
                logs / "vmagent.log",
            ),
            Child(
                "vmalert",
                [
                    _binary("vmalert"),
                    f"-rule={state / 'rules/static/*.yml'}",
                    f"-rule={state / 'rules/vmalert/*.yml'}",
                    f"-datasource.url={storage}",
                    f"-remoteWrite.url={storage}",
                    "-notifier.url="
                    + ",".join(f"http://{a}" for a in self.alertmanager_addresses()),
                    "-evaluationInterval=5s",
                    "-disableAlertgroupLabel",
                    f"-httpListenAddr=127.0.0.1:{ports.vmalert}",
                ],
                dict(os.environ),
                logs / "vmalert.log",
            ),
        ]

    def rules_sync_child(self, token_file: Path) -> Child:
        """``aami rules sync`` for the stack's vmalert (evaluator ``stack-vmalert``)."""
        return Child(
            "aami-rules-sync",
            [
                sys.executable,
                "-m",
                "aami",
                "rules",
                "sync",
                "--server",
                self.server_url,
                "--ca-file",
                str(self.trust_file),
                "--evaluator",
                VMALERT_EVALUATOR,
                "--token-file",
                str(token_file),
                "--kind",
                "vmalert",
                "--evaluator-url",
                f"http://127.0.0.1:{self.ports.vmalert}",
                "--rules-dir",
                str(self.state_dir / "rules/vmalert"),
                "--vmalert",
                _binary("vmalert"),
            ],
            dict(os.environ),
            self.state_dir / "logs" / "rules-sync.log",
        )

    def alertmanager_addresses(self) -> list[str]:
        """host:port of every Alertmanager: Prometheus alerts each, AAMI manages each."""
        ports = self.ports
        members = [ports.alertmanager]
        if self.alertmanager_cluster:
            members.append(ports.alertmanager_peer)
        return [f"127.0.0.1:{port}" for port in members]

    def _alertmanager_children(self, config: Path) -> list[Child]:
        """One Alertmanager, or (``alertmanager_cluster``) two gossiping on loopback that
        read the same config file."""
        ports = self.ports
        if not self.alertmanager_cluster:
            return [
                self._alertmanager(
                    "alertmanager", ports.alertmanager, config, ["--cluster.listen-address="]
                )
            ]
        for port in (
            ports.alertmanager_peer,
            ports.alertmanager_gossip,
            ports.alertmanager_peer_gossip,
        ):
            if not _port_free(port):
                raise StackError(f"port {port} on 127.0.0.1 is in use (--alertmanager-cluster)")
        first, second = ports.alertmanager_gossip, ports.alertmanager_peer_gossip
        return [
            self._alertmanager("alertmanager", ports.alertmanager, config, _gossip(first, second)),
            self._alertmanager(
                "alertmanager-peer", ports.alertmanager_peer, config, _gossip(second, first)
            ),
        ]

    def _alertmanager(self, name: str, port: int, config: Path, cluster: list[str]) -> Child:
        data = self.state_dir / f"{name}-data"
        data.mkdir(parents=True, exist_ok=True)
        return Child(
            name,
            [
                _binary("prometheus-alertmanager"),
                f"--config.file={config}",
                f"--storage.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                *cluster,
            ],
            dict(os.environ),
            self.state_dir / "logs" / f"{name}.log",
        )

    def agent_child(self, config: Path) -> Child:
        """The node agent for this machine, once it is registered."""
        return Child(
            "aami-agent",
            [
                sys.executable,
                "-m",
                "aami",
                "agent",
                "run",
                *self._agent_flags(config),
                "--textfile-dir",
                str(self.state_dir / "textfile"),
                "--interval-seconds",
                "15",
            ],
            dict(os.environ),
            self.state_dir / "logs" / "agent.log",
        )

    def _agent_flags(self, config: Path) -> list[str]:
        """Where the agent finds the server and trusts it (a state dir from before TLS
        holds an http:// server_url: the flags win over the file)."""
        return [
            "--config",
            str(config),
            "--server-url",
            self.server_url,
            "--ca-file",
            str(self.trust_file),
            "--cache-dir",
            str(self.state_dir / "agent-cache"),
        ]

    def start(self, child: Child) -> None:
        child.log = child.log_path.open("ab")
        child.process = subprocess.Popen(
            child.argv,
            env=child.env,
            stdout=child.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        self.record()

    def record(self) -> None:
        """Tell ``aami stack down`` (in another terminal) what to stop: this process and
        every child running now."""
        running = (
            recorded(child.name, child.process.pid)
            for child in self.children
            if child.process is not None and child.process.poll() is None
        )
        write_record(
            self.state_dir,
            [process for process in running if process is not None],
            server=self.server_url,
            ports=asdict(self.ports),
        )

    def pause(self, seconds: float) -> None:
        """Sleep, but wake up as soon as the stack is told to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))

    def stop_all(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + 10
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            if child.log is not None:
                child.log.close()

    def supervise(self) -> None:
        """Restart children that die, with a growing delay, until stopped."""
        while not self.stopping:
            for child in self.children:
                process = child.process
                if process is None or process.poll() is None or self.stopping:
                    continue
                delay = min(30.0, 2.0**child.restarts)
                print(
                    f"{child.name} exited with {process.returncode}; restarting in "
                    f"{delay:.0f}s (log: {child.log_path})",
                    flush=True,
                )
                self.pause(delay)
                if child.log is not None:
                    child.log.close()
                if not self.stopping:
                    child.restarts += 1
                    self.start(child)
            self.pause(0.5)


def _call(client: httpx.Client, method: str, path: str, body: object = None) -> object:
    response = client.request(method, path, json=body)
    if response.status_code not in (200, 201, 409):
        raise StackError(f"loading the demo failed at {method} {path}: {response.text}")
    return response.json() if response.content else None


def _load_demo(stack: Stack, server_url: str, token: str) -> Path:
    """The spec's groups, templates and mount check on this machine; returns the agent config.

    The mount check watches a directory that is not a mount point, so within a minute
    MountPointUnavailable fires and its notification reaches the local receiver.
    """
    headers = {"Authorization": f"Bearer {token}"}
    missing_mount = stack.state_dir / "demo-mount"
    missing_mount.mkdir(exist_ok=True)
    with httpx.Client(
        base_url=server_url, headers=headers, timeout=30, verify=stack.trust()
    ) as client:
        _call(client, "POST", "/api/v1/seed")
        _call(client, "POST", "/api/v1/groups", {"id": "grp-123", "name": "production"})
        _call(client, "POST", "/api/v1/groups", {"id": "grp-456", "name": "development"})
        for group, cpu, disk, wait in (("grp-123", 80, 20, "5m"), ("grp-456", 95, 10, "10m")):
            _call(
                client,
                "POST",
                "/api/v1/alert-rules",
                {
                    "template_id": "HighCPUUsage",
                    "group_id": group,
                    "config": {"threshold": cpu, "for_duration": wait},
                },
            )
            _call(
                client,
                "POST",
                "/api/v1/alert-rules",
                {
                    "template_id": "HighDiskUsage",
                    "group_id": group,
                    "config": {"threshold": disk, "for_duration": wait},
                },
            )
        _call(
            client,
            "POST",
            "/api/v1/alert-rules",
            {
                "template_id": "MountPointUnavailable",
                "group_id": "grp-123",
                "config": {"for_duration": "10s"},
            },
        )
        _call(
            client,
            "POST",
            "/api/v1/script-policies",
            {
                "id": "demo-mount-check",
                "template_id": "mount-check",
                "scope": "group",
                "group_id": "grp-123",
                "config": {"paths": f"/proc,{missing_mount}"},
            },
        )
        _call(
            client,
            "POST",
            "/api/v1/notification-channels",
            {
                "name": "demo-webhook",
                "type": "webhook",
                "settings": {"url": f"http://127.0.0.1:{stack.ports.webhook}/demo-webhook"},
            },
        )
        _call(
            client,
            "POST",
            "/api/v1/notification-routes",
            {
                "name": "production",
                "matchers": [{"name": "group", "value": "production"}],
                "receiver": "demo-webhook",
                "continue": True,
                "group_wait": "0s",
            },
        )
        config = stack.state_dir / "agent.yaml"
        if not config.exists():
            bootstrap = client.post(
                "/api/v1/bootstrap-tokens",
                json={"name": f"stack-{int(time.time())}", "group_id": "grp-123", "max_uses": 1},
            )
            if bootstrap.status_code != 201:
                raise StackError(f"creating a bootstrap token failed: {bootstrap.text}")
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "aami",
                    "agent",
                    "register",
                    "--server",
                    server_url,
                    "--bootstrap-token",
                    bootstrap.json()["token"],
                    "--hostname",
                    "localhost",
                    "--ip-address",
                    "127.0.0.1",
                    "--node-exporter-port",
                    str(stack.ports.node_exporter),
                    "--ca-file",
                    str(stack.trust_file),
                    "--cache-dir",
                    str(stack.state_dir / "agent-cache"),
                    "--config",
                    str(config),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if result.returncode != 0:
                raise StackError(f"registering the local agent failed: {result.stderr.strip()}")
    keys = stack.state_dir / "agent-cache" / "signing-keys.json"
    if not keys.exists():  # a state dir from before signed checks: pin the server's key now
        result = subprocess.run(
            [sys.executable, "-m", "aami", "agent", "pin-keys", *stack._agent_flags(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"pinning the server's signing key failed: {result.stderr.strip()}")
    return config


def _vmalert_evaluator(stack: Stack, token: str) -> Path:
    """Declare the stack's vmalert as an evaluator (again with its URL and a new token when
    an earlier stack in this state dir did); returns the file holding its token."""
    url = f"http://127.0.0.1:{stack.ports.vmalert}"
    evaluators = "/api/v1/evaluators"
    with httpx.Client(
        base_url=stack.server_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=stack.trust(),
    ) as client:
        body = {"name": VMALERT_EVALUATOR, "kind": "vmalert", "url": url, "groups": None}
        response = client.post(evaluators, json=body)
        if response.status_code == 409:
            named = f"{evaluators}/{VMALERT_EVALUATOR}"
            response = client.put(named, json={"url": url})
            if response.status_code == 200:
                response = client.post(f"{named}/token")
        if response.status_code not in (200, 201):
            raise StackError(
                f"declaring the stack's vmalert in AAMI failed: {response.status_code} "
                f"{response.text}"
            )
    path = stack.state_dir / "evaluator-token"
    path.write_text(response.json()["token"] + "\n")
    path.chmod(0o600)
    return path


def _wait_victoria_metrics(ports: StackPorts, by_name: dict[str, Child]) -> None:
    for name, port in (
        ("victoria-metrics", ports.victoria_metrics),
        ("vmagent", ports.vmagent),
        ("vmalert", ports.vmalert),
    ):
        _wait_http(f"http://127.0.0.1:{port}/health", child=by_name[name], timeout=60)


def _victoria_metrics_lines(ports: StackPorts) -> str:
    return (
        f"  vm storage    http://127.0.0.1:{ports.victoria_metrics}  (victoria-metrics, /vmui)\n"
        f"  vmagent       http://127.0.0.1:{ports.vmagent}/targets\n"
        f"  vmalert       http://127.0.0.1:{ports.vmalert}  (AAMI's rules through `aami rules "
        "sync`,\n                evaluator stack-vmalert; alerting the Alertmanager above)\n"
    )


def _gossip(own: int, peer: int) -> list[str]:
    """Flags of a cluster member on loopback: quick gossip, and a 2 s peer timeout (the
    second member notifies only if the first has not, 2 s after it would have)."""
    return [
        f"--cluster.listen-address=127.0.0.1:{own}",
        f"--cluster.peer=127.0.0.1:{peer}",
        "--cluster.peer-timeout=2s",
        "--cluster.gossip-interval=100ms",
        "--cluster.pushpull-interval=5s",
    ]


def private_state_dir(state_dir: Path) -> None:
    """Create the state directory 0700: it holds the admin token, the database and its
    secret key. One an earlier stack made (it has an ``admin-token``) is made private too;
    any other existing directory is left as it is."""
    try:
        state_dir.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if (state_dir / "admin-token").exists() and state_dir.stat().st_mode & 0o077:
            state_dir.chmod(0o700)


def run_stack(
    state_dir: Path,
    *,
    ports: StackPorts,
    demo: bool = True,
    victoria_metrics: bool = False,
    alertmanager_cluster: bool = False,
) -> int:
    """Start everything, print where it is, supervise until SIGINT/SIGTERM; return 0. With
    ``victoria_metrics``, victoria-metrics, vmagent and vmalert run beside Prometheus; with
    ``alertmanager_cluster``, two gossiping Alertmanagers run, both alerted and managed."""
    stack = Stack(
        state_dir,
        ports,
        victoria_metrics=victoria_metrics,
        alertmanager_cluster=alertmanager_cluster,
    )
    running = running_supervisor(state_dir)
    if running is not None:
        raise StackError(
            f"a stack already runs from {state_dir} (pid {running.pid}); stop it with "
            f"`aami stack down --state-dir {state_dir}` or choose another --state-dir"
        )
    private_state_dir(state_dir)
    token = stack.prepare()
    receiver = LocalReceiver(ports.webhook, state_dir / "notifications.jsonl")

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stack.stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    server_url = stack.server_url
    receiver.start()
    try:
        for child in stack.children:
            stack.start(child)
        by_name = {c.name: c for c in stack.children}
        _wait_http(
            f"{server_url}/health/ready",
            child=by_name["aami-server"],
            timeout=60,
            verify=stack.trust(),
        )
        for child, address in zip(
            (c for c in stack.children if c.name.startswith("alertmanager")),
            stack.alertmanager_addresses(),
            strict=True,
        ):
            _wait_http(f"http://{address}/-/ready", child=child, timeout=60)
        if demo:
            agent = stack.agent_child(_load_demo(stack, server_url, token))
            stack.children.append(agent)
            stack.start(agent)
        _wait_http(
            f"http://127.0.0.1:{ports.prometheus}/-/ready", child=by_name["prometheus"], timeout=60
        )
        if victoria_metrics:
            _wait_victoria_metrics(ports, by_name)
            sync = stack.rules_sync_child(_vmalert_evaluator(stack, token))
            stack.children.append(sync)
            stack.start(sync)
        print(
            "AAMI stack is ready\n"
            f"  server        {server_url}  (API docs: {server_url}/docs)\n"
            f"  TLS CA        {stack.trust_file}  (Prometheus and the agent trust it; for curl\n"
            f"                and the aami CLI: export SSL_CERT_FILE={stack.trust_file})\n"
            f"  prometheus    http://127.0.0.1:{ports.prometheus}\n"
            + "".join(
                f"  alertmanager  http://{address}\n" for address in stack.alertmanager_addresses()
            )
            + (
                "                (a cluster: gossip on 127.0.0.1:"
                f"{ports.alertmanager_gossip} and :{ports.alertmanager_peer_gossip})\n"
                if alertmanager_cluster
                else ""
            )
            + f"  node_exporter http://127.0.0.1:{ports.node_exporter}/metrics\n"
            + (_victoria_metrics_lines(ports) if victoria_metrics else "")
            + f"  notifications http://127.0.0.1:{ports.webhook} -> "
            f"{state_dir / 'notifications.jsonl'} (and printed below)\n"
            f"  admin token   {token}  (also in {state_dir / 'admin-token'})\n"
            f"  state dir     {state_dir}  (logs in {state_dir / 'logs'})\n"
            + (
                "  demo: MountPointUnavailable_Production fires within a minute; see it with\n"
                f"        SSL_CERT_FILE={stack.trust_file} .venv/bin/aami alerts "
                f"--server {server_url}\n"
                if demo
                else ""
            )
            + "Press Ctrl-C to stop (or run `aami stack down` in another terminal).",
            flush=True,
        )
        stack.supervise()
    except StackError:
        stack.stop_all()
        raise
    finally:
        stack.stop_all()
        receiver.stop()
        clear_record(state_dir)
    print("AAMI stack stopped", flush=True)
    return 0
