"""The shipped deploy/prometheus/prometheus.yml, pointed at a test's own loopback ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "prometheus" / "prometheus.yml"
SHIPPED_RULES = "/etc/prometheus/rules"


def shipped_config_for_test(
    tmp: Path,
    *,
    server_url: str,
    token_file: Path,
    rules_dir: Path,
    prometheus_port: int,
    alertmanager: str | list[str] | None = None,
    interval: str = "1s",
    ca_file: Path | None = None,
) -> Path:
    """Rewrite only addresses, paths and intervals of the shipped config; keep the rest.

    Jobs that talk to AAMI keep their ``tls_config`` pointed at ``ca_file`` for an https
    ``server_url``, and lose it for an http one (Prometheus would read the missing file).
    ``alertmanager`` is one host:port or every member of a cluster (each is alerted)."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [
        str(rules_dir) + rule.removeprefix(SHIPPED_RULES) for rule in config["rule_files"]
    ]
    server = urlsplit(server_url)
    for job in config["scrape_configs"]:
        for sd in job.get("http_sd_configs", []):
            url = urlsplit(sd["url"])
            sd["url"] = urlunsplit((server.scheme, server.netloc, url.path, url.query, ""))
            sd["refresh_interval"] = interval
            sd["authorization"]["credentials_file"] = str(token_file)
            _trust(sd, server.scheme, ca_file)
        at_aami = job["job_name"] in ("aami", "aami-thresholds")
        if at_aami:
            job["scheme"] = server.scheme
            _trust(job, server.scheme, ca_file)
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token_file)
        for static in job.get("static_configs", []):
            own = server.netloc if at_aami else f"127.0.0.1:{prometheus_port}"
            static["targets"] = [own]
    if alertmanager is None:
        config.pop("alerting", None)
    else:
        members = [alertmanager] if isinstance(alertmanager, str) else alertmanager
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = members
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _trust(section: dict[str, Any], scheme: str, ca_file: Path | None) -> None:
    if scheme == "https":
        assert ca_file is not None, "an https AAMI needs the CA Prometheus trusts"
        section["tls_config"] = {**section.get("tls_config", {}), "ca_file": str(ca_file)}
    else:
        section.pop("tls_config", None)
