"""``aami agent``: register this node, run its checks once (timer/cron) or in a loop, pin the
server's check-signing keys."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn
from urllib.parse import urlsplit

import typer

from aami.agent.client import (
    BadResponse,
    InsecureUrl,
    PendingRegistration,
    Registration,
    ServerError,
    ServerRejected,
    ServerUnreachable,
    fetch_signing_keys,
    poll_registration,
    register,
)
from aami.agent.config import (
    SIGNING_KEYS_FILE,
    AgentConfig,
    ConfigError,
    build_config,
    config_path,
    load_config,
    read_config_file,
    write_config_file,
)
from aami.agent.pending import forget_pending, load_pending, pending_path, save_pending
from aami.agent.runner import AgentBusy, run_forever, run_once
from aami.agent.signing import KeysError, OfferedKey, load_keys, save_keys

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
CaFileOpt = Annotated[
    Path | None,
    typer.Option(help="CA certificate(s) the server's must chain to (default: the system's)"),
]
InsecureHttpOpt = Annotated[
    bool | None,
    typer.Option(
        "--insecure-http",
        help="allow a plain http:// server (the token and scripts travel unprotected)",
        show_default=False,
    ),
]
SigningKeysFileOpt = Annotated[
    Path | None,
    typer.Option(
        help=f"pinned check-signing keys (default: <cache-dir>/{SIGNING_KEYS_FILE})",
        show_default=False,
    ),
]


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
    ca_file: CaFileOpt = None,
    insecure_http: InsecureHttpOpt = None,
    signing_keys_file: SigningKeysFileOpt = None,
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
    ca_file: CaFileOpt = None,
    insecure_http: InsecureHttpOpt = None,
    signing_keys_file: SigningKeysFileOpt = None,
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
            help="AAMI server URL (https://)",
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
    ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="AAMI_AGENT_CA_FILE",
            help="CA certificate(s) the server's must chain to; kept in the config",
        ),
    ] = None,
    insecure_http: InsecureHttpOpt = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="agent state directory; kept in the config")
    ] = None,
    signing_keys_file: SigningKeysFileOpt = None,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="seconds to wait for an admin's approval when the server queues the "
            "registration (0: do not wait); run the command again to keep waiting",
        ),
    ] = 600.0,
) -> None:
    """Register this node with a bootstrap token, write the agent's config file and pin the
    server's check-signing keys.

    Re-registering sends the node token of the existing config. A registration the server
    queues (an existing hostname without its node token, or an address other than the one
    the node connects from) waits for an admin's approval: this command polls for up to
    --wait seconds and exits 3 if it is still waiting (run it again to resume).
    """
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
    flags = {
        "ca_file": str(ca_file) if ca_file else None,
        "insecure_http": True if insecure_http else None,
        "cache_dir": str(cache_dir) if cache_dir else None,
        "signing_keys_file": str(signing_keys_file) if signing_keys_file else None,
    }
    settings = {**existing, **{k: v for k, v in flags.items() if v is not None}}
    try:
        # What later runs will use: the TLS settings and where the keys are pinned.
        planned = build_config({**settings, "server_url": server, "token": "-"}, path)
    except ConfigError as exc:
        _fail(str(exc), 2)
    _check_writable(path)
    state = pending_path(path)
    resumed = load_pending(state, server_url=server, hostname=host)
    # The node token of this node's config proves it is the same node re-registering.
    same_server = str(existing.get("server_url") or "").rstrip("/") == server.rstrip("/")
    current = existing.get("token") if same_server else None
    try:
        registration = resumed or register(
            server,
            bootstrap_token,
            hostname=host,
            ip_address=address,
            labels=labels,
            node_exporter_port=node_exporter_port,
            node_token=current if isinstance(current, str) else None,
            timeout=request_timeout_seconds,
            ca_file=planned.ca_file,
            insecure_http=planned.insecure_http,
        )
    except InsecureUrl as exc:
        _fail(str(exc), 2)
    except ServerRejected as exc:
        _fail(f"registration refused ({exc.status_code}): {exc.detail}", 1)
    except BadResponse as exc:
        _fail(f"unexpected answer from {server}: {exc}", 1)
    except ServerError as exc:
        _fail(str(exc), 1)
    if isinstance(registration, PendingRegistration):
        registration = _await_approval(
            server, registration, planned, wait=wait, state=state, resumed=resumed is not None
        )
    values = {
        **settings,
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
    _pin(planned, registration.node_token)


@agent_app.command("pin-keys")
def pin_keys(
    config: ConfigOpt = None,
    server_url: ServerUrlOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    cache_dir: CacheDirOpt = None,
    request_timeout_seconds: RequestTimeoutOpt = None,
    ca_file: CaFileOpt = None,
    insecure_http: InsecureHttpOpt = None,
    signing_keys_file: SigningKeysFileOpt = None,
) -> None:
    """Trust the keys the server signs checks with now, replacing the pinned ones.

    Registration does this; run it for a node configured without `register`, or one that
    missed a key rotation (its checks fail with reason unknown_signing_key). It trusts
    whoever answers at server_url, so run it only over TLS you trust: compare the key ids
    it prints with the server's (GET /api/v1/checks/signing-keys).
    """
    agent_config = _load(config, locals())
    _pin(agent_config, agent_config.token)


def _await_approval(
    server: str,
    pending: PendingRegistration,
    config: AgentConfig,
    *,
    wait: float,
    state: Path,
    resumed: bool,
) -> Registration:
    """Poll for up to ``wait`` seconds until an admin approves the registration; exit 1 if
    it is rejected or expires, 3 if it is still waiting (``state`` keeps it for next time)."""
    reasons = "; ".join(pending.reasons) or "the server gave no reason"
    save_pending(state, server, pending)
    typer.echo(
        f"registration {pending.registration_id} of {pending.hostname} "
        f"{'still waits' if resumed else 'waits'} for an admin's approval ({reasons}).\n"
        f"An admin approves it with `aami registrations approve {pending.registration_id}` "
        "or on the web UI's Registrations page; "
        f"waiting up to {wait:g}s, polling every {pending.poll_interval:g}s",
        err=True,
    )
    deadline = time.monotonic() + wait
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _fail(
                f"registration {pending.registration_id} is still waiting for an admin's "
                f"approval after {wait:g}s; run this command again to keep waiting (it "
                f"expires at {pending.expires_at or 'its expiry'})",
                3,
            )
        time.sleep(min(pending.poll_interval, remaining))
        try:
            approved = poll_registration(
                server,
                pending,
                timeout=config.request_timeout_seconds,
                ca_file=config.ca_file,
                insecure_http=config.insecure_http,
            )
        except ServerUnreachable as exc:
            log.warning("%s; polling again", exc)
            continue
        except ServerRejected as exc:
            forget_pending(state)
            _fail(
                f"registration {pending.registration_id} not approved ({exc.status_code}): "
                f"{exc.detail}",
                1,
            )
        except ServerError as exc:
            _fail(str(exc), 1)
        if approved is not None:
            forget_pending(state)
            return approved


def _pin(config: AgentConfig, token: str) -> None:
    """Fetch the server's signing keys with ``token`` and pin them; exit 1 on failure."""
    try:
        offered: list[OfferedKey] = fetch_signing_keys(
            config.server_url,
            token,
            timeout=config.request_timeout_seconds,
            ca_file=config.ca_file,
            insecure_http=config.insecure_http,
        )
        if not offered:
            raise BadResponse("the server offers no signing key")
        previous = load_keys(config.keys_path) if config.keys_path.exists() else {}
        save_keys(config.keys_path, {key.key_id: key.public_key for key in offered})
    except (ServerError, KeysError, OSError, ValueError) as exc:
        _fail(
            f"cannot pin the server's check-signing keys ({exc}); the agent refuses every "
            "check until `aami agent pin-keys` succeeds",
            1,
        )
    pinned = ", ".join(key.key_id for key in offered)
    if previous and set(previous) != {key.key_id for key in offered}:
        typer.echo(f"signing keys: replaced {', '.join(previous)} with {pinned}")
    typer.echo(f"pinned check-signing keys {pinned} in {config.keys_path}")


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
