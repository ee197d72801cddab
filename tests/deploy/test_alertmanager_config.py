"""The shipped deploy/alertmanager/alertmanager.yml: amtool, routing cases, a real Alertmanager."""

from __future__ import annotations

import base64
import json
import re
import socketserver
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.ports import free_port
from tests.support.processes import alertmanager, binary
from tests.support.wait import wait_for
from tests.support.webhook import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
ROUTES = REPO / "deploy" / "alertmanager" / "tests" / "routes.yml"
SECRETS_DIR = "/etc/alertmanager/secrets/"
RECEIVERS = {"default", "oncall", "production-team", "info"}

ROUTE_CASES: list[dict[str, Any]] = yaml.safe_load(ROUTES.read_text())


def _config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    return config


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("amtool"), *args], capture_output=True, text=True, check=False, timeout=60
    )


def _child(matcher: str) -> dict[str, Any]:
    """The top-level shipped route whose only matcher is ``matcher``."""
    found: list[dict[str, Any]] = [
        r for r in _config()["route"]["routes"] if r.get("matchers") == [matcher]
    ]
    assert len(found) == 1, f"expected one route matching [{matcher}], found {found}"
    return found[0]


def _walk(node: object, path: str = "") -> list[tuple[str, object]]:
    """Every (dotted key path, scalar value) in a parsed YAML document."""
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _walk(v, f"{path}.{k}".lstrip("."))]
    if isinstance(node, list):
        return [pair for i, v in enumerate(node) for pair in _walk(v, f"{path}[{i}]")]
    return [(path, node)]


# --- amtool -------------------------------------------------------------------------------


def test_amtool_check_config_accepts_the_shipped_file() -> None:
    # amtool (like Alertmanager at start-up) does not open the *_file secrets: they are read
    # when a notification is sent, so the shipped file checks as it is.
    result = _amtool("check-config", str(SHIPPED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "4 receivers" in result.stdout


def test_amtool_check_config_rejects_an_unknown_field(tmp_path: Path) -> None:
    # The check is strict: a *_file field 0.25 does not know (webhook url_file) is an error,
    # so the *_file fields the shipped file uses are ones this Alertmanager reads.
    config = _config()
    config["receivers"][0]["webhook_configs"][0]["url_file"] = SECRETS_DIR + "webhook-url"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = _amtool("check-config", str(path))
    assert result.returncode != 0
    assert "url_file" in result.stdout + result.stderr


@pytest.mark.parametrize("case", ROUTE_CASES, ids=[case["name"] for case in ROUTE_CASES])
def test_routing_case(case: dict[str, Any]) -> None:
    expected = case["receivers"]
    labels = [f"{name}={json.dumps(str(value))}" for name, value in case["labels"].items()]
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={SHIPPED}",
        f"--verify.receivers={','.join(expected)}",
        *labels,
    )
    resolved = result.stdout.splitlines()[0] if result.stdout else ""
    assert result.returncode == 0, (
        f"{case['labels']} routes to {resolved!r}, expected {','.join(expected)!r}\n"
        f"{result.stdout}{result.stderr}"
    )
    assert resolved == ",".join(expected)


def test_routing_cases_cover_every_receiver_and_severity() -> None:
    reached = {receiver for case in ROUTE_CASES for receiver in case["receivers"]}
    assert reached == RECEIVERS == {r["name"] for r in _config()["receivers"]}
    severities = {case["labels"].get("severity") for case in ROUTE_CASES}
    assert {"critical", "warning", "info", None} <= severities
    kinds = {
        (case["labels"].get("severity"), case["labels"].get("group")): case["receivers"]
        for case in ROUTE_CASES
    }
    assert kinds[("critical", "production")] == ["production-team", "oncall"]
    assert kinds[("critical", "development")] == ["oncall"]
    assert kinds[("warning", "production")] == ["production-team", "default"]
    assert kinds[("warning", "development")] == ["default"]
    assert kinds[(None, None)] == ["default"]


# --- structure ----------------------------------------------------------------------------


def test_root_route_groups_by_alertname_and_group() -> None:
    route = _config()["route"]
    assert route["receiver"] == "default"
    assert route["group_by"] == ["alertname", "group_id"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "30s",
        "5m",
        "4h",
    )


def test_child_routes_use_matchers_in_order() -> None:
    routes = _config()["route"]["routes"]
    assert [(r["matchers"], r["receiver"]) for r in routes] == [
        (['group="production"'], "production-team"),
        (['severity="critical"'], "oncall"),
        (['severity="warning"'], "default"),
        (['severity="info"'], "info"),
    ]
    for route in routes:
        assert "match" not in route
        assert "match_re" not in route


def test_production_route_continues_to_the_severity_routes() -> None:
    assert _child('group="production"').get("continue") is True


def test_critical_route_pages_at_once_and_every_four_hours() -> None:
    critical = _child('severity="critical"')
    assert critical["receiver"] == "oncall"
    assert critical["group_wait"] == "0s"
    assert critical["repeat_interval"] == "4h"
    assert not critical.get("continue", False)


def test_info_route_is_a_low_priority_digest() -> None:
    info = _child('severity="info"')
    assert info["receiver"] == "info"
    assert info["repeat_interval"] == "24h"


def test_inhibit_rules() -> None:
    rules = _config()["inhibit_rules"]
    for rule in rules:
        assert set(rule) == {"source_matchers", "target_matchers", "equal"}
    expected = [
        # critical mutes warning/info of the same alertname and instance
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity=~"warning|info"'],
            "equal": ["alertname", "instance"],
        },
        # ... and of the same AAMI template (group rules are named <Template>_<Group>)
        {
            "source_matchers": ['severity="critical"', 'aami_template=~".+"'],
            "target_matchers": ['severity=~"warning|info"'],
            "equal": ["aami_template", "aami_scope", "instance"],
        },
        # NodeDown mutes the node's other alerts
        {
            "source_matchers": ['alertname="NodeDown"'],
            "target_matchers": ['alertname!="NodeDown"', 'aami_template!="NodeDown"'],
            "equal": ["instance"],
        },
        {
            "source_matchers": ['aami_template="NodeDown"'],
            "target_matchers": ['alertname!="NodeDown"', 'aami_template!="NodeDown"'],
            "equal": ["instance"],
        },
        # a group-scoped alert mutes the global duplicate
        {
            "source_matchers": ['aami_scope="group"'],
            "target_matchers": ['aami_scope="global"'],
            "equal": ["aami_template", "instance"],
        },
    ]
    for rule in expected:
        assert rule in rules, f"missing inhibit rule {rule}"


