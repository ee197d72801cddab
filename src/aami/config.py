"""Settings: one pydantic-settings class read from the environment."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from aami.common.durations import parse_seconds


def _read_secret(path: Path, setting: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ValueError(f"{setting}: {path} is empty")
    return value


__all__ = ["Settings", "get_settings", "parse_size_bytes"]


_SIZE = re.compile(r"^(\d+)\s*([KMG]i?B?|B)?$", re.IGNORECASE)


def parse_size_bytes(value: str | int) -> int:
    """Parse a size such as ``1048576``, ``512KiB`` or ``1MiB`` (K, M, G are 1024-based)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a size such as '1048576' or '1MiB'")
    number, unit = match.groups()
    multiplier: int = 1024 ** "BKMG".index((unit or "B")[0].upper())
    return int(number) * multiplier


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
    admin_token_file: Path | None = Field(
        default=None,
        description="a file holding the admin token (a Docker or systemd secret); not with "
        "AAMI_ADMIN_TOKEN",
    )
    sd_token_file: Path | None = Field(
        default=None, description="a file holding the service-discovery token"
    )
    db_password_file: Path | None = Field(
        default=None,
        description="a file holding the database password, put into AAMI_DATABASE_URL "
        "(which then names no password)",
    )
    history_token: str | None = Field(
        default=None,
        description="token Alertmanager posts alert history with; it can post to "
        "/api/v1/alert-history/webhook and nothing else (reading history needs the admin token)",
    )
    history_token_file: Path | None = Field(
        default=None, description="a file holding the history token"
    )
    history_webhook_url: str | None = Field(
        default=None,
        description="the alert-history webhook as Alertmanager reaches it (e.g. "
        "https://aami.example.com/api/v1/alert-history/webhook); with history_token set, the "
        "Alertmanager config AAMI renders sends every alert there",
    )
    history_webhook_ca_file: Path | None = Field(
        default=None,
        description="CA file Alertmanager verifies an https history_webhook_url with "
        "(unset = its system trust store)",
    )
    alert_history_days: int = Field(
        default=30, ge=1, le=3650, description="alert transitions older than this are pruned"
    )
    alert_history_max_rows: int = Field(
        default=200_000, ge=100, description="alert transitions kept at most (oldest go first)"
    )
    alert_history_flap_window: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="the window flaps are counted in (a duration): re-fires of an alert "
        "after it resolved",
    )
    dev: bool = Field(default=False, description="Development mode: a token is generated.")
    sd_cache_size: int = Field(default=64, ge=1)

    prometheus_url: str = Field(default="http://localhost:9090", alias="PROMETHEUS_URL")
    prometheus_external_url: str | None = Field(
        default=None,
        description="Prometheus as a user's browser reaches it, for the links the UI shows "
        "(a rule's graph); unset = PROMETHEUS_URL",
    )
    prometheus_rule_path: Path = Field(
        default=Path("/etc/prometheus/rules/generated"), alias="PROMETHEUS_RULE_PATH"
    )
    prometheus_reload_enabled: bool = Field(default=True, alias="PROMETHEUS_RELOAD_ENABLED")
    prometheus_reload_timeout: float = Field(default=120.0, alias="PROMETHEUS_RELOAD_TIMEOUT")
    # The spec's example sets this false; AAMI validates by default because promtool ships
    # with Debian's prometheus package and a rule file Prometheus refuses stops all its rules.
    prometheus_validate_rules: bool = Field(default=True, alias="PROMETHEUS_VALIDATE_RULES")
    prometheus_backup_enabled: bool = Field(default=True, alias="PROMETHEUS_BACKUP_ENABLED")
    alertmanager_url: str = Field(
        default="http://localhost:9093",
        alias="ALERTMANAGER_URL",
        description="the Alertmanager, or every member of one Alertmanager cluster "
        "(comma-separated URLs): reads and silences go to any member that answers, the "
        "managed config is reloaded and confirmed on each",
    )
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
        description="promtool in the publisher: killed after this long (a duration) for "
        "each 1,000 rule files one promtool process checks",
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
    evaluator_stale_after: float = Field(
        default=120.0,
        gt=0,
        description="a remote evaluator that has not reported for this long (a duration) "
        "is stale: not in sync, whatever it last said",
    )
    publish_history_keep: int = Field(default=1000, ge=10, description="rows kept per target")
    publish_history_days: int = Field(default=30, ge=1, description="rows older than this go")
    silence_max_duration: float = Field(default=24 * 3600.0, description="seconds")
    silence_max_share: float = Field(default=0.5, gt=0, le=1)
    silence_max_share_min_alerts: int = Field(default=2, ge=1)
    silence_watch_interval: float = Field(default=10.0, gt=0)
    # Node registration (src/aami/registration): what a node may claim about itself.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed "
        "(comma-separated); empty = a node's address is the one it connects from",
    )
    registration_max_labels: int = Field(
        default=32, ge=0, le=1000, description="labels one node may send when it registers"
    )
    registration_label_key_pattern: str = Field(
        default=r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$",
        description="a node-supplied label key must match this (and be a Prometheus label name)",
    )
    registration_label_value_max: int = Field(
        default=256, ge=1, le=4096, description="characters in a node-supplied label value"
    )
    registration_pending_ttl: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="a queued registration expires this long after it was made (or approved)",
    )
    registration_pending_max: int = Field(
        default=1000, ge=1, description="queued registrations at most (pending and approved)"
    )
    node_token_cache_ttl: float = Field(
        default=300.0,
        ge=0,
        description="how long a node token, once checked, is believed without the database; "
        "every way a token ends (replaced, its target deleted) bumps the node_tokens "
        "revision, so it stops working at once on this replica and within ~1 s on others: "
        "the TTL only bounds what no revision tells",
    )
    # Limits before work (src/aami/api/limits.py), UI sessions, secrets at rest.
    max_request_body: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="bytes a request body may have (bytes, or 512KiB, 1MiB, ...); larger is 413",
    )
    max_config_body: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="bytes of the document POST /api/v1/config/plan and /apply accept "
        "with the admin token",
    )
    auth_failure_limit: int = Field(
        default=10,
        ge=0,
        description="failed token checks or logins from one address within "
        "auth_failure_window that block it for auth_block_duration; 0 = never block",
    )
    auth_failure_window: float = Field(default=60.0, gt=0, description="a duration")
    auth_block_duration: float = Field(default=300.0, gt=0, description="a duration")
    session_lifetime: float = Field(
        default=12 * 3600.0, gt=0, description="how long a UI login lasts (a duration)"
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s), comma-separated, that encrypt notification secrets",
    )
    encryption_key_file: Path | None = Field(
        default=None, description="a file holding the Fernet key(s), one per line"
    )
    # Transport and check signing (src/aami/serving.py, src/aami/security/{tls,signing}.py).
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain; with tls_key_file the server speaks HTTPS only",
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of the cert")
    signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 key that signs check scripts (created 0600 if missing); unset: "
        "beside a SQLite database file, else $XDG_STATE_HOME/aami/signing.key",
    )
    signing_next_key_file: Path | None = Field(
        default=None, description="the next signing key during a rotation (signs too)"
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="a connection must send a complete request head (after its TLS "
        "handshake) this soon after it opens, or after the first byte of a later request",
    )
    keep_alive_timeout: int = Field(
        default=5, ge=1, description="seconds an idle connection stays open between requests"
    )
    max_connections: int = Field(
        default=4096,
        ge=16,
        description="open connections at most; at the cap the oldest idle one is closed",
    )
    max_header_bytes: int = Field(
        default=65536, ge=4096, description="bytes a request head may have (431 beyond)"
    )

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: object) -> object:
        """``AAMI_ADMIN_TOKEN_FILE``, ``AAMI_SD_TOKEN_FILE``, ``AAMI_DB_PASSWORD_FILE``: the
        secret is read from the file (trailing newline dropped), never from the environment."""
        if not isinstance(data, dict):
            return data
        for name in ("admin_token", "sd_token", "history_token"):
            path = data.get(f"{name}_file")
            if path:
                if data.get(name):
                    raise ValueError(
                        f"set AAMI_{name.upper()} or AAMI_{name.upper()}_FILE, not both"
                    )
                data[name] = _read_secret(Path(path), f"AAMI_{name.upper()}_FILE")
        path = data.get("db_password_file")
        if path:
            url = make_url(str(data.get("database_url") or "sqlite:///./aami.db"))
            if url.password:
                raise ValueError(
                    "AAMI_DATABASE_URL names a password and AAMI_DB_PASSWORD_FILE is set: "
                    "keep the password in one place"
                )
            password = _read_secret(Path(path), "AAMI_DB_PASSWORD_FILE")
            data["database_url"] = url.set(password=password).render_as_string(hide_password=False)
        return data

    @model_validator(mode="after")
    def _external_url(self) -> Settings:
        external = (self.prometheus_external_url or "").strip()
        self.prometheus_external_url = (external or self.prometheus_url).rstrip("/")
        return self

    @field_validator("history_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("AAMI_HISTORY_WEBHOOK_URL must be an http:// or https:// URL")
        return value

    @field_validator("alertmanager_url")
    @classmethod
    def _alertmanager_urls(cls, value: str) -> str:
        urls = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        if not urls:
            raise ValueError("ALERTMANAGER_URL names no Alertmanager")
        for url in urls:
            if not re.match(r"^https?://[^\s/,]+(/\S*)?$", url):
                raise ValueError(f"ALERTMANAGER_URL: {url!r} is not an http:// or https:// URL")
        if len(set(urls)) < len(urls):
            raise ValueError("ALERTMANAGER_URL names a member twice")
        return ",".join(urls)

    @field_validator("tls_key_file")
    @classmethod
    def _tls_pair(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if (value is None) != (info.data.get("tls_cert_file") is None):
            raise ValueError("set both AAMI_TLS_CERT_FILE and AAMI_TLS_KEY_FILE, or neither")
        return value

    @field_validator(
        "prometheus_reload_timeout",
        "silence_max_duration",
        "promtool_timeout",
        "tool_timeout",
        "publish_debounce",
        "publish_check_interval",
        "publish_retry_max",
        "registration_pending_ttl",
        "node_token_cache_ttl",
        "header_timeout",
        "auth_failure_window",
        "auth_block_duration",
        "session_lifetime",
        "alert_history_flap_window",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> float:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return parse_seconds(value, plain_seconds=True)
        raise ValueError("expected a duration such as '30s' or a number of seconds")

    @field_validator("admin_token", "sd_token", "history_token")
    @classmethod
    def _strong_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError(
                "tokens must be at least 16 characters (AAMI_ADMIN_TOKEN, AAMI_SD_TOKEN, "
                "AAMI_HISTORY_TOKEN)"
            )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> list[str]:
        items = re.split(r"[,\s]+", value) if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("expected addresses or CIDRs, comma-separated")
        networks = []
        for item in items:
            if not str(item).strip():
                continue
            try:
                networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return networks

    @field_validator("registration_label_key_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("max_request_body", "max_config_body", mode="before")
    @classmethod
    def _size(cls, value: object) -> int:
        if isinstance(value, str | int) and not isinstance(value, bool):
            return parse_size_bytes(value)
        raise ValueError("expected a size such as '1048576' or '1MiB'")


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
