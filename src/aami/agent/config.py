"""The agent's settings: defaults < config file < ``AAMI_AGENT_<KEY>`` env < command-line flags."""

from __future__ import annotations

import math
import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "KEYS",
    "SIGNING_KEYS_FILE",
    "AgentConfig",
    "ConfigError",
    "build_config",
    "config_path",
    "load_config",
    "read_config_file",
    "write_config_file",
]

DEFAULT_CONFIG_PATH = Path("/etc/aami/agent.yaml")
CONFIG_ENV = "AAMI_AGENT_CONFIG"
ENV_PREFIX = "AAMI_AGENT_"
KEYS = (
    "server_url",
    "token",
    "token_file",
    "target_id",
    "hostname",
    "textfile_dir",
    "cache_dir",
    "interval_seconds",
    "parallelism",
    "max_output_bytes",
    "request_timeout_seconds",
    "ca_file",
    "insecure_http",
    "signing_keys_file",
)
SIGNING_KEYS_FILE = "signing-keys.json"


class ConfigError(Exception):
    """The agent's configuration is missing or invalid (exit code 2)."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything one agent run needs."""

    server_url: str
    token: str = field(repr=False)  # a secret: never in a repr, a log line or an error
    target_id: str | None = None
    hostname: str = field(default_factory=lambda: socket.gethostname().lower())
    textfile_dir: Path = Path("/var/lib/node_exporter/textfile")
    cache_dir: Path = Path("/var/lib/aami-agent")
    interval_seconds: float = 60.0
    parallelism: int = 8
    max_output_bytes: int = 1024 * 1024
    request_timeout_seconds: float = 10.0
    ca_file: Path | None = None  # None: the system's trusted CAs (or SSL_CERT_FILE)
    insecure_http: bool = False  # plain http:// only when told so: scripts run as root
    signing_keys_file: Path | None = None  # None: <cache_dir>/signing-keys.json

    @property
    def keys_path(self) -> Path:
        """Where the pinned signing keys are (written at registration, updated on rotation)."""
        return self.signing_keys_file or self.cache_dir / SIGNING_KEYS_FILE


def config_path(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """The config file to use: the flag, else ``AAMI_AGENT_CONFIG``, else the default."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def read_config_file(path: Path) -> dict[str, object]:
    """Read a config file (a YAML mapping of known keys); a missing file is empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must be a mapping of settings")
    unknown = sorted(str(key) for key in document if key not in KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}")
    return {str(key): value for key, value in document.items()}


def load_config(
    path: Path | None = None,
    overrides: Mapping[str, object | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentConfig:
    """Merge defaults, the config file, the environment and flags into a validated config."""
    env = os.environ if environ is None else environ
    resolved = config_path(path, env)
    if path is not None and not resolved.exists():
        raise ConfigError(f"config file {resolved} does not exist")
    values: dict[str, object] = {}
    values.update({k: v for k, v in read_config_file(resolved).items() if v is not None})
    for key in KEYS:
        if env.get(ENV_PREFIX + key.upper()):
            values[key] = env[ENV_PREFIX + key.upper()]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown settings {', '.join(unknown)}")
    return _build(values, resolved)


def write_config_file(path: Path, values: Mapping[str, object]) -> None:
    """Write a config file atomically with mode 0600 (it holds the node token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(dict(values), sort_keys=False, default_flow_style=False)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600, so the token is never readable by others.
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)  # rename(2) is atomic: never a half-written config
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def build_config(values: Mapping[str, object], source: Path) -> AgentConfig:
    """Validate settings (as a config file holds them, ``source`` named in errors)."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown settings {', '.join(unknown)}")
    return _build(values, source)


def _build(values: Mapping[str, object], source: Path) -> AgentConfig:
    """Validate merged values into an ``AgentConfig``."""
    hint = f"(set it in {source}, {ENV_PREFIX}<KEY> or a flag)"
    server_url = _text(values, "server_url")
    if not server_url:
        raise ConfigError(f"server_url is not set {hint}")
    parts = urlsplit(server_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"server_url must be an http(s) URL, got {server_url!r}")
    token = _text(values, "token")
    token_file = _text(values, "token_file")
    if not token and token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read token_file {token_file}: {exc.strerror}") from None
    if not token:
        raise ConfigError(f"no node token: set token or token_file {hint}")
    defaults = AgentConfig(server_url=server_url, token=token)
    ca_file = _text(values, "ca_file")
    if ca_file and not Path(ca_file).is_file():
        raise ConfigError(f"ca_file {ca_file} does not exist")
    signing_keys_file = _text(values, "signing_keys_file")
    return AgentConfig(
        server_url=server_url.rstrip("/"),
        token=token,
        target_id=_text(values, "target_id") or None,
        hostname=(_text(values, "hostname") or defaults.hostname).lower(),
        textfile_dir=Path(_text(values, "textfile_dir") or defaults.textfile_dir),
        cache_dir=Path(_text(values, "cache_dir") or defaults.cache_dir),
        interval_seconds=_float(values, "interval_seconds", defaults.interval_seconds),
        parallelism=_int(values, "parallelism", defaults.parallelism),
        max_output_bytes=_int(values, "max_output_bytes", defaults.max_output_bytes),
        request_timeout_seconds=_float(
            values, "request_timeout_seconds", defaults.request_timeout_seconds
        ),
        ca_file=Path(ca_file) if ca_file else None,
        insecure_http=_bool(values, "insecure_http"),
        signing_keys_file=Path(signing_keys_file) if signing_keys_file else None,
    )


def _text(values: Mapping[str, object], key: str) -> str:
    value = values.get(key)
    if value is None:
        return ""
    if isinstance(value, str | Path):
        return str(value).strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a YAML target_id or hostname that happens to look numeric
    raise ConfigError(f"{key} must be a string, got {value!r}")


def _bool(values: Mapping[str, object], key: str) -> bool:
    value = values.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _float(values: Mapping[str, object], key: str, default: float) -> float:
    value = values.get(key)
    if value is None:
        return default
    number: float | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{key} must be a positive number, got {value!r}")
    return number


def _int(values: Mapping[str, object], key: str, default: int) -> int:
    value = values.get(key)
    if value is None:
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    if number is None or number <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    return number