def test_receivers_and_secret_files() -> None:
    config = _config()
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == RECEIVERS
    assert receivers["default"]["webhook_configs"] == [
        {"url": "http://127.0.0.1:9095/alerts", "send_resolved": True}
    ]
    assert receivers["oncall"]["email_configs"][0]["to"]
    pagerduty = receivers["oncall"]["pagerduty_configs"][0]
    assert pagerduty["routing_key_file"] == SECRETS_DIR + "pagerduty-routing-key"
    slack = receivers["production-team"]["slack_configs"][0]
    assert slack["api_url_file"] == SECRETS_DIR + "slack-production-webhook-url"
    assert config["global"]["smtp_auth_password_file"] == SECRETS_DIR + "smtp-password"
    assert receivers["info"]["webhook_configs"][0]["url"].startswith("http://127.0.0.1:")


def test_no_secret_in_the_file() -> None:
    text = SHIPPED.read_text()
    secret_keys = {
        "api_url",
        "slack_api_url",
        "routing_key",
        "service_key",
        "auth_password",
        "auth_secret",
        "smtp_auth_password",
        "smtp_auth_secret",
        "api_key",
        "opsgenie_api_key",
        "victorops_api_key",
        "wechat_api_secret",
        "bot_token",
        "token",
        "password",
        "credentials",
        "client_secret",
    }
    values = _walk(yaml.safe_load(text))
    for path, value in values:
        key = re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1]
        assert key not in secret_keys, f"{path} holds a secret in the file; use {key}_file"
        if key.endswith("_file"):
            assert isinstance(value, str)
            assert value.startswith(SECRETS_DIR), f"{path}: secrets live under {SECRETS_DIR}"
            assert f"{value} " in text, f"{path}: document {value} in the header comment"
    # Nothing that looks like a secret, even in a comment.
    assert "hooks.slack.com" not in text
    for key in ("api_url", "routing_key", "service_key", "auth_password", "smtp_auth_password"):
        assert not re.search(rf"^\s*(#\s*)?-?\s*{key}\s*:", text, re.MULTILINE), key


