"""The VictoriaMetrics path's shipped files (deploy/victoriametrics/), and AAMI's rule files
as vmalert reads them: every default template, per group and in compact mode, passes
``vmalert -dryRun`` (MetricsQL parses the expression; the annotations are valid templates)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from aami.alerts.compact import CompactRefused, render_compact_rule
from aami.alerts.defaults import DEFAULT_ALERT_TEMPLATES
from aami.alerts.rendering import GroupRef, TemplateSpec, render_rule
from aami.prometheus.rule_files import build_rule_file
from aami.security.tls import ensure_stack_tls
from aami.stack.configs import vmagent_config, write_yaml
from tests.support.processes import binary, vmalert_dry_run
from tests.support.prometheus_config import REPO, SHIPPED
from tests.support.victoriametrics import SHIPPED_VMAGENT

DEPLOY = REPO / "deploy" / "victoriametrics"
TEMPLATES = {t["name"]: t for t in DEFAULT_ALERT_TEMPLATES}


def _spec(template: dict[str, Any]) -> TemplateSpec:
    return TemplateSpec(
        name=template["name"],
        query_template=template["query_template"],
        default_config=template["default_config"],
        severity=template["severity"],
        for_duration=template["for_duration"],
        annotations=template["annotations"],
    )


def _dry_run(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(text)
    return vmalert_dry_run(path)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_vmalert_accepts_each_default_template_rule_file(tmp_path: Path, name: str) -> None:
    spec = _spec(TEMPLATES[name])
    group = GroupRef("grp-123", "production")
    rule = render_rule(spec, dict(spec.default_config), group)
    text, _ = build_rule_file("grp-123", [rule], revision=7, title="AAMI rules for production")
    result = _dry_run(tmp_path, "group-grp-123.yml", text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_vmalert_accepts_the_default_templates_in_compact_mode(tmp_path: Path) -> None:
    rules = []
    refused = {}
    for template in DEFAULT_ALERT_TEMPLATES:
        try:
            rules.append(render_compact_rule(_spec(template)))
        except CompactRefused as exc:
            refused[template["name"]] = str(exc)
    assert "HighCPUUsage" in {rule["alert"] for rule in rules}, refused
    text, _ = build_rule_file("", rules, revision=1, title="AAMI global rules")
    result = _dry_run(tmp_path, "global.yml", text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_vmalert_accepts_a_file_of_every_default_template_for_two_groups(tmp_path: Path) -> None:
    # one file per group, as the publisher and `aami rules sync` write them, in one run
    for group in (GroupRef("grp-1", "production"), GroupRef("grp-2", "dev team")):
        rules = [render_rule(_spec(t), {}, group) for t in DEFAULT_ALERT_TEMPLATES]
        text, _ = build_rule_file(group.id, rules, revision=3, title=group.name)
        (tmp_path / f"group-{group.id}.yml").write_text(text)
    result = vmalert_dry_run(tmp_path / "*.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_vmalert_dry_run_refuses_what_metricsql_cannot_parse(tmp_path: Path) -> None:
    broken = {"groups": [{"name": "aami-x", "rules": [{"alert": "A", "expr": "rate(up[5m]"}]}]}
    result = _dry_run(tmp_path, "group-x.yml", yaml.safe_dump(broken))
    assert result.returncode != 0
    assert "invalid expression" in result.stderr


@pytest.mark.parametrize("name", ["system-alerts.yml", "aami.yml"])
def test_vmalert_accepts_the_shipped_static_rules(name: str) -> None:
    result = vmalert_dry_run(REPO / "deploy" / "prometheus" / "rules" / name)
    assert result.returncode == 0, result.stdout + result.stderr


def _vmagent_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(SHIPPED_VMAGENT.read_text())
    return config


def test_vmagent_accepts_the_shipped_scrape_config(tmp_path: Path) -> None:
    # vmagent -dryRun reads the CA files: the shipped path, here a CA of the test's
    ca = ensure_stack_tls(tmp_path / "tls").ca_file
    text = SHIPPED_VMAGENT.read_text().replace("/etc/victoria-metrics/aami-ca.pem", str(ca))
    (tmp_path / "vmagent.yml").write_text(text)
    result = subprocess.run(
        [binary("vmagent"), "-dryRun", f"-promscrape.config={tmp_path / 'vmagent.yml'}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_vmagent_jobs_are_the_prometheus_jobs_with_the_same_discovery_and_labels() -> None:
    """Same jobs, same service discovery and token, same (absent) relabelling: the series
    carry the same labels under vmagent as under Prometheus, so one rule fits both."""
    prometheus = {j["job_name"]: j for j in yaml.safe_load(SHIPPED.read_text())["scrape_configs"]}
    agent = {j["job_name"]: j for j in _vmagent_config()["scrape_configs"]}
    assert set(prometheus) - {"prometheus"} == set(agent) - {"victoriametrics"}
    for name, job in agent.items():
        if name == "victoriametrics":
            continue
        expected = prometheus[name]
        assert job.get("relabel_configs") == expected.get("relabel_configs")
        assert job.get("metric_relabel_configs") == expected.get("metric_relabel_configs")
        assert job.get("honor_labels") == expected.get("honor_labels")
        assert job.get("metrics_path") == expected.get("metrics_path")
        for sd, prom_sd in zip(
            job.get("http_sd_configs", []), expected.get("http_sd_configs", []), strict=True
        ):
            assert sd["url"] == prom_sd["url"]
            assert sd["authorization"]["type"] == "Bearer"
            assert sd["authorization"]["credentials_file"] == "/etc/victoria-metrics/aami-token"
            assert "refresh_interval" not in sd  # vmagent: -promscrape.httpSDCheckInterval


def _args(name: str) -> list[str]:
    parser = ConfigParser(interpolation=None)
    parser.read_string("[default]\n" + (DEPLOY / name).read_text())
    return shlex.split(parser["default"]["ARGS"].strip('"'))


def _flags(args: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for arg in args:
        key, _, value = arg.lstrip("-").partition("=")
        found.setdefault(key, []).append(value)
    return found


def _help(program: str) -> str:
    result = subprocess.run(
        [binary(program), "--help"], capture_output=True, text=True, check=False, timeout=30
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize("program", ["vmagent", "vmalert"])
def test_the_sample_defaults_use_flags_the_installed_binary_has(program: str) -> None:
    flags = _flags(_args(f"{program}.default"))
    known = _help(program)
    for flag in flags:
        assert f"  -{flag} " in known or f"  -{flag}\n" in known, f"{program} has no -{flag}"


def test_vmalert_defaults_write_recording_rules_and_read_aami_rules() -> None:
    flags = _flags(_args("vmalert.default"))
    assert flags["remoteWrite.url"]  # AAMI's stamp is a recording rule: vmalert needs it
    assert "/etc/vmalert/rules/aami/*.yml" in flags["rule"]
    assert flags["notifier.url"] == ["http://localhost:9093"]
    assert flags["datasource.url"] == ["http://localhost:8428"]


@pytest.mark.parametrize("unit", ["vmagent.service", "vmalert.service"])
def test_systemd_analyze_accepts_the_units(unit: str) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed (Debian package: systemd)"
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(DEPLOY / unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"},
    )
    assert result.stderr.strip() == ""
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / unit)
    service = parser["Service"]
    program = unit.removesuffix(".service")
    assert service["EnvironmentFile"] == f"/etc/default/{program}"
    assert service["ExecStart"] == f"/usr/bin/{program} $ARGS"
    assert service["User"] == "_victoria-metrics"  # the Debian package's user, not root


def test_vmagent_accepts_the_stacks_scrape_config(tmp_path: Path) -> None:
    ca = ensure_stack_tls(tmp_path / "tls").ca_file
    config = vmagent_config(
        server_url="https://127.0.0.1:8080",
        token_file=tmp_path / "sd-token",
        own_targets=["127.0.0.1:18428"],
        interval="5s",
        ca_file=ca,
    )
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"node-exporter", "aami", "aami-thresholds", "victoriametrics"} <= jobs
    path = write_yaml(tmp_path / "vmagent.yml", config)
    result = subprocess.run(
        [binary("vmagent"), "-dryRun", f"-promscrape.config={path}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
