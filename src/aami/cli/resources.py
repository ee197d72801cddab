"""``aami groups|targets|... list|get|create|update|delete``: one generic sub-app per
REST resource."""

# No ``from __future__ import annotations`` here: the commands are built in a closure
# and Typer evaluates their annotations, which use the closure's variables.

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from aami.cli.client import (
    Column,
    Output,
    OutputOption,
    ServerOption,
    StateDirOption,
    TokenOption,
    call,
    connect,
    emit,
    fail,
)


@dataclass(frozen=True)
class Resource:
    name: str  # the command and the path under /api/v1
    singular: str
    columns: tuple[Column, ...]
    paged: bool = True  # {"data": [...], "pagination": {...}} rather than a plain list
    updatable: bool = True

    @property
    def path(self) -> str:
        return f"/api/v1/{self.name}"


def _group(row: Mapping[str, Any]) -> Any:
    return row.get("group_name") or row.get("group_id") or "(global)"


def _uses(row: Mapping[str, Any]) -> str:
    limit = row.get("max_uses")
    return f"{row.get('uses', 0)}/{limit if limit is not None else '∞'}"


def _matchers(row: Mapping[str, Any]) -> str:
    matchers = row.get("matchers") or []
    if isinstance(matchers, Mapping):
        return ",".join(f"{k}={v}" for k, v in matchers.items())
    if isinstance(matchers, list):
        return ",".join(matcher_text(m) for m in matchers)
    return str(matchers)


def matcher_text(matcher: Any) -> str:
    """``{"name": "a", "value": "b", "is_equal": true, "is_regex": false}`` as ``a="b"``."""
    if not isinstance(matcher, Mapping):
        return str(matcher)
    op = ("=" if matcher.get("is_equal", True) else "!") + ("~" if matcher.get("is_regex") else "")
    if op == "!":
        op = "!="
    return f'{matcher.get("name")}{op}"{matcher.get("value")}"'


C = Column
RESOURCES: tuple[Resource, ...] = (
    Resource(
        "groups",
        "group",
        (C("ID", "id"), C("NAME", "name"), C("DESCRIPTION", "description"), C("LABELS", "labels")),
    ),
    Resource(
        "targets",
        "target",
        (
            C("ID", "id"),
            C("HOSTNAME", "hostname"),
            C("IP", "ip_address"),
            C("GROUPS", "group_ids"),
            C("STATUS", "status"),
            C("EXPORTERS", lambda r: [e.get("type") for e in r.get("exporters") or []]),
            C("LAST SEEN", "last_seen"),
        ),
    ),
    Resource(
        "exporters",
        "exporter",
        (
            C("ID", "id"),
            C("TARGET", "target_id"),
            C("TYPE", "type"),
            C("PORT", "port"),
            C("PATH", "metrics_path"),
            C("ENABLED", "enabled"),
        ),
    ),
    Resource(
        "evaluators",
        "evaluator",
        (
            C("NAME", "name"),
            C("KIND", "kind"),
            C("URL", "url"),
            C("GROUPS", lambda r: r.get("groups") or "(all)"),
            C("IN SYNC", "in_sync"),
            C("LOADED", lambda r: (r.get("loaded_revision") or "")[:12]),
            C("DESIRED", lambda r: (r.get("desired_revision") or "")[:12]),
            C("LAST REPORT", "last_report_at"),
            C("ERROR", "report_error"),
        ),
    ),
    Resource(
        "alert-templates",
        "alert template",
        (
            C("ID", "id"),
            C("NAME", "name"),
            C("SEVERITY", "severity"),
            C("FOR", "for_duration"),
            C("DEFAULTS", "default_config"),
        ),
    ),
    Resource(
        "alert-rules",
        "alert rule",
        (
            C("ID", "id"),
            C("TEMPLATE", "template_name"),
            C("GROUP", _group),
            C("ENABLED", "enabled"),
            C("CONFIG", "config"),
            C("ALERT", lambda r: (r.get("rendered") or {}).get("alert")),
            C("ERROR", "render_error"),
        ),
    ),
    Resource(
        "script-templates",
        "script template",
        (
            C("ID", "id"),
            C("NAME", "name"),
            C("TYPE", "script_type"),
            C("LANGUAGE", "language"),
            C("VERSION", "version"),
            C("TIMEOUT", "timeout_seconds"),
        ),
    ),
    Resource(
        "script-policies",
        "script policy",
        (
            C("ID", "id"),
            C("TEMPLATE", "template_name"),
            C("SCOPE", "scope"),
            C("GROUP", "group_id"),
            C("TARGET", "target_id"),
            C("PRIORITY", "priority"),
            C("ACTIVE", "is_active"),
        ),
    ),
    Resource(
        "bootstrap-tokens",
        "bootstrap token",
        (
            C("ID", "id"),
            C("NAME", "name"),
            C("USES", _uses),
            C("GROUP", "group_id"),
            C("EXPIRES", "expires_at"),
            C("LAST USED", "last_used_at"),
        ),
        updatable=False,
    ),
    Resource(
        "notification-channels",
        "notification channel",
        (C("ID", "id"), C("NAME", "name"), C("TYPE", "type"), C("SECRET", "has_secret")),
        paged=False,
    ),
    Resource(
        "notification-routes",
        "notification route",
        (
            C("ID", "id"),
            C("NAME", "name"),
            C("RECEIVER", "receiver"),
            C("MATCHERS", _matchers),
            C("POSITION", "position"),
            C("CONTINUE", "continue"),
        ),
        paged=False,
    ),
)


# --- input ----------------------------------------------------------------------------


def parse_pairs(pairs: list[str], flag: str) -> list[tuple[str, str]]:
    parsed = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"{flag} {pair!r}: expected key=value", 2)
        parsed.append((key.strip(), value))
    return parsed


