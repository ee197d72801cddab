"""The CLI's side of the REST API: where the server is, the token, one call, the output.

The CLI talks to the server over HTTP only, like kubectl: nothing here imports the
server's services or models. Every failure becomes one line on stderr and one of the
exit codes of ``ExitCode`` (``call`` is the one place that maps HTTP answers to them).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
import yaml

DEFAULT_SERVER = "http://127.0.0.1:8080"
DEFAULT_STATE_DIR = Path(".aami-stack")
TOKEN_FILE = "admin-token"  # in a stack's state dir
TOKEN_ENV = ("AAMI_TOKEN", "AAMI_ADMIN_TOKEN")


class ExitCode(IntEnum):
    """What every ``aami`` command exits with (docs/cli.md, ``aami --help``)."""

    OK = 0
    FAILURE = 1  # anything not below: a publish that failed, an answer that is not JSON
    USAGE = 2  # bad flags or input files; the server said 400 or 422
    NOT_DONE = 3  # the command's own "not yet": diff --exit-code found differences, ...
    NOT_FOUND = 4  # 404
    UNAUTHORIZED = 5  # 401 or 403: no, a wrong, or a too weak token
    UNREACHABLE = 6  # no connection, a timeout, TLS refused; 5xx, or 429: retry later
    CONFLICT = 7  # 409: it clashes with what exists


EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 failure, 2 usage or invalid input (400, 422), 3 not done "
    "(diff --exit-code: the file differs; agent register --wait: still waiting), "
    "4 not found (404), 5 unauthorized or forbidden (401, 403), 6 server unreachable "
    "or failing (connection, timeout, TLS, 5xx, 429), 7 conflict (409). See docs/cli.md."
)


def exit_code_for(status: int) -> ExitCode:
    """The exit code of an HTTP error answer."""
    if status in (401, 403):
        return ExitCode.UNAUTHORIZED
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 409:
        return ExitCode.CONFLICT
    if status >= 500 or status == 429:
        return ExitCode.UNREACHABLE
    if status in (400, 422):
        return ExitCode.USAGE
    return ExitCode.FAILURE


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="AAMI_SERVER",
        help="AAMI server URL (default: config file, else http://127.0.0.1:8080)",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help=(
            "API token (default: env AAMI_TOKEN or AAMI_ADMIN_TOKEN, else --state-dir's "
            "admin-token, else the config file, else ./.aami-stack/admin-token)"
        ),
        show_default=False,
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="AAMI_STATE_DIR",
        help="a local stack's state dir: use its admin-token (when no --token/AAMI_TOKEN)",
        show_default=False,
    ),
]
OutputOption = Annotated[
    Output, typer.Option("-o", "--output", help="table, json or yaml", case_sensitive=False)
]


def fail(message: str, code: int = ExitCode.FAILURE) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aami" / "config.yaml"


def _config_file() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read {path}: {exc}".splitlines()[0], 2)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        fail(f"{path}: expected a mapping with server: and token:", 2)
    return loaded


@dataclass(frozen=True)
class Connection:
    server: str
    token: str = field(repr=False)
    token_source: str = "--token"  # where the token came from: said on 401/403, never it

    def url(self, path: str) -> str:
        return f"{self.server.rstrip('/')}/{path.lstrip('/')}"


def _token_file(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        fail(f"cannot read the token in {path}: {exc.strerror or exc}", ExitCode.USAGE)
    if not token:
        fail(f"{path.resolve()} is empty: no token in it", ExitCode.USAGE)
    return token


def _stack_token(state_dir: Path) -> tuple[str, str]:
    """The admin token of the stack whose state dir was named (--state-dir, AAMI_STATE_DIR)."""
    path = state_dir / TOKEN_FILE
    if not path.is_file():
        fail(
            f"no {TOKEN_FILE} in {state_dir.resolve()}: is it the state dir of `aami stack up`?",
            ExitCode.USAGE,
        )
    return _token_file(path), str(path.resolve())


def resolve_token(
    token: str | None, state_dir: Path | None, config: Mapping[str, Any]
) -> tuple[str, str] | None:
    """The token and where it came from, first found: --token, AAMI_TOKEN, AAMI_ADMIN_TOKEN,
    the state dir's admin-token (--state-dir, AAMI_STATE_DIR), the config file's token:,
    ./.aami-stack/admin-token."""
    if token:
        return token, "--token"
    for name in TOKEN_ENV:
        if os.environ.get(name):
            return os.environ[name], name
    if state_dir is not None:
        return _stack_token(state_dir)
    if config.get("token"):
        return str(config["token"]), str(config_path())
    default = DEFAULT_STATE_DIR / TOKEN_FILE
    if default.is_file():
        return _token_file(default), str(default.resolve())
    return None


def connect(server: str | None, token: str | None, state_dir: Path | None = None) -> Connection:
    """Flags and environment first, then ``~/.config/aami/config.yaml``, then the local
    stack (http://127.0.0.1:8080 and ``.aami-stack/admin-token``); ``resolve_token`` has
    the token's order."""
    has_token = bool(token or any(os.environ.get(name) for name in TOKEN_ENV))
    config = _config_file() if not (server and (has_token or state_dir)) else {}
    resolved_server = server or str(config.get("server") or "") or DEFAULT_SERVER
    resolved = resolve_token(token, state_dir, config)
    if resolved is None:
        fail(
            "no token: pass --token or --state-dir, set AAMI_TOKEN or AAMI_STATE_DIR, put "
            f"token: in {config_path()} or run the local stack",
            ExitCode.USAGE,
        )
    if not resolved_server.startswith(("http://", "https://")):
        fail(f"server must be an http:// or https:// URL, not {resolved_server!r}", ExitCode.USAGE)
    return Connection(resolved_server, resolved[0], resolved[1])


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else "no detail"
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        if isinstance(detail, list):  # FastAPI's own validation shape
            return "; ".join(
                f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', item)}"
                if isinstance(item, dict)
                else str(item)
                for item in detail
            )
        return str(detail)
    return json.dumps(body)


def call(
    connection: Connection,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    timeout: float = 30,
) -> Any:
    """Call the API; return the decoded JSON (None for an empty answer). Any failure
    exits with one line on stderr."""
    url = connection.url(path)
    try:
        response = httpx.request(
            method,
            url,
            params={k: v for k, v in (params or {}).items() if v is not None},
            json=body,
            headers={"Authorization": f"Bearer {connection.token}"},
            timeout=timeout,
        )
    except httpx.InvalidURL as exc:
        fail(f"invalid server URL {connection.server}: {exc}", ExitCode.USAGE)
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"cannot reach {connection.server}: {reason}", ExitCode.UNREACHABLE)
    if response.status_code >= 400:
        fail_for(response, connection)
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        fail(f"{response.status_code}: the server's answer is not JSON")


