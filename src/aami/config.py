"""Settings: one pydantic-settings class read from the environment."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "parse_duration_seconds"]

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")


def parse_duration_seconds(value: str | float | int) -> float:
    """Parse a Go-style duration such as ``30s``, ``1m30s`` or a plain number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration such as '30s' or '1m30s'")
    hours, minutes, seconds, millis = match.groups()
    return (
        int(hours or 0) * 3600
        + int(minutes or 0) * 60
        + float(seconds or 0)
        + int(millis or 0) / 1000
    )


class Settings(BaseSettings):
    """Everything the server reads from its environment.

    ``AAMI_*`` names are ours; the ``PROMETHEUS_*`` names and their meaning come from
    the alerting spec and are read unprefixed, as is ``ALERTMANAGER_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="AAMI_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite:///./aami.db",
        description="SQLAlchemy URL: sqlite:///path (embedded) or postgresql+psycopg://...",
    )
    admin_token: str | None = Field(
        default=None, description="Bearer token with full access; required unless --dev."
    )
    sd_token: str | None = Field(
        default=None,
        description="read-only token for Prometheus's http_sd_configs; it can read service "
        "discovery and nothing else (the admin token works too)",
    )
    dev: bool = Field(default=False, description="Development mode: a token is generated.")
    sd_cache_size: int = Field(default=64, ge=1)

    prometheus_url: str = Field(default="http://localhost:9090", alias="PROMETHEUS_URL")
    prometheus_rule_path: Path = Field(
        default=Path("/etc/prometheus/rules/generated"), alias="PROMETHEUS_RULE_PATH"
    )
    prometheus_reload_enabled: bool = Field(default=True, alias="PROMETHEUS_RELOAD_ENABLED")
    prometheus_reload_timeout: float = Field(default=30.0, alias="PROMETHEUS_RELOAD_TIMEOUT")
    # The spec's example sets this false; AAMI validates by default because promtool ships
    # with Debian's prometheus package and a rule file Prometheus refuses stops all its rules.
    prometheus_validate_rules: bool = Field(default=True, alias="PROMETHEUS_VALIDATE_RULES")
    prometheus_backup_enabled: bool = Field(default=True, alias="PROMETHEUS_BACKUP_ENABLED")
    alertmanager_url: str = Field(default="http://localhost:9093", alias="ALERTMANAGER_URL")
    alertmanager_config_path: Path | None = Field(
        default=None,
        description="Alertmanager config file AAMI writes (shipped base + managed routes); "
        "unset = AAMI validates notification changes but does not write or reload",
    )
    alertmanager_base_config: Path | None = Field(
        default=None, description="the shipped alertmanager.yml the managed routes extend"
    )
    promtool_timeout: float = Field(
        default=30.0,
        description="promtool in the publisher: killed after this long (a duration)",
    )
    tool_timeout: float = Field(
        default=10.0,
        description="amtool and promtool inside a request: killed after this long",
    )
    publish_debounce: float = Field(
        default=0.2,
        ge=0,
        description="quiet time after a change before it is published (a burst is one batch)",
    )
    publish_check_interval: float = Field(
        default=10.0,
        gt=0,
        description="how often the publisher compares desired, written and loaded state",
    )
    publish_retry_max: float = Field(
        default=60.0, gt=0, description="the longest wait between retries of a failing publish"
    )
    publish_history_keep: int = Field(default=1000, ge=10, description="rows kept per target")
    publish_history_days: int = Field(default=30, ge=1, description="rows older than this go")
    silence_max_duration: float = Field(default=24 * 3600.0, description="seconds")
    silence_max_share: float = Field(default=0.5, gt=0, le=1)
    silence_max_share_min_alerts: int = Field(default=2, ge=1)
    silence_watch_interval: float = Field(default=10.0, gt=0)

    @field_validator(
        "prometheus_reload_timeout",
        "silence_max_duration",
        "promtool_timeout",
        "tool_timeout",
        "publish_debounce",
        "publish_check_interval",
        "publish_retry_max",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> float:
        if isinstance(value, str | int | float):
            return parse_duration_seconds(value)
        raise ValueError("expected a duration such as '30s'")

    @field_validator("admin_token", "sd_token")
    @classmethod
    def _strong_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError(
                "tokens must be at least 16 characters (AAMI_ADMIN_TOKEN, AAMI_SD_TOKEN)"
            )
        return value


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
