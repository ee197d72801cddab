"""Generated configuration files for the real Prometheus, Alertmanager, node_exporter and
vmagent, and the server settings that make the stack's Alertmanager report to AAMI's alert
history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "HISTORY_WEBHOOK_PATH",
    "alertmanager_base_for_stack",
    "history_env",
    "prometheus_config",
    "vmagent_config",
    "write_yaml",
]

HISTORY_WEBHOOK_PATH = "/api/v1/alert-history/webhook"


def prometheus_config(
    *,
    server_url: str,
    token_file: Path,
    rule_globs: list[str],
    alertmanagers: list[str] | None = None,
    interval: str = "15s",
    sd_refresh: str = "30s",
    ca_file: Path | None = None,
) -> dict[str, Any]:
    """Return a prometheus.yml that discovers targets from the AAMI server; with an https
    ``server_url``, service discovery and the scrape of AAMI trust ``ca_file``."""
    tls = {"tls_config": {"ca_file": str(ca_file)}} if ca_file is not None else {}

    def sd_job(job: str, exporter_type: str) -> dict[str, Any]:
        return {
            "job_name": job,
            "http_sd_configs": [
                {
                    "url": f"{server_url}/api/v1/sd/prometheus?exporter_type={exporter_type}",
                    "refresh_interval": sd_refresh,
                    "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                    **tls,
                }
            ],
        }

    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": rule_globs,
        "scrape_configs": [
            sd_job("node-exporter", "node_exporter"),
            sd_job("dcgm-exporter", "dcgm_exporter"),
            sd_job("custom-exporter", "custom"),
            # AAMI itself: whether it publishes, and how long it has been out of sync
            {
                "job_name": "aami",
                "scheme": server_url.split("://", 1)[0],
                **tls,
                "static_configs": [{"targets": [server_url.split("://", 1)[-1]]}],
            },
            # the thresholds of the templates in compact threshold mode
            {
                "job_name": "aami-thresholds",
                "scheme": server_url.split("://", 1)[0],
                "metrics_path": "/api/v1/prometheus/thresholds",
                "honor_labels": True,
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                **tls,
                "static_configs": [{"targets": [server_url.split("://", 1)[-1]]}],
            },
        ],
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]}
    return config


def vmagent_config(
    *,
    server_url: str,
    token_file: Path,
    own_targets: list[str],
    interval: str = "15s",
    ca_file: Path | None = None,
) -> dict[str, Any]:
    """The scrape jobs of :func:`prometheus_config` for vmagent (which takes its discovery
    interval from ``-promscrape.httpSDCheckInterval``, not from the file), and a job for the
    VictoriaMetrics processes at ``own_targets``."""
    prometheus = prometheus_config(
        server_url=server_url,
        token_file=token_file,
        rule_globs=[],
        interval=interval,
        ca_file=ca_file,
    )
    jobs = prometheus["scrape_configs"]
    for job in jobs:
        for sd in job.get("http_sd_configs", []):
            sd.pop("refresh_interval", None)
    jobs.append({"job_name": "victoriametrics", "static_configs": [{"targets": own_targets}]})
    return {"global": {"scrape_interval": interval}, "scrape_configs": jobs}


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    """Write a YAML document (the stack's own generated files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def alertmanager_base_for_stack(
    shipped: dict[str, Any] | None,
    webhook_url: str,
    *,
    group_wait: str = "5s",
    group_interval: str = "10s",
) -> dict[str, Any]:
    """The shipped Alertmanager config with every receiver delivering to the stack's local
    webhook (``<webhook_url>/<receiver>``), so a person trying AAMI sees where alerts go."""
    if shipped is None:
        shipped = {
            "route": {"receiver": "default", "group_by": ["alertname", "group_id"]},
            "receivers": [{"name": "default"}],
        }
    config = dict(shipped)
    config.pop("global", None)  # SMTP and Slack globals need secrets the stack does not have
    config["receivers"] = [
        {
            "name": r["name"],
            "webhook_configs": [
                {"url": f"{webhook_url.rstrip('/')}/{r['name']}", "send_resolved": True}
            ],
        }
        for r in shipped.get("receivers") or []
    ]
    route = dict(config.get("route") or {})
    # Quick feedback on a laptop; production keeps the shipped timings.
    route.update({"group_wait": group_wait, "group_interval": group_interval})
    config["route"] = route
    return config


def history_env(*, server_url: str, token_file: Path, ca_file: Path | None) -> dict[str, str]:
    """The server's settings that put the alert-history receiver into the Alertmanager
    config it writes: the webhook at ``server_url`` (trusting ``ca_file``), posted with the
    history token in ``token_file`` (a token that can post history and nothing else)."""
    env = {
        "AAMI_HISTORY_TOKEN_FILE": str(token_file),
        "AAMI_HISTORY_WEBHOOK_URL": server_url.rstrip("/") + HISTORY_WEBHOOK_PATH,
    }
    if ca_file is not None:
        env["AAMI_HISTORY_WEBHOOK_CA_FILE"] = str(ca_file)
    return env
