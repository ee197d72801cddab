"""The shipped deploy/victoriametrics/vmagent.yml pointed at a test's own loopback ports,
and reads of VictoriaMetrics and vmalert's HTTP APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml

from tests.support.prometheus_config import REPO

SHIPPED_VMAGENT = REPO / "deploy" / "victoriametrics" / "vmagent.yml"
AAMI_JOBS = ("aami", "aami-thresholds")


def vmagent_config_for_test(
    tmp: Path,
    *,
    server_url: str,
    token_file: Path,
    own_targets: list[str],
    interval: str = "1s",
    ca_file: Path | None = None,
) -> Path:
    """Rewrite only addresses, paths and the interval of the shipped vmagent config; keep
    its jobs, labels and authorization. ``own_targets`` replace the VictoriaMetrics
    processes the ``victoriametrics`` job scrapes."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED_VMAGENT.read_text())
    config["global"]["scrape_interval"] = interval
    server = urlsplit(server_url)
    for job in config["scrape_configs"]:
        for sd in job.get("http_sd_configs", []):
            url = urlsplit(sd["url"])
            sd["url"] = urlunsplit((server.scheme, server.netloc, url.path, url.query, ""))
            sd["authorization"]["credentials_file"] = str(token_file)
            _trust(sd, server.scheme, ca_file)
        at_aami = job["job_name"] in AAMI_JOBS
        if at_aami:
            job["scheme"] = server.scheme
            _trust(job, server.scheme, ca_file)
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token_file)
        for static in job.get("static_configs", []):
            static["targets"] = [server.netloc] if at_aami else own_targets
    path = tmp / "vmagent.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _trust(section: dict[str, Any], scheme: str, ca_file: Path | None) -> None:
    if scheme == "https":
        assert ca_file is not None, "an https AAMI needs the CA vmagent trusts"
        section["tls_config"] = {**section.get("tls_config", {}), "ca_file": str(ca_file)}
    else:
        section.pop("tls_config", None)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query against VictoriaMetrics (its Prometheus-compatible API)."""
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def vmalert_groups(url: str) -> dict[str, list[dict[str, Any]]]:
    """The rule groups vmalert has loaded, by name, with their rules (vmalert 1.79 answers
    ``"groups": null`` when it has none)."""
    response = httpx.get(f"{url}/api/v1/rules", timeout=5)
    response.raise_for_status()
    return {g["name"]: g["rules"] for g in response.json()["data"]["groups"] or []}


def stamp(rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """The labels of a group's ``aami_rule_group_info`` stamp, as vmalert shows them."""
    for rule in rules:
        if rule.get("type") == "recording" and rule["name"] == "aami_rule_group_info":
            labels: dict[str, str] = rule["labels"]
            return labels
    return None