def fail_for(response: httpx.Response, connection: Connection) -> NoReturn:
    """An HTTP error answer as one line and its exit code; 401 and 403 say where the token
    came from (never the token)."""
    status = response.status_code
    message = f"{status} {response.reason_phrase}: {_detail(response)}".replace(
        connection.token, "<token>"
    )
    if status in (401, 403):
        message += f" (token from {connection.token_source})"
    fail(message, exit_code_for(status))


# --- output ---------------------------------------------------------------------------

Cell = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Column:
    header: str
    value: str | Cell

    def get(self, row: Mapping[str, Any]) -> str:
        raw = self.value(row) if callable(self.value) else row.get(self.value)
        return cell(raw)


def cell(value: Any) -> str:
    """A value as table text: lists joined, mappings as key=value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    return str(value)


def _console() -> Any:
    from rich.console import Console

    # Piped output (scripts, tests) is not cut to a terminal's width.
    if not sys.stdout.isatty():
        columns = os.environ.get("COLUMNS", "")
        return Console(width=max(200, int(columns) if columns.isdigit() else 0))
    return Console()


def dump(data: Any, output: Output) -> None:
    """JSON or YAML on stdout."""
    if output is Output.yaml:
        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n"))
    else:
        typer.echo(json.dumps(data, indent=2, default=str))


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], empty: str) -> None:
    from rich.table import Table

    if not rows:
        typer.echo(empty)
        return
    table = Table(*(c.header for c in columns))
    for row in rows:
        table.add_row(*(c.get(row) for c in columns))
    _console().print(table)


def print_object(obj: Mapping[str, Any]) -> None:
    """One object as a two-column table of its fields."""
    from rich.table import Table

    table = Table("field", "value", show_header=False)
    for key, value in obj.items():
        text = value if isinstance(value, str) else cell(value)
        if (
            isinstance(value, Mapping | list)
            and value
            and any(
                isinstance(v, Mapping | list)
                for v in (value.values() if isinstance(value, Mapping) else value)
            )
        ):
            text = yaml.safe_dump(value, sort_keys=False).rstrip("\n")
        table.add_row(key, text)
    _console().print(table)


def emit(
    data: Any,
    output: Output,
    *,
    columns: Sequence[Column] | None = None,
    rows: Sequence[Mapping[str, Any]] | None = None,
    empty: str = "nothing found",
) -> None:
    """Print an answer: ``data`` as-is for json/yaml; for a table, ``rows`` (default: the
    data if it is a list) under ``columns``, or a single object field by field."""
    if output is not Output.table:
        dump(data, output)
        return
    if columns is not None:
        print_table(rows if rows is not None else data, columns, empty)
    elif isinstance(data, Mapping):
        print_object(data)
    else:
        dump(data, Output.yaml)
