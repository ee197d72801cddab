"""The alerts on AAMI itself (deploy/prometheus/rules/aami.yml): promtool accepts them,
their unit tests pass, and every metric they read is one AAMI's /metrics exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "aami.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "rules" / "tests" / "aami.test.yml"
_METRIC = re.compile(r"\b(aami_[a-z_]+)\b")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not on PATH (Debian package: prometheus)"
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, check=False, cwd=ROOT, timeout=120
    )


def test_promtool_accepts_the_rules_and_their_tests_pass() -> None:
    check = _promtool("check", "rules", str(RULES.relative_to(ROOT)))
    assert check.returncode == 0, check.stdout + check.stderr
    tests = _promtool("test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert tests.returncode == 0, tests.stdout + tests.stderr


def _exported(client: TestClient) -> set[str]:
    exported = set()
    for family in text_string_to_metric_families(client.get("/metrics").text):
        exported.add(family.name)
        exported.update(sample.name for sample in family.samples)
    return exported


def test_every_metric_the_rules_read_is_exported(client: TestClient) -> None:
    document = yaml.safe_load(RULES.read_text())
    read = {
        name
        for group in document["groups"]
        for rule in group["rules"]
        for name in _METRIC.findall(rule["expr"])
    }
    assert read, "the rules read no aami_ metric"
    # The publishing replica exports the sync gauges once its first pass has measured.
    wait_for(
        lambda: read <= _exported(client),
        timeout=15,
        what=f"{sorted(read)} on /metrics",
    )


def test_the_shipped_prometheus_config_scrapes_aami() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["aami"]["static_configs"][0]["targets"] == ["localhost:8080"]
    assert "/etc/prometheus/rules/*.yml" in config["rule_files"]
