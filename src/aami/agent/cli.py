"""``aami agent``: register this node, run its checks once (timer/cron) or in a loop."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn
from urllib.parse import urlsplit

import typer

from aami.agent.client import BadResponse, ServerError, ServerRejected, register
from aami.agent.config import (
    AgentConfig,
    ConfigError,
    config_path,
    load_config,
    read_config_file,
    write_config_file,
)
from aami.agent.runner import AgentBusy, run_forever, run_once

__all__ = ["agent_app"]

log = logging.getLogger("aami.agent")

agent_app = typer.Typer(
    name="agent",
    help=(
        "The node agent: run the checks the AAMI server assigns to this node and write "
        "their metrics for node_exporter's textfile collector. Every setting comes from "
        "the config file, an AAMI_AGENT_<KEY> environment variable or a flag (flags win)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="config file (env AAMI_AGENT_CONFIG; default /etc/aami/agent.yaml)",
        show_default=False,
    ),
]
ServerUrlOpt = Annotated[
    str | None, typer.Option("--server-url", "--server", help="AAMI server URL", show_default=False)
]
TokenOpt = Annotated[
    str | None,
    typer.Option(help="node token (visible in ps: prefer the config or --token-file)"),
]
TokenFileOpt = Annotated[Path | None, typer.Option(help="file holding the node token")]
TargetIdOpt = Annotated[str | None, typer.Option(help="target id (else found by hostname)")]
HostnameOpt = Annotated[
    str | None, typer.Option(help="hostname (default: this host's, lowercased)")
]
TextfileDirOpt = Annotated[
    Path | None, typer.Option(help="node_exporter textfile directory", show_default=False)
]
CacheDirOpt = Annotated[Path | None, typer.Option(help="agent state directory")]
IntervalOpt = Annotated[float | None, typer.Option(help="seconds between runs (`run`)")]
ParallelismOpt = Annotated[int | None, typer.Option(help="checks run at once")]
MaxOutputOpt = Annotated[int | None, typer.Option(help="output cap per check, bytes")]
RequestTimeoutOpt = Annotated[float | None, typer.Option(help="HTTP timeout, seconds")]


@agent_app.command()
def once(
    config: ConfigOpt = None,
    server_url: ServerUrlOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    target_id: TargetIdOpt = None,
    hostname: HostnameOpt = None,
    textfile_dir: TextfileDirOpt = None,
    cache_dir: CacheDirOpt = None,
    interval_seconds: IntervalOpt = None,
    parallelism: ParallelismOpt = None,
    max_output_bytes: MaxOutputOpt = None,
    request_timeout_seconds: RequestTimeoutOpt = None,
) -> None:
    """Fetch the checks, run them once, write the textfiles (for a systemd timer or cron).

    Exit code 0 if every check succeeded, 1 if a check failed or no check list was
    available, 2 for bad configuration.
    """
    with _logging():
        agent_config = _load(config, locals())  # the parameters are the config keys
        try:
            report = run_once(agent_config)
        except (AgentBusy, OSError) as exc:
            log.error("run failed: %s", exc)
            raise typer.Exit(1) from None
    raise typer.Exit(report.exit_code)


@agent_app.command()
def run(
    config: ConfigOpt = None,
    server_url: ServerUrlOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    target_id: TargetIdOpt = None,
    hostname: HostnameOpt = None,
    textfile_dir: TextfileDirOpt = None,
    cache_dir: CacheDirOpt = None,
    interval_seconds: IntervalOpt = None,
    parallelism: ParallelismOpt = None,
    max_output_bytes: MaxOutputOpt = None,
    request_timeout_seconds: RequestTimeoutOpt = None,
) -> None:
    """Run the checks every interval_seconds until SIGTERM or SIGINT."""
    with _logging():
        agent_config = _load(config, locals())
        stop = threading.Event()

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("%s: stopping after the current run", signal.Signals(signum).name)
            stop.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            log.info(
                "agent started: %s every %gs",
                agent_config.server_url,
                agent_config.interval_seconds,
            )
            run_forever(agent_config, stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@agent_app.command("register")
def register_command(
    server: Annotated[
        str,
        typer.Option(
            "--server",
            "--server-url",
            envvar="AAMI_AGENT_SERVER_URL",
            help="AAMI server URL",
            show_default=False,
        ),
    ],
    bootstrap_token: Annotated[
        str,
        typer.Option(
            envvar="AAMI_AGENT_BOOTSTRAP_TOKEN", help="bootstrap token", show_default=False
        ),
    ],
    hostname: HostnameOpt = None,
    ip_address: Annotated[
        str | None,
        typer.Option(help="address Prometheus scrapes (default: the one routing to the server)"),
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="target label key=value (repeatable)")
    ] = None,
    node_exporter_port: Annotated[int, typer.Option(help="node_exporter port")] = 9100,
    config: ConfigOpt = None,
    request_timeout_seconds: Annotated[float, typer.Option(help="HTTP timeout, seconds")] = 10.0,
) -> None:
    """Register this node with a bootstrap token and write the agent's config file."""
    path = config_path(config)
    labels = _labels(label or [])
    host = (hostname or socket.gethostname()).lower()
    address = ip_address or _route_address(server)
    try:
        ipaddress.ip_address(address)
        existing = read_config_file(path)
    except ValueError:
        _fail(f"--ip-address {address!r} is not an IP address", 2)
    except ConfigError as exc:
        _fail(str(exc), 2)
    _check_writable(path)
    try:
        registration = register(
            server,
            bootstrap_token,
            hostname=host,
            ip_address=address,
            labels=labels,
            node_exporter_port=node_exporter_port,
            timeout=request_timeout_seconds,
        )
    except ServerRejected as exc:
        _fail(f"registration refused ({exc.status_code}): {exc.detail}", 1)
    except BadResponse as exc:
        _fail(f"unexpected answer from {server}: {exc}", 1)
    except ServerError as exc:
        _fail(str(exc), 1)
    values = {
        **existing,
        "server_url": server.rstrip("/"),
        "token": registration.node_token,
        "target_id": registration.target_id,
        "hostname": registration.hostname,
    }
    try:
        write_config_file(path, values)
    except OSError as exc:
        _fail(f"registered as {registration.target_id} but cannot write {path}: {exc}", 1)
    groups = ", ".join(registration.group_ids) or "none"
    typer.echo(f"registered {registration.hostname} as target {registration.target_id}")
    typer.echo(f"groups: {groups}")
    typer.echo(f"config written to {path}")