# --- a real Alertmanager ------------------------------------------------------------------

SMTP_PASSWORD = "smtp-password-from-the-file"
ROUTING_KEY = "pagerduty-routing-key-from-the-file"


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 that records AUTH PLAIN logins and messages."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

            def handle(self) -> None:
                session = {"username": "", "password": "", "data": ""}
                self.reply("220 127.0.0.1 ESMTP test sink")
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb in {"EHLO", "HELO"}:
                        self.reply("250-127.0.0.1\r\n250-AUTH PLAIN\r\n250 8BITMIME")
                    elif verb == "AUTH":
                        _, _mechanism, response = command.split(" ")
                        _, username, password = base64.b64decode(response).split(b"\0")
                        session["username"] = username.decode()
                        session["password"] = password.decode()
                        self.reply("235 2.7.0 Authentication successful")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while (data := self.rfile.readline()) not in {b".\r\n", b""}:
                            lines.append(data.decode(errors="replace"))
                        session["data"] = "".join(lines)
                        with sink._lock:
                            sink.messages.append(dict(session))
                        self.reply("250 2.0.0 OK")
                    elif verb == "QUIT":
                        self.reply("221 2.0.0 Bye")
                        return
                    else:
                        self.reply("250 2.0.0 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SmtpSink:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def received(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.messages)


def _fast(route: dict[str, Any]) -> None:
    """Group and flush at once instead of after seconds or minutes (every route)."""
    if "group_wait" in route:
        route["group_wait"] = "0s"
    if "group_interval" in route:
        route["group_interval"] = "1s"
    for child in route.get("routes", []):
        _fast(child)


def _shape(route: dict[str, Any]) -> list[Any]:
    """A route tree without its timings: receivers, matchers, grouping, continue."""
    return [
        route.get("receiver"),
        route.get("matchers"),
        route.get("group_by"),
        route.get("continue", False),
        [_shape(child) for child in route.get("routes", [])],
    ]


def _runnable_copy(tmp: Path, *, webhook: WebhookReceiver, smtp_port: int) -> Path:
    """The shipped config with every destination local and every secret in a temp file.

    Each receiver's integrations stay what they are (mail, PagerDuty, Slack, webhooks) and
    are pointed at ``webhook`` under ``/<receiver name>`` (mail at the SMTP sink); the
    secret files under /etc/alertmanager/secrets/ become files in ``tmp``.
    """
    config = _config()
    secrets = tmp / "secrets"
    secrets.mkdir()

    def secret(shipped: str, content: str) -> str:
        assert shipped.startswith(SECRETS_DIR), shipped
        path = secrets / shipped.removeprefix(SECRETS_DIR)
        path.write_text(content)
        path.chmod(0o400)
        return str(path)

    smtp = config["global"]
    smtp["smtp_smarthost"] = f"127.0.0.1:{smtp_port}"
    smtp["smtp_require_tls"] = False  # the sink speaks plain SMTP on loopback
    # no trailing newline: 0.25 sends the SMTP password file's bytes untrimmed (see the header)
    smtp["smtp_auth_password_file"] = secret(smtp["smtp_auth_password_file"], SMTP_PASSWORD)
    for receiver in config["receivers"]:
        url = webhook.url(f"/{receiver['name']}")
        integrations = set(receiver) - {"name"}
        assert integrations <= {
            "webhook_configs",
            "slack_configs",
            "pagerduty_configs",
            "email_configs",
        }, f"the test cannot point {receiver['name']}'s {integrations} at a local sink"
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = url
        for slack in receiver.get("slack_configs", []):
            # a trailing newline, as `echo` leaves it: 0.25 trims the URL and the key
            slack["api_url_file"] = secret(slack["api_url_file"], url + "\n")
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["url"] = url
            key = secret(pagerduty["routing_key_file"], ROUTING_KEY + "\n")
            pagerduty["routing_key_file"] = key
        for email in receiver.get("email_configs", []):
            assert "smarthost" not in email, "mail goes through the global SMTP settings"
    _fast(config["route"])
    assert _shape(config["route"]) == _shape(_config()["route"])
    assert config["inhibit_rules"] == _config()["inhibit_rules"]
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# Each alert: its labels, and the alert that must inhibit it (None: it must not be inhibited).
ALERTS: dict[str, dict[str, str]] = {
    # rule 1: a critical alert mutes the warning with the same alertname and instance
    "critical": {
        "alertname": "HighGPUTemperature",
        "instance": "gpu-node-01",
        "severity": "critical",
        "group": "development",
    },
    "warning": {
        "alertname": "HighGPUTemperature",
        "instance": "gpu-node-01",
        "severity": "warning",
        "group": "development",
    },
    "warning-elsewhere": {
        "alertname": "HighGPUTemperature",
        "instance": "gpu-node-09",
        "severity": "warning",
        "group": "development",
    },
    # rule 3: the group-scoped alert mutes the global one, even when the group's rule
    # overrides the severity downwards (and the global critical must not mute it back)
    "group-scoped": {
        "alertname": "HighDiskUsage_Production",
        "aami_template": "HighDiskUsage",
        "aami_scope": "group",
        "instance": "gpu-node-02",
        "severity": "warning",
        "group": "production",
        "group_id": "grp-prod",
    },
    "global-scoped": {
        "alertname": "HighDiskUsage",
        "aami_template": "HighDiskUsage",
        "aami_scope": "global",
        "instance": "gpu-node-02",
        "severity": "critical",
        "group": "production",
        "group_id": "grp-prod",
    },
    # rule 2: NodeDown mutes the node's other alerts
    "node-down": {
        "alertname": "NodeDown",
        "instance": "gpu-node-03",
        "severity": "critical",
        "group": "development",
    },
    "on-down-node": {
        "alertname": "GPUFellOffBus",
        "instance": "gpu-node-03",
        "gpu": "0",
        "severity": "critical",
        "group": "development",
    },
    # rule 2b: AAMI's group NodeDown rule does the same
    "group-node-down": {
        "alertname": "NodeDown_Production",
        "aami_template": "NodeDown",
        "aami_scope": "group",
        "instance": "gpu-node-04",
        "severity": "critical",
        "group": "production",
        "group_id": "grp-prod",
    },
    "on-group-down-node": {
        "alertname": "HighLoad_Production",
        "aami_template": "HighLoad",
        "aami_scope": "group",
        "instance": "gpu-node-04",
        "severity": "warning",
        "group": "production",
        "group_id": "grp-prod",
    },
    # ... and the static and AAMI NodeDown alerts of one node do not mute each other
    "static-node-down": {
        "alertname": "NodeDown",
        "instance": "gpu-node-05",
        "severity": "critical",
        "group": "production",
    },
    "aami-node-down": {
        "alertname": "NodeDown_Production",
        "aami_template": "NodeDown",
        "aami_scope": "group",
        "instance": "gpu-node-05",
        "severity": "critical",
        "group": "production",
        "group_id": "grp-prod",
    },
    # rule 4: the static warning/critical pairs of one GPU
    "gpu-remap-failure": {
        "alertname": "GPURowRemapFailure",
        "instance": "gpu-node-06",
        "UUID": "GPU-0a1b",
        "severity": "critical",
    },
    "gpu-remap-pending": {
        "alertname": "GPURowRemapPending",
        "instance": "gpu-node-06",
        "UUID": "GPU-0a1b",
        "severity": "warning",
    },
    "other-gpu-remap-pending": {
        "alertname": "GPURowRemapPending",
        "instance": "gpu-node-06",
        "UUID": "GPU-9f8e",
        "severity": "warning",
    },
    "gpu-off-the-bus": {
        "alertname": "GPUFellOffBus",
        "instance": "gpu-node-07",
        "pci_bus_id": "00000000:41:00.0",
        "severity": "critical",
    },
    "xid-of-that-gpu": {
        "alertname": "GPUXidError",
        "instance": "gpu-node-07",
        "pci_bus_id": "00000000:41:00.0",
        "severity": "warning",
    },
}
INHIBITED_BY: dict[str, str] = {
    "warning": "critical",
    "global-scoped": "group-scoped",
    "on-down-node": "node-down",
    "on-group-down-node": "group-node-down",
    "gpu-remap-pending": "gpu-remap-failure",
    "xid-of-that-gpu": "gpu-off-the-bus",
}


def _inhibition(base_url: str) -> dict[str, str | None] | None:
    """Alert name -> name of the alert inhibiting it, once Alertmanager has all of them."""
    response = httpx.get(f"{base_url}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    by_labels = {json.dumps(a["labels"], sort_keys=True): a for a in response.json()}
    fingerprints = {}
    found = {}
    for name, labels in ALERTS.items():
        alert = by_labels.get(json.dumps(labels, sort_keys=True))
        if alert is None:
            return None
        fingerprints[alert["fingerprint"]] = name
        found[name] = alert
    return {
        name: ",".join(fingerprints.get(fp, fp) for fp in a["status"]["inhibitedBy"]) or None
        for name, a in found.items()
    }


def _notifications(webhook: WebhookReceiver, path: str) -> list[dict[str, Any]]:
    return [note for note in list(webhook.notifications) if note["path"] == path]


@pytest.mark.e2e
def test_real_alertmanager_inhibits_and_notifies(tmp_path: Path) -> None:
    with WebhookReceiver() as webhook, SmtpSink() as smtp:
        config = _runnable_copy(tmp_path, webhook=webhook, smtp_port=smtp.port)
        check = _amtool("check-config", str(config))
        assert check.returncode == 0, check.stdout + check.stderr
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        process = alertmanager(tmp_path, port=port, config=config)
        try:
            process.start()
            process.wait_http(f"{base_url}/-/ready")
            posted = httpx.post(
                f"{base_url}/api/v2/alerts",
                json=[
                    {"labels": labels, "annotations": {"summary": name}}
                    for name, labels in ALERTS.items()
                ],
                timeout=5,
            )
            assert posted.status_code == 200, posted.text

            expected = {name: INHIBITED_BY.get(name) for name in ALERTS}
            last: list[object] = [None]

            def inhibition_settled() -> bool:
                last[0] = _inhibition(base_url)
                return last[0] == expected

            try:
                wait_for(inhibition_settled, timeout=30, what="the inhibitions")
            except AssertionError:
                raise AssertionError(f"inhibitedBy: {last[0]}, expected {expected}") from None

            # critical, development -> oncall: PagerDuty (routing key from its file) ...
            def paged() -> dict[str, Any] | None:
                for note in _notifications(webhook, "/oncall"):
                    if "HighGPUTemperature" in json.dumps(note):
                        return note
                return None

            page = wait_for(paged, timeout=30, what="the critical alert paged at /oncall")
            assert page["routing_key"] == ROUTING_KEY
            assert page["event_action"] == "trigger"

            # ... and mail, logged in with the password from global.smtp_auth_password_file
            def mailed() -> dict[str, str] | None:
                for message in smtp.received():
                    if "HighGPUTemperature" in message["data"]:
                        return message
                return None

            mail = wait_for(mailed, timeout=30, what="the critical alert mailed to on-call")
            assert mail["password"] == SMTP_PASSWORD
            assert mail["username"] == _config()["global"]["smtp_auth_username"]

            # warning, production -> the production team's Slack (URL from its file) + default
            def to_production() -> dict[str, Any] | None:
                for note in _notifications(webhook, "/production-team"):
                    if "HighDiskUsage_Production" in json.dumps(note):
                        return note
                return None

            slack = wait_for(to_production, timeout=30, what="Slack post at /production-team")
            assert slack["channel"] == "#production-alerts"
            webhook_alert = wait_for(
                lambda: [
                    a
                    for a in webhook.alerts(status="firing", path="/default")
                    if a["labels"] == ALERTS["group-scoped"]
                ],
                timeout=30,
                what="the group-scoped warning at /default",
            )
            assert webhook_alert
        finally:
            process.stop()
