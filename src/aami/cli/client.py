"""The CLI's side of the REST API: where the server is, the token, one call, the output.

The CLI talks to the server over HTTP only, like kubectl: nothing here imports the
server's services or models. Every failure becomes one line on stderr and an exit code:
1 for a server that cannot be reached or answers 4xx/5xx, 2 for bad usage.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
import yaml

DEFAULT_SERVER = "http://127.0.0.1:8080"
STACK_TOKEN_FILE = Path(".aami-stack/admin-token")


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
        envvar="AAMI_TOKEN",
        help="API token (default: config file, else the local stack's)",
        show_default=False,
    ),
]
OutputOption = Annotated[
    Output, typer.Option("-o", "--output", help="table, json or yaml", case_sensitive=False)
]


def fail(message: str, code: int = 1) -> NoReturn:
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
    token: str

    def url(self, path: str) -> str:
        return f"{self.server.rstrip('/')}/{path.lstrip('/')}"


def connect(server: str | None, token: str | None) -> Connection:
    """Flags and environment first, then ``~/.config/aami/config.yaml``, then the local
    stack (http://127.0.0.1:8080 and ``.aami-stack/admin-token``)."""
    config = _config_file() if not (server and token) else {}
    resolved_server = server or str(config.get("server") or "") or DEFAULT_SERVER
    resolved_token = token or str(config.get("token") or "")
    if not resolved_token and STACK_TOKEN_FILE.is_file():
        try:
            resolved_token = STACK_TOKEN_FILE.read_text().strip()
        except OSError as exc:
            fail(f"cannot read {STACK_TOKEN_FILE}: {exc}", 2)
    if not resolved_token:
        fail(
            f"no token: pass --token, set AAMI_TOKEN, put token: in {config_path()} "
            "or run the local stack",
            2,
        )
    if not resolved_server.startswith(("http://", "https://")):
        fail(f"server must be an http:// or https:// URL, not {resolved_server!r}", 2)
    return Connection(resolved_server, resolved_token)


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
        fail(f"invalid server URL {connection.server}: {exc}", 2)
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"cannot reach {connection.server}: {reason}")
    if response.status_code >= 400:
        fail(f"{response.status_code}: {_detail(response)}")
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        fail(f"{response.status_code}: the server's answer is not JSON")


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