def _load(path: Path | None, options: dict[str, object]) -> AgentConfig:
    """Load the config from file, environment and the command's flags; exit 2 if invalid."""
    overrides = {key: value for key, value in options.items() if key != "config"}
    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        _fail(str(exc), 2)


def _labels(pairs: list[str]) -> dict[str, str]:
    """Parse ``--label key=value`` options."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            _fail(f"--label {pair!r} must be key=value", 2)
        labels[key.strip()] = value
    return labels


def _route_address(server: str) -> str:
    """The local address this host uses to reach the server (a UDP connect sends nothing)."""
    parts = urlsplit(server)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        family, _, _, _, address = socket.getaddrinfo(
            parts.hostname or "", port, type=socket.SOCK_DGRAM
        )[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)
            return str(probe.getsockname()[0])
    except (OSError, ValueError, IndexError):
        _fail(f"cannot work out this host's address towards {server}; pass --ip-address", 2)


def _check_writable(path: Path) -> None:
    """Fail before registering if the config cannot be written (the token would be lost)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create {path.parent}: {exc.strerror}", 1)
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        _fail(f"cannot write {path}: permission denied", 1)


def _fail(message: str, code: int) -> NoReturn:
    """Print one error line and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _logging() -> Iterator[None]:
    """Send the agent's log lines to stderr for the duration of a command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s aami-agent %(levelname)s %(message)s"))
    previous = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)
