"""The static alert rules shipped in deploy/prometheus/rules/ and their promtool unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from aami.checks.defaults import XID_APPLICATION, XID_HARDWARE

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "system-alerts.yml"
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "rules" / "tests").glob("system-alerts*.yml"))
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
        timeout=300,
    )


def _rules() -> list[dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def _records() -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}


def _cases() -> list[dict[str, Any]]:
    return [
        case
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", str(RULES.relative_to(ROOT)))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output


def test_promtool_unit_tests_pass() -> None:
    assert len(RULE_TESTS) == 3
    result = _promtool("test", "rules", *(str(p.relative_to(ROOT)) for p in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


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
        assert set(rule["annotations"]) == {"summary", "description", "requires"}, name


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in _cases():
        (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = set(_alerts())
    assert alerts <= firing, f"never seen firing: {sorted(alerts - firing)}"
    assert alerts <= quiet, f"never asserted quiet: {sorted(alerts - quiet)}"
    assert (firing | quiet) <= alerts, (
        f"tests of alerts that do not exist: {(firing | quiet) - alerts}"
    )


def _xids(expr: str) -> set[int]:
    return {int(n) for n in re.findall(r"gpu:dcgm_xid_errors:new_1h == (\d+)", expr)}


def test_xid_classes_are_the_check_scripts_classes() -> None:
    """The rules and gpu-health's kernel-log classes read from one catalog."""
    records = _records()
    assert _xids(records["gpu:dcgm_xid_hardware:new_1h"]) == set(XID_HARDWARE)
    assert _xids(records["gpu:dcgm_xid_application:new_1h"]) == set(XID_APPLICATION)


def test_no_rule_treats_the_last_xid_gauge_as_sticky() -> None:
    """DCGM_FI_DEV_XID_ERRORS holds the last XID forever: only its changes are news."""
    for rule in _rules():
        expr = re.sub(r"\s+", " ", rule["expr"])
        for use in re.finditer(r"DCGM_FI_DEV_XID_ERRORS(\{[^}]*\})?(?! *\[)", expr):
            assert rule.get("record") == "gpu:dcgm_xid_errors:new_1h", (rule, use.group(0))


def test_no_fixed_gpu_temperature_threshold() -> None:
    """Thermal alerts compare with each GPU's own slowdown temperature, never a constant."""
    for rule in _rules():
        expr = rule["expr"]
        assert not re.search(
            r"(DCGM_FI_DEV_GPU_TEMP|aami_gpu_temperature_celsius)\s*[<>]=?\s*\d", expr
        ), rule


def test_the_catalog_documents_every_alert_and_xid() -> None:
    text = (ROOT / "docs" / "gpu-alerts.md").read_text()
    for name in _alerts():
        assert f"| `{name}` |" in text, f"docs/gpu-alerts.md has no row for {name}"
    for xid in XID_HARDWARE:
        assert f"\n| {xid} | hardware |" in text, xid
    for xid in XID_APPLICATION:
        assert f"\n| {xid} | application |" in text, xid
