"""Operator commands beyond CRUD: ``rules``, ``prometheus``, ``checks``, ``silence``,
``alerts`` and ``seed``."""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from aami.cli.client import (
    Column,
    Connection,
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
from aami.cli.resources import matcher_text
from aami.cli.rules_sync import rules_sync
from aami.common.durations import format_duration, parse_seconds

rules_app = typer.Typer(help="Generated Prometheus rule files.", no_args_is_help=True)
rules_app.command("sync")(rules_sync)
prometheus_app = typer.Typer(help="The Prometheus AAMI publishes to.", no_args_is_help=True)
silence_app = typer.Typer(help="Alertmanager silences.", no_args_is_help=True)
alertmanager_app = typer.Typer(help="The Alertmanager config AAMI publishes.", no_args_is_help=True)

C = Column
PUBLISH_COLUMNS = (
    C("ID", "id"),
    C("TARGET", "target"),
    C("STARTED", "started_at"),
    C("TIMES", "count"),
    C("TRIGGER", "trigger"),
    C("ACTOR", "actor"),
    C("RESULT", "result"),
    C("RULES", "rule_count"),
    C("VALIDATION", "validation"),
    C("RELOAD", "reload"),
    C("WRITTEN", "files_written"),
    C("ERROR", "error"),
)


@contextmanager
def spinner(message: str) -> Iterator[None]:
    """A spinner on stderr while a synchronous call runs (nothing when not a terminal)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


WAIT = 25  # seconds the server waits for the publisher before answering "scheduled"


def _publish_result(outcome: Any, output: Output, what: str) -> None:
    if isinstance(outcome, Mapping) and outcome.get("result") == "scheduled":
        if output is Output.table:
            typer.echo(
                f"{what}: scheduled — the publisher is still on it; "
                "`aami prometheus status` tells when it is in sync"
            )
        else:
            emit(outcome, output)
        return
    if output is not Output.table or not isinstance(outcome, Mapping):
        emit(outcome, output)
    else:
        typer.echo(
            f"{what}: {outcome.get('result')} — {outcome.get('rule_count')} rules, "
            f"validation {outcome.get('validation')}, reload {outcome.get('reload')}"
        )
        for label, key in (("written", "files_written"), ("removed", "files_removed")):
            for name in outcome.get(key) or []:
                typer.echo(f"  {label}: {name}")
        for name, why in (outcome.get("files_rejected") or {}).items():
            typer.echo(f"  rejected: {name}: {why}")
    if isinstance(outcome, Mapping) and outcome.get("result") in (
        "failed",
        "rolled_back",
        "partial",
    ):
        fail(f"{what} {outcome.get('result')}: {outcome.get('error') or 'see the files above'}")


# --- rules ----------------------------------------------------------------------------


@rules_app.command("regenerate")
def rules_regenerate(
    group: Annotated[
        str | None,
        typer.Argument(help="only this group's file (global for the global rules)"),
    ] = None,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Render, validate, write and reload the rule files now."""
    connection = connect(server, token, state_dir)
    path = "/api/v1/prometheus/rules/regenerate" + (f"/{group}" if group else "")
    with spinner(f"regenerating rules{f' for {group}' if group else ''}…"):
        outcome = call(connection, "POST", path, params={"wait": WAIT}, timeout=WAIT + 15)
    _publish_result(outcome, output, "regenerate")


@rules_app.command("files")
def rules_files(
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """The generated rule files."""
    answer = call(connect(server, token, state_dir), "GET", "/api/v1/prometheus/rules/files")
    columns = (
        C("NAME", "name"),
        C("GROUP", "group_id"),
        C("RULES", "rule_count"),
        C("LAST PUBLISHED", "last_published"),
        C("SHA256", lambda r: str(r.get("sha256") or "")[:12]),
        C("PATH", "path"),
    )
    emit(answer, output, columns=columns, empty="no rule files")


@rules_app.command("effective")
def rules_effective(
    target: Annotated[str, typer.Argument(help="target id or hostname")],
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """The rendered rules that apply to a target."""
    answer = call(
        connect(server, token, state_dir), "GET", f"/api/v1/prometheus/rules/effective/{target}"
    )
    if output is Output.table:
        typer.echo(
            f"target {answer.get('hostname')} ({answer.get('target_id')}), "
            f"group {answer.get('group_id') or '-'}"
        )
    columns = (
        C("ALERT", "alert"),
        C("SCOPE", "scope"),
        C("FOR", "for"),
        C("SEVERITY", lambda r: (r.get("labels") or {}).get("severity")),
        C("EXPR", "expr"),
    )
    emit(answer, output, columns=columns, rows=answer.get("rules", []), empty="no rules apply")


def _status(connection: Connection, output: Output) -> None:
    answer = call(connection, "GET", "/api/v1/prometheus/status")
    if output is not Output.table:
        emit(answer, output)
        return
    last = answer.get("last_publish") or {}
    since = answer.get("seconds_since_in_sync")
    emit(
        {
            "prometheus": answer.get("url"),
            "reachable": answer.get("reachable"),
            "ready": answer.get("ready"),
            "in sync": answer.get("in_sync"),
            "out of sync": ", ".join(answer.get("out_of_sync") or []) or None,
            "out of sync for": format_duration(round(since))
            if isinstance(since, int | float) and since
            else None,
            "last error": answer.get("last_error"),
            "publisher": f"{answer.get('publisher')} ({answer.get('holder')})",
            "reload enabled": answer.get("reload_enabled"),
            "reload pending": answer.get("reload_pending"),
            "pending changes": answer.get("pending_changes"),
            "rule path": answer.get("rule_path"),
            "last publish": (
                f"#{last.get('id')} {last.get('result')} at {last.get('finished_at')}"
                if last
                else None
            ),
        },
        output,
    )
    groups = answer.get("groups") or {}
    rows = [{"group": name, **state} for name, state in groups.items()]
    typer.echo("")
    emit(
        rows,
        output,
        columns=(
            C("GROUP", "group"),
            C("DESIRED", "desired_revision"),
            C("WRITTEN", "written_revision"),
            C("LOADED", "loaded_revision"),
            C("IN SYNC", "in_sync"),
            C("ERROR", "error"),
        ),
        empty="no rule groups",
    )
    evaluators = call(connection, "GET", "/api/v1/evaluators", params={"limit": 1000})
    remote = [row for row in evaluators.get("data", []) if not row.get("builtin")]
    if remote:
        typer.echo("")
        emit(
            remote,
            output,
            columns=(
                C("EVALUATOR", "name"),
                C("KIND", "kind"),
                C("DESIRED", lambda r: (r.get("desired_revision") or "")[:12]),
                C("LOADED", lambda r: (r.get("loaded_revision") or "")[:12]),
                C("IN SYNC", "in_sync"),
                C("LAST REPORT", "last_report_at"),
                C("ERROR", "report_error"),
            ),
        )


@rules_app.command("status")
def rules_status(
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Prometheus reachable and ready, pending reloads, rule groups loaded vs expected."""
    _status(connect(server, token, state_dir), output)


def _history(
    connection: Connection, path: str, page: int | None, limit: int | None, output: Output
) -> None:
    answer = call(connection, "GET", path, params={"page": page, "limit": limit})
    emit(answer, output, columns=PUBLISH_COLUMNS, rows=answer.get("data", []), empty="no publishes")


@rules_app.command("history")
def rules_history(
    page: Annotated[int | None, typer.Option(help="page number", min=1)] = None,
    limit: Annotated[int | None, typer.Option(help="items per page", min=1)] = None,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Every publish and its result, newest first."""
    connection = connect(server, token, state_dir)
    _history(connection, "/api/v1/prometheus/rules/history", page, limit, output)


# --- prometheus -----------------------------------------------------------------------


@prometheus_app.command("reload")
def prometheus_reload(
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Reload Prometheus now."""
    connection = connect(server, token, state_dir)
    with spinner("reloading Prometheus…"):
        outcome = call(
            connection,
            "POST",
            "/api/v1/prometheus/reload",
            params={"wait": WAIT},
            timeout=WAIT + 15,
        )
    _publish_result(outcome, output, "reload")


@prometheus_app.command("status")
def prometheus_status(
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Prometheus reachable and ready, pending reloads, rule groups loaded vs expected."""
    _status(connect(server, token, state_dir), output)


# --- alertmanager ---------------------------------------------------------------------


@alertmanager_app.command("status")
def alertmanager_status(
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Alertmanager reachable; the managed config desired, written and loaded."""
    answer = call(connect(server, token, state_dir), "GET", "/api/v1/alertmanager/status")
    if output is not Output.table:
        emit(answer, output)
        return
    config = answer.get("config") or {}
    last = answer.get("last_publish") or {}
    emit(
        {
            "alertmanager": answer.get("url"),
            "reachable": answer.get("reachable"),
            "managed": answer.get("managed"),
            "in sync": answer.get("in_sync"),
            "desired revision": config.get("desired_revision"),
            "written revision": config.get("written_revision"),
            "loaded revision": config.get("loaded_revision"),
            "last error": answer.get("last_error"),
            "last publish": (
                f"#{last.get('id')} {last.get('result')} at {last.get('finished_at')}"
                if last
                else None
            ),
        },
        output,
    )


@alertmanager_app.command("history")
def alertmanager_history(
    page: Annotated[int | None, typer.Option(help="page number", min=1)] = None,
    limit: Annotated[int | None, typer.Option(help="items per page", min=1)] = None,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Every publish of the Alertmanager config, newest first."""
    connection = connect(server, token, state_dir)
    _history(connection, "/api/v1/alertmanager/history", page, limit, output)


# --- checks ---------------------------------------------------------------------------


def checks(
    target: Annotated[str, typer.Argument(help="target id or hostname")],
    explain: Annotated[
        bool, typer.Option("--explain", help="which policy won for each check, and why")
    ] = False,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """The checks a node runs, with their resolved config."""
    path = f"/api/v1/checks/target/{target}" + ("/explain" if explain else "")
    answer = call(connect(server, token, state_dir), "GET", path)
    if explain:
        emit(answer, output)
        return
    columns = (
        C("NAME", "name"),
        C("TYPE", "script_type"),
        C("LANGUAGE", "language"),
        C("VERSION", "version"),
        C("TIMEOUT", "timeout_seconds"),
        C("CONFIG", "config"),
    )
    emit(answer, output, columns=columns, empty=f"no checks for {target}")


# --- silences -------------------------------------------------------------------------

_MATCHER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(=~|!~|!=|=)(.*)$")


def duration_hours(text: str) -> float:
    """``2h``, ``30m``, ``1h30m``, ``1d`` as hours (the server's duration grammar)."""
    try:
        return parse_seconds(text) / 3600
    except ValueError as exc:
        fail(f"--duration: {exc}", 2)


def parse_matcher(text: str) -> dict[str, Any]:
    """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``."""
    found = _MATCHER.match(text.strip())
    if not found:
        fail(f"--matcher {text!r}: expected name=value (or !=, =~, !~)", 2)
    name, op, value = found.groups()
    return {"name": name, "value": value, "is_equal": op[0] == "=", "is_regex": "~" in op}


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "aami-cli"


SILENCE_COLUMNS = (
    C("ID", "id"),
    C("STATE", "state"),
    C("MATCHERS", lambda r: ",".join(matcher_text(m) for m in r.get("matchers") or [])),
    C("ENDS", "ends_at"),
    C("CREATED BY", "created_by"),
    C("COMMENT", "comment"),
    C("ON RESOLVE", "expire_on_resolve"),
)


@silence_app.command("add")
def silence_add(
    comment: Annotated[str, typer.Option("--comment", "-c", help="why (required)")],
    target: Annotated[
        str | None, typer.Option("--target", help="silence one node (id or hostname)")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="silence one group (id or name)")
    ] = None,
    matcher: Annotated[
        list[str] | None,
        typer.Option("--matcher", "-m", help="label=value (or !=, =~, !~), repeatable"),
    ] = None,
    duration: Annotated[str, typer.Option("--duration", "-d", help="e.g. 30m, 2h, 1d")] = "2h",
    created_by: Annotated[
        str | None, typer.Option("--created-by", help="who (default: your user name)")
    ] = None,
    expire_on_resolve: Annotated[
        bool, typer.Option("--expire-on-resolve", help="end it once its alerts resolve")
    ] = False,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Silence a node, a group, or alerts matching labels for a while."""
    chosen = [
        flag
        for flag, value in (("--target", target), ("--group", group), ("--matcher", matcher))
        if value
    ]
    if len(chosen) != 1:
        fail("give exactly one of --target, --group or --matcher", 2)
    hours = duration_hours(duration)
    author = created_by or _default_user()
    common = {"comment": comment, "created_by": author, "expire_on_resolve": expire_on_resolve}
    if target or group:
        kind, ref = ("target", target) if target else ("group", group)
        path, body = f"/api/v1/silences/{kind}/{ref}", {"hours": hours, **common}
    else:
        matchers = [parse_matcher(m) for m in matcher or []]
        path, body = "/api/v1/silences", {"matchers": matchers, "duration": duration, **common}
    connection = connect(server, token, state_dir)
    silence = call(connection, "POST", path, body=body)
    if output is Output.table:
        typer.echo(f"silence {silence.get('id')} until {silence.get('ends_at')}")
    else:
        emit(silence, output)


@silence_app.command("list")
def silence_list(
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Silences, newest end first."""
    answer = call(connect(server, token, state_dir), "GET", "/api/v1/silences")
    emit(answer, output, columns=SILENCE_COLUMNS, empty="no silences")


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(metavar="ID", help="the silence's id")],
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """End a silence now."""
    call(connect(server, token, state_dir), "DELETE", f"/api/v1/silences/{silence_id}")
    typer.echo(f"expired silence {silence_id}")


# --- alerts and seed ------------------------------------------------------------------


def _alert_state(alert: Mapping[str, Any]) -> str:
    if alert.get("silenced"):
        return "silenced"
    return "inhibited" if alert.get("inhibited") else "firing"


def alerts(
    group: Annotated[str | None, typer.Option(help="group id or name")] = None,
    severity: Annotated[str | None, typer.Option(help="critical, warning or info")] = None,
    target: Annotated[str | None, typer.Option(help="target id or hostname")] = None,
    state: Annotated[str | None, typer.Option(help="active, silenced or inhibited")] = None,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show the alerts Alertmanager holds: firing, silenced or inhibited."""
    params = {"group_id": group, "severity": severity, "target": target, "state": state}
    found = call(connect(server, token, state_dir), "GET", "/api/v1/alerts", params=params)
    columns = (
        C("ALERT", lambda a: (a.get("labels") or {}).get("alertname")),
        C("SEVERITY", lambda a: (a.get("labels") or {}).get("severity")),
        C("GROUP", lambda a: (a.get("labels") or {}).get("group")),
        C("INSTANCE", lambda a: (a.get("labels") or {}).get("instance")),
        C("STATE", _alert_state),
        C("SINCE", "starts_at"),
    )
    emit(found, output, columns=columns, empty="no alerts")


def seed(
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Load the default alert templates into a server (idempotent)."""
    answer = call(connect(server, token, state_dir), "POST", "/api/v1/seed", timeout=60)
    for kind, outcome in answer.items():
        created, existing = outcome["created"], outcome["existing"]
        typer.echo(f"{kind}: {len(created)} created, {len(existing)} already there")
        for name in created:
            typer.echo(f"  + {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
    app.add_typer(prometheus_app, name="prometheus")
    app.add_typer(silence_app, name="silence")
    app.add_typer(alertmanager_app, name="alertmanager")
    app.command("checks")(checks)
    app.command("alerts")(alerts)
    app.command("seed")(seed)
