"""Agent settings: defaults < file < AAMI_AGENT_<KEY> < flags, validated with clear errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aami.agent.config import (
    DEFAULT_CONFIG_PATH,
    AgentConfig,
    ConfigError,
    config_path,
    load_config,
    write_config_file,
)
from tests.agent.support import mode


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "server_url: http://aami:8080/\ntoken: t0k3n\n")
    config = load_config(path, environ={})
    assert config == AgentConfig(
        server_url="http://aami:8080",
        token="t0k3n",
        target_id=None,
        hostname=socket.gethostname().lower(),
        textfile_dir=Path("/var/lib/node_exporter/textfile"),
        cache_dir=Path("/var/lib/aami-agent"),
        interval_seconds=60,
        parallelism=8,
        max_output_bytes=1024 * 1024,
        request_timeout_seconds=10,
    )


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path / "agent.yaml",
        "server_url: http://file\ntoken: file-token\nparallelism: 2\nhostname: FILE-Host\n"
        "target_id: 42\n",
    )
    env = {
        "AAMI_AGENT_SERVER_URL": "http://env",
        "AAMI_AGENT_PARALLELISM": "3",
        "AAMI_AGENT_MAX_OUTPUT_BYTES": "4096",
        "AAMI_AGENT_CACHE_DIR": "",  # empty means unset
    }
    config = load_config(path, {"parallelism": 5, "textfile_dir": None}, environ=env)
    assert config.server_url == "http://env"
    assert config.token == "file-token"
    assert config.parallelism == 5
    assert config.max_output_bytes == 4096
    assert config.hostname == "file-host"
    assert config.target_id == "42"
    assert config.cache_dir == Path("/var/lib/aami-agent")


def test_config_path_from_flag_env_or_default(tmp_path: Path) -> None:
    assert config_path(None, {}) == DEFAULT_CONFIG_PATH
    assert config_path(None, {"AAMI_AGENT_CONFIG": str(tmp_path / "e.yaml")}) == tmp_path / "e.yaml"
    assert config_path(tmp_path / "f.yaml", {"AAMI_AGENT_CONFIG": "x"}) == tmp_path / "f.yaml"


def test_token_file(tmp_path: Path) -> None:
    token_file = write(tmp_path / "token", "from-file\n")
    config = load_config(
        None,
        {"server_url": "http://s", "token_file": token_file},
        environ={"AAMI_AGENT_CONFIG": str(tmp_path / "absent.yaml")},
    )
    assert config.token == "from-file"


def test_token_is_not_in_repr() -> None:
    assert "sekrit" not in repr(AgentConfig(server_url="http://s", token="sekrit"))


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("token: t\n", {}, "server_url is not set"),
        ("server_url: http://s\n", {}, "no node token"),
        ("server_url: ftp://s\ntoken: t\n", {}, "http"),
        ("server_url: http://s\ntoken: t\nparalelism: 3\n", {}, "unknown settings paralelism"),
        ("server_url: http://s\ntoken: t\nparallelism: 0\n", {}, "parallelism must be"),
        ("server_url: http://s\ntoken: t\nparallelism: many\n", {}, "parallelism must be"),
        ("server_url: http://s\ntoken: t\n", {"interval_seconds": -1.0}, "interval_seconds"),
        ("server_url: http://s\ntoken: t\nmax_output_bytes: 1.5\n", {}, "max_output_bytes"),
        ("server_url: http://s\ntoken: t\ntoken_file: /nope\n", {}, None),
        ("- a list\n", {}, "must be a mapping"),
        ("server_url: [unclosed\n", {}, "not valid YAML"),
        ("server_url: http://s\ntoken_file: /nonexistent/token\n", {}, "cannot read token_file"),
    ],
)
def test_invalid_config_is_refused(
    tmp_path: Path, text: str, overrides: dict[str, object], message: str | None
) -> None:
    path = write(tmp_path / "agent.yaml", text)
    if message is None:  # a token wins over a token_file that does not exist
        assert load_config(path, overrides, environ={}).token == "t"
        return
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides, environ={})


def test_an_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", {"server_url": "http://s", "token": "t"}, environ={})


def test_write_config_file_is_private_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "aami" / "agent.yaml"
    write_config_file(path, {"server_url": "http://s", "token": "t", "target_id": "tgt-1"})
    assert mode(path) == 0o600
    assert load_config(path, environ={}).target_id == "tgt-1"
    assert [p.name for p in path.parent.iterdir()] == ["agent.yaml"]


def test_tls_and_signing_settings(tmp_path: Path) -> None:
    ca = write(tmp_path / "ca.pem", "-----BEGIN CERTIFICATE-----\n")
    path = write(
        tmp_path / "agent.yaml",
        f"server_url: http://aami:8080\ntoken: t\nca_file: {ca}\ncache_dir: {tmp_path}/state\n",
    )
    config = load_config(path, environ={"AAMI_AGENT_INSECURE_HTTP": "true"})
    assert config.ca_file == ca
    assert config.insecure_http is True
    assert config.keys_path == tmp_path / "state" / "signing-keys.json"
    assert load_config(path, environ={"AAMI_AGENT_INSECURE_HTTP": "0"}).insecure_http is False
    assert load_config(path, environ={}).insecure_http is False  # off unless told
    moved = load_config(path, {"signing_keys_file": tmp_path / "keys.json"}, environ={})
    assert moved.keys_path == tmp_path / "keys.json"
    with pytest.raises(ConfigError, match="insecure_http must be true or false"):
        load_config(path, environ={"AAMI_AGENT_INSECURE_HTTP": "maybe"})
    with pytest.raises(ConfigError, match="ca_file /nope does not exist"):
        load_config(path, {"ca_file": "/nope"}, environ={})
