"""The static alert rules shipped in deploy/prometheus/rules/ and their promtool unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "system-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "rules" / "tests" / "system-alerts.test.yml"
SEVERITIES = {"critical", "warning", "info"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not on PATH (Debian package: prometheus)"
    return subprocess.run(
        [promtool, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )


def _rules() -> list[dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", str(RULES.relative_to(ROOT)))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output


def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_node_down_matches_the_spec() -> None:
    node_down = _alerts()["NodeDown"]
    assert node_down["expr"].strip() == 'up{job="node-exporter"} == 0'
    assert node_down["for"] == "2m"
    assert node_down["labels"]["severity"] == "critical"
    assert node_down["annotations"]["summary"] == "Node {{ $labels.instance }} is down"
    assert node_down["annotations"]["description"] == (
        "Node has not responded for more than 2 minutes.\n"
        "Instance: {{ $labels.instance }}\n"
        "Group: {{ $labels.group }}\n"
    )


def test_every_alert_has_a_severity_and_annotations() -> None:
    rules = _rules()
    assert all(("alert" in rule) != ("record" in rule) for rule in rules)
    alerts = _alerts()
    assert len(alerts) == sum(1 for rule in rules if "alert" in rule), "duplicate alert names"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name


def test_every_alert_is_unit_tested() -> None:
    document: dict[str, Any] = yaml.safe_load(RULE_TESTS.read_text())
    tested = {case["alertname"] for test in document["tests"] for case in test["alert_rule_test"]}
    assert set(_alerts()) <= tested
