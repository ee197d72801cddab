"""``aami alert-rules preview|backtest`` and ``aami alert-templates impact``: see what a
rule or a template change does before saving it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

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
    print_table,
)
from aami.cli.resources import FileOption, SetOption, build_body, parse_pairs, yaml_value

__all__ = ["add_rule_commands", "add_template_commands"]

C = Column

RuleArgument = Annotated[
    str | None,
    typer.Argument(metavar="RULE_ID", help="a saved rule; none: give --template"),
]
TemplateOption = Annotated[
    str | None, typer.Option("--template", help="template id or name (a rule not saved yet)")
]
GroupOption = Annotated[str | None, typer.Option("--group", help="group id or name; none = global")]
ConfigOption = Annotated[
    list[str] | None,
    typer.Option("--config", help="KEY=VALUE of the rule's config (a YAML value), repeatable"),
]


def _config(pairs: list[str] | None) -> dict[str, Any]:
    return {key: yaml_value(value) for key, value in parse_pairs(pairs or [], "--config")}


def _draft(rule: str | None, template: str | None, group: str | None) -> str:
    """The API path for a saved rule or a draft; usage error for neither or both."""
    if rule and template:
        fail("give RULE_ID or --template, not both", 2)
    if not rule and not template:
        fail("give RULE_ID (a saved rule) or --template (a rule not saved yet)", 2)
    if rule and group:
        fail("--group goes with --template; a saved rule has its group", 2)
    return f"/api/v1/alert-rules/{rule}" if rule else "/api/v1/alert-rules"


def _labels(row: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in (row.get("labels") or {}).items())


def _number(value: Any) -> str:
    return "NaN" if value is None else f"{value:.10g}"


def _print_preview(answer: Mapping[str, Any]) -> None:
    rule = answer.get("rule") or {}
    if not answer.get("valid"):
        fail(f"the rule does not render: {answer.get('error')}")
    typer.echo(f"expr: {rule.get('expr')}")
    typer.echo(f"for: {rule.get('for')}")
    found = answer.get("evaluation") or {}
    typer.echo(f"state: {found.get('state')}: {found.get('summary')}")
    comparison = found.get("comparison") or {}
    threshold = f"{comparison.get('op', '')} {_number(comparison.get('threshold'))}"
    if found.get("firing"):
        typer.echo("would fire now:")
        print_table(
            found["firing"],
            (C("SERIES", _labels), C("VALUE", lambda r: _number(r.get("value")))),
            "",
        )
    if not found.get("near_misses_available", True) and found.get("near_misses_note"):
        typer.echo(found["near_misses_note"])
    elif found.get("near_misses"):
        typer.echo("near misses:")
        print_table(
            found["near_misses"],
            (
                C("SERIES", _labels),
                C("VALUE", lambda r: _number(r.get("value"))),
                C("THRESHOLD", lambda _: threshold),
                C("DISTANCE", lambda r: _number(r.get("distance"))),
            ),
            "",
        )


def preview(
    rule: RuleArgument = None,
    template: TemplateOption = None,
    group: GroupOption = None,
    config: ConfigOption = None,
    near: Annotated[int, typer.Option(help="nearest misses to list", min=0, max=50)] = 5,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show a rule as published and what Prometheus says of it now.

    The series that would fire, the nearest misses, or that the metric does not exist.
    """
    path = _draft(rule, template, group)
    connection = connect(server, token, state_dir)
    if rule:
        if config:
            fail("--config goes with --template; see `backtest` to try a config", 2)
        answer = call(connection, "GET", f"{path}/preview", params={"near": near})
    else:
        body = {"template_id": template, "group_id": group, "config": _config(config)}
        answer = call(connection, "POST", f"{path}/preview", body={**body, "near": near})
    if output is not Output.table:
        emit(answer, output)
        return
    _print_preview(answer)


