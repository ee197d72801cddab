"""deploy/compose/ and deploy/systemd/aami-server.service: the server's deployment files."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
PROMETHEUS = COMPOSE_DIR / "prometheus.yml"
SERVER_UNIT = ROOT / "deploy" / "systemd" / "aami-server.service"
AAMI = "/opt/aami/bin/aami"


def _docker_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False, timeout=30
    )
    return result.returncode == 0


def _compose() -> dict[str, Any]:
    """The compose file as the engine sees it, or parsed as YAML without docker."""
    if _docker_compose():
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "config", "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Volume mounts in long form, whichever form the file uses."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append(
                {
                    "source": volume.get("source"),
                    "target": volume["target"],
                    "read_only": bool(volume.get("read_only")),
                    "type": volume.get("type"),
                }
            )
            continue
        parts = volume.split(":")
        mode = parts[2] if len(parts) > 2 else "rw"
        kind = "bind" if parts[0].startswith((".", "/")) else "volume"
        mounts.append(
            {"source": parts[0], "target": parts[1], "read_only": mode == "ro", "type": kind}
        )
    return mounts


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _compose()


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"aami", "postgres", "prometheus", "alertmanager"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager")
    assert services["aami"]["build"]


def test_generated_rules_are_one_volume_shared_with_prometheus(compose: dict[str, Any]) -> None:
    services = compose["services"]
    aami_env = _environment(services["aami"])
    rule_path = aami_env["PROMETHEUS_RULE_PATH"]
    writers = [m for m in _mounts(services["aami"]) if m["target"] == rule_path]
    assert len(writers) == 1
    volume = writers[0]["source"]
    assert writers[0]["type"] == "volume"
    assert not writers[0]["read_only"]
    assert volume in compose["volumes"]
    readers = [m for m in _mounts(services["prometheus"]) if m["source"] == volume]
    assert len(readers) == 1
    assert readers[0]["read_only"]
    # Prometheus's rule_files must cover the directory the volume is mounted at.
    rule_files = yaml.safe_load(PROMETHEUS.read_text())["rule_files"]
    assert f"{readers[0]['target'].rstrip('/')}/*.yml" in rule_files
    # ... and the static rules are there too.
    static = [m for m in _mounts(services["prometheus"]) if "system-alerts.yml" in m["target"]]
    assert len(static) == 1
    assert "/etc/prometheus/rules/*.yml" in rule_files


def test_prometheus_runs_with_the_lifecycle_api(compose: dict[str, Any]) -> None:
    command = compose["services"]["prometheus"]["command"]
    argv = shlex.split(command) if isinstance(command, str) else command
    assert "--web.enable-lifecycle" in argv
    assert "--config.file=/etc/prometheus/prometheus.yml" in argv
    mounted = {m["target"]: m["source"] for m in _mounts(compose["services"]["prometheus"])}
    assert Path(mounted["/etc/prometheus/prometheus.yml"]).name == "prometheus.yml"


def test_aami_talks_to_the_compose_services(compose: dict[str, Any]) -> None:
    env = _environment(compose["services"]["aami"])
    assert re.match(r"^postgresql\+psycopg://[^:@]+@postgres:5432/\w+$", env["AAMI_DATABASE_URL"])
    assert env["PROMETHEUS_URL"] == "http://prometheus:9090"
    assert env["ALERTMANAGER_URL"] == "http://alertmanager:9093"
    # The Alertmanager config AAMI writes is the one Alertmanager reads.
    config = Path(env["AAMI_ALERTMANAGER_CONFIG_PATH"])
    writer = [m for m in _mounts(compose["services"]["aami"]) if m["target"] == str(config.parent)]
    assert len(writer) == 1
    assert not writer[0]["read_only"]
    reader = [m for m in _mounts(compose["services"]["alertmanager"]) if m["read_only"]]
    shared = [m for m in reader if m["source"] == writer[0]["source"]]
    assert len(shared) == 1
    # The config names the receivers' secret files by their absolute path in aami: the
    # same path must hold them in Alertmanager's container.
    assert shared[0]["target"] == writer[0]["target"]
    command = compose["services"]["alertmanager"]["command"]
    assert f"--config.file={shared[0]['target']}/{config.name}" in command


def test_no_secret_is_written_in_the_compose_files() -> None:
    for path in (COMPOSE, PROMETHEUS):
        text = path.read_text()
        assert not re.search(r"(?i)(password|token|secret)\s*[:=]\s*['\"]?[A-Za-z0-9]{8,}", text)
        assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "credentials in a URL"
    compose = yaml.safe_load(COMPOSE.read_text())
    assert set(compose["secrets"]) == {
        "aami-admin-token",
        "aami-sd-token",
        "aami-history-token",
        "postgres-password",
    }
    assert all("file" in secret for secret in compose["secrets"].values())
    aami_env = compose["services"]["aami"]["environment"]
    assert "AAMI_ADMIN_TOKEN" not in aami_env
    assert "AAMI_SD_TOKEN" not in aami_env
    # The server reads its secrets from the files the compose secrets mount (aami.config).
    assert aami_env["AAMI_ADMIN_TOKEN_FILE"] == "/run/secrets/aami-admin-token"
    assert aami_env["AAMI_SD_TOKEN_FILE"] == "/run/secrets/aami-sd-token"
    assert aami_env["AAMI_DB_PASSWORD_FILE"] == "/run/secrets/postgres-password"
    assert aami_env["AAMI_HISTORY_TOKEN_FILE"] == "/run/secrets/aami-history-token"
    assert aami_env["AAMI_HISTORY_WEBHOOK_URL"] == "http://aami:8080/api/v1/alert-history/webhook"
    # Prometheus holds the service-discovery token only, never the admin token.
    assert compose["services"]["prometheus"]["secrets"] == ["aami-sd-token"]
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith(
        "/run/secrets/"
    )
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    for job in prometheus["scrape_configs"]:
        for sd in job.get("http_sd_configs", []):
            assert sd["url"].startswith("http://aami:8080/api/v1/sd/prometheus")
            assert sd["authorization"]["credentials_file"] == "/run/secrets/aami-sd-token"


def test_promtool_accepts_the_compose_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (Debian package: prometheus)"
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_files_exist() -> None:
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), path
    entrypoint = COMPOSE_DIR / "aami-entrypoint.sh"
    assert entrypoint.stat().st_mode & 0o111
    result = subprocess.run(["sh", "-n", str(entrypoint)], capture_output=True, check=False)
    assert result.returncode == 0


def _server_unit() -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SERVER_UNIT)
    return parser


def test_systemd_analyze_accepts_the_server_unit() -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed (Debian package: systemd)"
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(SERVER_UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"},
    )
    complaints = [
        line
        for line in result.stderr.splitlines()
        if line and f"Command {AAMI} is not executable" not in line
    ]
    assert complaints == []


def test_server_unit_runs_the_server_hardened_but_can_publish() -> None:
    service = _server_unit()["Service"]
    assert shlex.split(service["ExecStart"]) == [
        AAMI,
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
    ]
    assert service["EnvironmentFile"] == "/etc/aami/server.env"
    assert service["User"] == "aami"
    assert service["User"] != "root"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    writable = service["ReadWritePaths"].replace("-/", "/").split()
    assert "/etc/prometheus/rules/generated" in writable  # PROMETHEUS_RULE_PATH's default
    assert "/etc/alertmanager/aami" in writable  # the managed Alertmanager config
    assert service["StateDirectory"] == "aami"
