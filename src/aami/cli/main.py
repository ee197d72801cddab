"""The ``aami`` command."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from aami import __version__
from aami.agent.cli import agent_app
from aami.cli import operations, registrations, resources
from aami.cli.client import EXIT_CODES_HELP
from aami.cli.configcode import register as register_configcode
from aami.cli.stack import stack_app

app = typer.Typer(
    name="aami",
    help="AAMI: alerting configuration for AI-accelerator clusters.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(stack_app, name="stack")
app.add_typer(agent_app, name="agent")
register_configcode(app)
resources.register(app)
operations.register(app)
registrations.register(app)


def _settings() -> object:
    from aami.common.messages import validation_message
    from aami.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        messages = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {validation_message(e)}" for e in exc.errors()
        )
        typer.echo(f"error: invalid settings: {messages}", err=True)
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def server(
    host: Annotated[str, typer.Option(envvar="AAMI_HOST", help="address to listen on")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="AAMI_PORT", help="port to listen on")] = 8080,
    dev: Annotated[
        bool, typer.Option("--dev", help="development: generate and print an admin token")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM certificate chain: serve HTTPS (env AAMI_TLS_CERT_FILE)", show_default=False
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="PEM private key of --tls-cert (env AAMI_TLS_KEY_FILE)"),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            envvar="AAMI_WORKERS", min=0, help="server processes; 0: one per core (see docs)"
        ),
    ] = 1,
) -> None:
    """Run the API server (migrates the database first).

    With a certificate and key it serves HTTPS only; SIGHUP (or a changed file, within
    30 s) loads a renewed certificate without a restart. With --workers N, N processes
    serve the same address (a supervisor restarts any that dies).
    """
    import ssl

    from aami.app import create_app
    from aami.auth.tokens import generate_token
    from aami.config import Settings
    from aami.security.tls import ServerTls
    from aami.serving import Limits, build_server

    settings = _settings()
    assert isinstance(settings, Settings)
    if not settings.admin_token:
        if not dev:
            typer.echo(
                "error: AAMI_ADMIN_TOKEN is not set. Set it to a secret of 16+ characters, "
                "or run `aami server --dev` to generate one for local use.",
                err=True,
            )
            raise typer.Exit(2)
        settings = settings.model_copy(update={"admin_token": generate_token(), "dev": True})
        typer.echo(f"development admin token: {settings.admin_token}", err=True)
    cert_file = tls_cert or settings.tls_cert_file
    key_file = tls_key or settings.tls_key_file
    if (cert_file is None) != (key_file is None):
        typer.echo("error: give both --tls-cert and --tls-key (or neither)", err=True)
        raise typer.Exit(2)
    tls = None
    if cert_file is not None and key_file is not None:
        try:
            tls = ServerTls(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            typer.echo(f"error: cannot load the TLS certificate {cert_file}: {exc}", err=True)
            raise typer.Exit(2) from None
    settings = settings.model_copy(update={"tls_cert_file": cert_file, "tls_key_file": key_file})
    try:
        application = create_app(settings)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    limits = Limits(
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
        max_header_bytes=settings.max_header_bytes,
        keep_alive_timeout=settings.keep_alive_timeout,
    )
    if workers != 1:
        from aami.workers import run_workers

        del application  # each worker builds its own
        code = run_workers(
            settings, host=host, port=port, log_level=log_level, limits=limits, workers=workers
        )
        raise typer.Exit(code)
    instance = build_server(
        application, host=host, port=port, log_level=log_level, limits=limits, tls=tls
    )
    # Long-lived objects (modules, mappers, routes) move out of the collector's way; without
    # this, rendering a fleet-sized document spends more time in gen-2 collections than in SQL.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        instance.run()
    except KeyboardInterrupt:
        pass
    if not instance.started:
        raise typer.Exit(3)  # uvicorn's startup failure code: the port, the database, ...


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Apply database migrations."""
    from aami.config import Settings
    from aami.db.migrate import upgrade
    from aami.db.session import make_engine

    settings = _settings()
    assert isinstance(settings, Settings)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
    typer.echo(f"database at {revision}")


def main() -> None:  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