def _duration(seconds: Any) -> str:
    whole = round(float(seconds or 0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _print_backtest(answer: Mapping[str, Any]) -> None:
    current, proposed = answer["current"], answer["proposed"]
    typer.echo(
        f"last {answer['hours']} h, every {answer['step_seconds']:g} s "
        f"({answer['start']} to {answer['end']})"
    )
    rows = [
        {"what": "expr", "current": current["expr"], "proposed": proposed["expr"]},
        {"what": "for", "current": current["for"], "proposed": proposed["for"]},
        {"what": "times fired", "current": current["episodes"], "proposed": proposed["episodes"]},
        {
            "what": "series fired",
            "current": current["series_fired"],
            "proposed": proposed["series_fired"],
        },
        {
            "what": "firing in all",
            "current": _duration(current["firing_seconds"]),
            "proposed": _duration(proposed["firing_seconds"]),
        },
        {
            "what": "longest",
            "current": _duration(current["longest_seconds"]),
            "proposed": _duration(proposed["longest_seconds"]),
        },
    ]
    if current["error"] or proposed["error"]:
        rows.append({"what": "error", "current": current["error"], "proposed": proposed["error"]})
    print_table(
        rows,
        (
            C("", "what"),
            C(f"CURRENT ({answer['current_source']})", "current"),
            C("PROPOSED", "proposed"),
        ),
        "",
    )
    if proposed["series"]:
        typer.echo("proposed, by series:")
        print_table(
            proposed["series"],
            (
                C("SERIES", _labels),
                C("TIMES", "episodes"),
                C("FIRING", lambda r: _duration(r["firing_seconds"])),
                C("LONGEST", lambda r: _duration(r["longest_seconds"])),
            ),
            "",
        )


def backtest(
    rule: RuleArgument = None,
    template: TemplateOption = None,
    group: GroupOption = None,
    config: ConfigOption = None,
    hours: Annotated[int, typer.Option(help="the last N hours (1-168)", min=1, max=168)] = 24,
    step: Annotated[
        float | None,
        typer.Option(help="seconds between points; default 15, more for long ranges"),
    ] = None,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Replay the last hours with a proposed --config beside the current one.

    How often and how long the rule would have fired; the current config is the saved
    rule's, or the template's defaults for a rule not saved yet.
    """
    path = _draft(rule, template, group)
    body: dict[str, Any] = {"config": _config(config), "hours": hours, "step": step}
    if not rule:
        body.update({"template_id": template, "group_id": group})
    connection = connect(server, token, state_dir)
    answer = call(connection, "POST", f"{path}/backtest", body=body, timeout=120)
    if output is not Output.table:
        emit(answer, output)
        return
    _print_backtest(answer)


def impact(
    template: Annotated[str, typer.Argument(metavar="ID", help="the template's id or name")],
    file: FileOption = None,
    set_: SetOption = None,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show what `update` with these fields would do to each rule of the template.

    The rendered expression before and after, and what else changes. Saves nothing.
    """
    body = build_body(file, set_ or [])
    if not body:
        fail("nothing to compare: pass -f FILE and/or --set field=value", 2)
    connection = connect(server, token, state_dir)
    answer = call(connection, "POST", f"/api/v1/alert-templates/{template}/impact", body=body)
    if output is not Output.table:
        emit(answer, output)
        return
    typer.echo("the change would be saved" if answer["valid"] else f"refused: {answer['error']}")
    for item in answer["rules"]:
        where = f"group {item['group_name']}" if item["group_name"] else "global"
        typer.echo(f"{item['rule_id']} ({where}): {', '.join(item['changed']) or 'unchanged'}")
        before, after = item.get("before") or {}, item.get("after") or {}
        if "expr" in item["changed"]:
            typer.echo(f"  - {before.get('expr')}\n  + {after.get('expr')}")
        if item.get("after_error"):
            typer.echo(f"  ! {item['after_error']}")


def add_rule_commands(app: typer.Typer) -> None:
    app.command("preview")(preview)
    app.command("backtest")(backtest)


def add_template_commands(app: typer.Typer) -> None:
    app.command("impact")(impact)