def yaml_value(text: str) -> Any:
    """``80`` → 80, ``true`` → True, ``[a, b]`` → a list; anything YAML cannot read stays
    a string."""
    if text == "":
        return ""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _read_file(file: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", 2)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        fail(f"{file}: not valid YAML or JSON: {str(exc).splitlines()[0]}", 2)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        fail(f"{file}: expected a mapping of fields, got {type(loaded).__name__}", 2)
    return loaded


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = body
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def build_body(
    file: str | None, sets: list[str], unsets: list[str] | None = None
) -> dict[str, Any]:
    """The fields from ``-f FILE`` with every ``--set a.b=value`` laid over them, and every
    ``--unset a.b`` as a null (a config key set to null is removed: JSON merge patch)."""
    body: dict[str, Any] = _read_file(file) if file else {}
    for key, raw in parse_pairs(sets, "--set"):
        _put(body, key, yaml_value(raw))
    for key in unsets or []:
        if "." not in key or not all(key.split(".")):
            fail(f"--unset {key!r}: expected config.KEY", 2)
        _put(body, key, None)
    return body


FileOption = Annotated[
    str | None,
    typer.Option("-f", "--file", help="YAML or JSON file with the fields; - reads stdin"),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="field=value (a YAML value; dotted keys nest), repeatable"),
]
UnsetOption = Annotated[
    list[str] | None,
    typer.Option("--unset", help="config.KEY to remove (sent as null), repeatable"),
]


# --- commands -------------------------------------------------------------------------


def resource_app(resource: Resource) -> typer.Typer:
    app = typer.Typer(help=f"Manage {resource.name}.", no_args_is_help=True)
    columns = resource.columns
    plural = resource.name.replace("-", " ")

    @app.command("list", help=f"List {plural}.")
    def list_(
        page: Annotated[int | None, typer.Option(help="page number", min=1)] = None,
        limit: Annotated[int | None, typer.Option(help="items per page", min=1)] = None,
        filter_: Annotated[
            list[str] | None,
            typer.Option("--filter", help="key=value query filter, repeatable"),
        ] = None,
        output: OutputOption = Output.table,
        server: ServerOption = None,
        token: TokenOption = None,
        state_dir: StateDirOption = None,
    ) -> None:
        params: dict[str, Any] = dict(parse_pairs(filter_ or [], "--filter"))
        params.update({"page": page, "limit": limit})
        connection = connect(server, token, state_dir)
        answer = call(connection, "GET", resource.path, params=params)
        rows = answer.get("data", []) if isinstance(answer, dict) else answer
        emit(answer, output, columns=columns, rows=rows, empty=f"no {plural}")
        pagination = answer.get("pagination") if isinstance(answer, dict) else None
        if output is Output.table and pagination and rows:
            typer.echo(
                f"page {pagination.get('page')} of {pagination.get('total_pages')}, "
                f"{pagination.get('total')} {plural} in all"
            )

    @app.command("get", help=f"Show one {resource.singular}.")
    def get(
        id_: Annotated[str, typer.Argument(metavar="ID", help=f"the {resource.singular}'s id")],
        output: OutputOption = Output.table,
        server: ServerOption = None,
        token: TokenOption = None,
        state_dir: StateDirOption = None,
    ) -> None:
        connection = connect(server, token, state_dir)
        emit(call(connection, "GET", f"{resource.path}/{id_}"), output)

    @app.command(
        "create", help=f"Create a {resource.singular} from -f FILE and/or --set field=value."
    )
    def create(
        file: FileOption = None,
        set_: SetOption = None,
        output: OutputOption = Output.table,
        server: ServerOption = None,
        token: TokenOption = None,
        state_dir: StateDirOption = None,
    ) -> None:
        body = build_body(file, set_ or [])
        if not body:
            fail("nothing to create: pass -f FILE and/or --set field=value", 2)
        connection = connect(server, token, state_dir)
        emit(call(connection, "POST", resource.path, body=body), output)

    if resource.updatable:

        @app.command(
            "update",
            help=f"Change a {resource.singular}: only the fields given change (PUT is partial); "
            "in config, only the keys given, and --unset config.KEY removes one.",
        )
        def update(
            id_: Annotated[str, typer.Argument(metavar="ID", help=f"the {resource.singular}'s id")],
            file: FileOption = None,
            set_: SetOption = None,
            unset: UnsetOption = None,
            output: OutputOption = Output.table,
            server: ServerOption = None,
            token: TokenOption = None,
            state_dir: StateDirOption = None,
        ) -> None:
            body = build_body(file, set_ or [], unset)
            if not body:
                fail("nothing to change: pass -f FILE, --set field=value or --unset field", 2)
            connection = connect(server, token, state_dir)
            emit(call(connection, "PUT", f"{resource.path}/{id_}", body=body), output)

    @app.command("delete", help=f"Delete a {resource.singular}.")
    def delete(
        id_: Annotated[str, typer.Argument(metavar="ID", help=f"the {resource.singular}'s id")],
        server: ServerOption = None,
        token: TokenOption = None,
        state_dir: StateDirOption = None,
    ) -> None:
        connection = connect(server, token, state_dir)
        call(connection, "DELETE", f"{resource.path}/{id_}")
        typer.echo(f"deleted {resource.singular} {id_}")

    return app


def register(app: typer.Typer) -> None:
    from aami.cli import rule_checks  # it builds on this module's input helpers

    extra = {
        "alert-rules": rule_checks.add_rule_commands,
        "alert-templates": rule_checks.add_template_commands,
    }
    for resource in RESOURCES:
        sub = resource_app(resource)
        if resource.name in extra:
            extra[resource.name](sub)
        app.add_typer(sub, name=resource.name, help=f"Manage {resource.name}.")
