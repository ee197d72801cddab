"""``aami rules sync``: run beside a Prometheus or vmalert on another host and keep its
rules equal to what AAMI wants for that evaluator (``aami.rulesync``)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer

from aami.rulesync.client import AamiClient, valid_evaluator_name
from aami.rulesync.evaluator import DEFAULT_URLS, Evaluator, make_evaluator
from aami.rulesync.files import RulesDirectory
from aami.rulesync.loop import Stopper, StopRequested, Sync, SyncSettings

__all__ = ["rules_sync"]

log = logging.getLogger("aami.rulesync")

TOKEN_ENV = "AAMI_EVALUATOR_TOKEN"
DEFAULT_RULES_DIR = Path("/etc/prometheus/rules/generated")


class Kind(StrEnum):
    prometheus = "prometheus"
    vmalert = "vmalert"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _read_token(path: Path) -> str:
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"{path} is empty")
    return text


def _token_source(token_file: Path | None) -> Callable[[], str]:
    """The token, read again for every request when it comes from a file (a rotated token
    is used without a restart; an unreadable file keeps the last one)."""
    if token_file is None:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise _fail(
                f"no token: give --token-file (or AAMI_EVALUATOR_TOKEN_FILE) or {TOKEN_ENV}"
            )
        return lambda: token
    try:
        last = [_read_token(token_file)]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _fail(f"--token-file: {exc}") from None

    def current() -> str:
        try:
            last[0] = _read_token(token_file)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            log.warning("token file unreadable, using the last token read: %s", exc)
        return last[0]

    return current


def _warn_plain_http(server: str) -> None:
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(f"--server {server!r}: an http:// or https:// URL")
    if parts.scheme == "https":
        return
    try:
        loopback = ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        loopback = parts.hostname == "localhost"
    if not loopback:
        log.warning("%s is plain HTTP: the evaluator token travels unencrypted", server)


@contextlib.contextmanager
def _logging() -> Iterator[None]:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s aami-rules-sync %(levelname)s %(message)s"))
    previous = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)


@contextlib.contextmanager
def _signals(stopper: Stopper) -> Iterator[None]:
    previous = {sig: signal.signal(sig, stopper.request) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def rules_sync(
    server: Annotated[
        str,
        typer.Option("--server", envvar="AAMI_SERVER", help="AAMI server URL", show_default=False),
    ],
    evaluator: Annotated[
        str,
        typer.Option(
            "--evaluator",
            envvar="AAMI_EVALUATOR",
            metavar="NAME",
            help="this evaluator's name in AAMI",
            show_default=False,
        ),
    ],
    token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="AAMI_EVALUATOR_TOKEN_FILE",
            help=f"file holding the evaluator's token (else env {TOKEN_ENV})",
            show_default=False,
        ),
    ] = None,
    rules_dir: Annotated[
        Path,
        typer.Option(
            envvar="AAMI_RULES_DIR",
            help="the directory the evaluator loads *.yml rule files from; only global.yml "
            "and group-*.yml in it are ours",
        ),
    ] = DEFAULT_RULES_DIR,
    evaluator_url: Annotated[
        str | None,
        typer.Option(
            envvar="AAMI_EVALUATOR_URL",
            help=f"the local evaluator (default {DEFAULT_URLS['prometheus']} for prometheus, "
            f"{DEFAULT_URLS['vmalert']} for vmalert)",
            show_default=False,
        ),
    ] = None,
    kind: Annotated[
        Kind | None,
        typer.Option(
            envvar="AAMI_EVALUATOR_KIND",
            help="the evaluator's kind (default: what AAMI's rule set says)",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(min=0, max=60, help="seconds AAMI may hold a request until the set changes"),
    ] = 30,
    once: Annotated[
        bool, typer.Option("--once", help="one pass, then exit (non-zero if not in sync)")
    ] = False,
    confirm_timeout: Annotated[
        float,
        typer.Option(min=0, help="seconds to wait for the evaluator to show the new rules"),
    ] = 30,
    promtool: Annotated[
        str, typer.Option(envvar="AAMI_PROMTOOL", help="promtool, to validate for Prometheus")
    ] = "promtool",
    vmalert: Annotated[
        str, typer.Option(envvar="AAMI_VMALERT", help="vmalert, to validate for vmalert")
    ] = "vmalert",
    ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="AAMI_CA_FILE",
            help="CA certificate(s) to verify AAMI's https certificate with",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Keep the local Prometheus or vmalert running the rules AAMI wants for this evaluator:
    fetch them (long-poll), validate, write atomically, reload, confirm, report."""
    if not valid_evaluator_name(evaluator):
        raise _fail(f"--evaluator {evaluator!r}: lowercase letters, digits and '-' (1-63)")
    if ca_file is not None and not ca_file.is_file():
        raise _fail(f"--ca-file {ca_file}: no such file")
    token = _token_source(token_file)
    binaries = {"prometheus": promtool, "vmalert": vmalert}
    stopper = Stopper()
    with (
        _logging(),
        httpx.Client(timeout=10) as local_http,
        AamiClient(server, evaluator, token, ca_file=ca_file) as client,
    ):
        _warn_plain_http(server)

        def evaluators(name: str) -> Evaluator:
            return make_evaluator(name, evaluator_url, binaries.get(name), local_http)

        settings = SyncSettings(
            wait=wait, confirm_timeout=confirm_timeout, kind=kind.value if kind else None
        )
        try:
            sync = Sync(client, RulesDirectory(rules_dir), evaluators, settings, stopper=stopper)
        except OSError as exc:
            raise _fail(f"--rules-dir {rules_dir}: {exc}") from None
        if once:
            result = sync.run_once()
            if not result.ok:
                raise typer.Exit(1)
            installed = sync.installed
            typer.echo(f"in sync: revision {installed.revision if installed else '-'}")
            return
        log.info("syncing evaluator %s from %s into %s", evaluator, client.server, rules_dir)
        try:
            with _signals(stopper):
                sync.run_forever(stopper.event)
        except StopRequested:
            pass
        log.info("stopped")
