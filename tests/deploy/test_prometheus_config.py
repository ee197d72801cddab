"""The shipped deploy/prometheus/prometheus.yml."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from aami.config import Settings
from tests.support.processes import binary
from tests.support.prometheus_config import SHIPPED


def _config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    return config


def test_promtool_accepts_it(tmp_path: Path) -> None:
    # promtool reads a scrape job's token file: the shipped path, here a file of the test's
    config = _config()
    token = tmp_path / "aami-token"
    token.write_text("a-token")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            assert job["authorization"]["credentials_file"] == "/etc/prometheus/aami-token"
            job["authorization"]["credentials_file"] = str(token)
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run(
        [binary("promtool"), "check", "config", str(checked)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_intervals_and_alerting() -> None:
    config = _config()
    assert config["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]


def test_rule_files_include_the_generated_directory() -> None:
    rule_files = _config()["rule_files"]
    generated = Settings.model_fields["prometheus_rule_path"].default
    assert f"{generated}/*.yml" in rule_files
    assert "/etc/prometheus/rules/*.yml" in rule_files


def test_sd_jobs_use_the_endpoint_with_a_token_and_never_relabel_job() -> None:
    jobs = {job["job_name"]: job for job in _config()["scrape_configs"]}
    expected = {"node-exporter": "node_exporter", "dcgm-exporter": "dcgm_exporter"}
    for name, exporter_type in expected.items():
        sd = jobs[name]["http_sd_configs"][0]
        assert sd["url"].endswith(f"/api/v1/sd/prometheus?exporter_type={exporter_type}")
        assert sd["authorization"]["type"] == "Bearer"
        assert sd["authorization"]["credentials_file"]
        for relabel in jobs[name].get("relabel_configs", []):
            assert relabel.get("target_label") not in {"job", "__address__"}


def test_the_thresholds_job_keeps_group_labels() -> None:
    jobs = {job["job_name"]: job for job in _config()["scrape_configs"]}
    job = jobs["aami-thresholds"]
    assert job["metrics_path"] == "/api/v1/prometheus/thresholds"
    assert job["honor_labels"] is True
    assert job["authorization"]["type"] == "Bearer"
    assert job["static_configs"][0]["targets"] == jobs["aami"]["static_configs"][0]["targets"]
