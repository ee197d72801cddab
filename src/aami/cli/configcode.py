"""``aami export``, ``aami diff`` and ``aami apply``: the configuration as one YAML file.

These commands talk to a server over HTTP only, like the rest of the operator CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from aami.cli.client import (
    ExitCode,
    Output,
    ServerOption,
    StateDirOption,
    TokenOption,
    call,
    connect,
    fail,
)

__all__ = ["dump_yaml", "register"]

File = Annotated[
    Path, typer.Option("--file", "-f", help="the configuration document (YAML)", exists=False)
]
Prune = Annotated[
    bool, typer.Option("--prune", help="delete what the file does not list (default: keep it)")
]
PlanOutput = Annotated[
    Output,
    typer.Option(
        "-o", "--output", help="table (the changes as lines), json or yaml", case_sensitive=False
    ),
]
TIMEOUT = 300  # a fleet-sized document takes a while to plan and apply


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (scripts, queries) as YAML block scalars, so files diff well."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(document: dict[str, Any]) -> str:
    """The document as YAML, in its own order (sections and ids are already sorted)."""
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=4096,  # long PromQL on one line
    )


def _fail(message: str) -> NoReturn:
    fail(message, ExitCode.USAGE)


def _request(
    method: str,
    path: str,
    options: tuple[str | None, str | None, Path | None],
    *,
    json: Any = None,
    params: dict[str, str | float] | None = None,
) -> dict[str, Any]:
    server, token, state_dir = options
    body: dict[str, Any] = call(
        connect(server, token, state_dir),
        method,
        f"/api/v1{path}",
        body=json,
        params=params,
        timeout=TIMEOUT,
    )
    return body


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except yaml.YAMLError as exc:
        _fail(f"{path} is not valid YAML: {' '.join(str(exc).split())}")


def _value(value: Any) -> str:
    if isinstance(value, str) and value and value.strip() == value and "\n" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _field(change: dict[str, Any]) -> str:
    old = _value(change["old"]) if "old" in change else "(unset)"
    new = _value(change["new"]) if "new" in change else "(unset)"
    return f"{change['field']}: {old} \u2192 {new}"


def _rendered(effect: dict[str, Any]) -> list[str]:
    """An alert rule whose Prometheus rule changes: its alert, file and what changes."""
    before, after = effect["before"], effect["after"]
    current = after or before
    alert = current.get("alert") or effect["rule"]
    if before is None:
        head = f"new alert {alert} in {effect['rule_file']}"
    elif after is None:
        head = f"alert {alert} leaves {effect['rule_file']}"
    else:
        head = f"alert {alert} in {effect['rule_file']}"
    lines = [head]
    old, new = before or {}, after or {}
    for name in ("alert", "for", "enabled", "error"):
        if before is not None and after is not None and old.get(name) != new.get(name):
            lines.append(f"  {name}: {_value(old.get(name))} \u2192 {_value(new.get(name))}")
    if old.get("expr") != new.get("expr"):
        if "expr" in old:
            lines.append(f"  expr before: {old['expr']}")
        if "expr" in new:
            lines.append(f"  expr after:  {new['expr']}")
    for name in ("labels", "annotations"):
        if before is not None and after is not None and old.get(name) != new.get(name):
            lines.append(f"  {name} change")
    return lines


def _describe(result: dict[str, Any], *, applied: bool) -> list[str]:
    lines = []
    for change in result["changes"]:
        where = f"{change['kind']}[{json.dumps(change['key'], ensure_ascii=False)}]"
        lines.append(f"{change['action']:<8} {where}")
        lines += [f"           {_field(item)}" for item in change.get("fields") or []]
        for effect in change.get("rules") or []:
            lines += [f"           {line}" for line in _rendered(effect)]
    verb = "written" if applied else "would change"
    files = result["rule_files"]
    for name in files["written"]:
        lines.append(f"rule file {name}: {verb}")
    for name in files["removed"]:
        lines.append(f"rule file {name}: {'removed' if applied else 'would be removed'}")
    for kind, keys in sorted(result.get("not_in_document", {}).items()):
        lines.append(f"kept     {kind}: {', '.join(keys)} (not in the file; --prune deletes)")
    return lines


EXPORT_FORMATS = ("yaml", "json")


def _export_format(output: str) -> str:
    """``-o`` is the format, as everywhere; it used to be the file, so say where that went."""
    chosen = output.lower()
    if chosen in EXPORT_FORMATS:
        return chosen
    if chosen == Output.table:
        _fail("-o table: the export is a document; choose -o yaml or -o json")
    _fail(
        f"-o {output!r} is not a format: -o/--output chooses yaml or json; "
        f"write the document to a file with --file {output}"
    )


def export(
    output: Annotated[
        str,
        typer.Option("-o", "--output", help="yaml or json", metavar="FORMAT"),
    ] = "yaml",
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", "--output-file", help="write here instead of stdout"),
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Print (or write) the server's whole configuration as one YAML (or JSON) document."""
    chosen = _export_format(output)
    document = _request("GET", "/config/export", (server, token, state_dir))
    text = dump_yaml(document) if chosen == "yaml" else json.dumps(document, indent=2) + "\n"
    if file is None:
        typer.echo(text, nl=False)
        return
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {file}: {exc.strerror or exc}")


def _show(result: dict[str, Any], output: Output, lines: list[str]) -> None:
    if output is Output.table:
        typer.echo("\n".join(lines))
    elif output is Output.json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        typer.echo(yaml.safe_dump(result, sort_keys=False, allow_unicode=True).rstrip("\n"))


def diff(
    file: File,
    prune: Prune = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="exit 3 when the file differs from the server")
    ] = False,
    output: PlanOutput = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show what applying the file would change: each entry, each changed field old and new,
    the alert rules whose PromQL changes, and which rule files."""
    document = _load(file)
    result = _request(
        "POST",
        "/config/plan",
        (server, token, state_dir),
        json=document,
        params={"prune": str(prune).lower()},
    )
    lines = _describe(result, applied=False)
    if not result["changed"]:
        lines.insert(0, "nothing changed: the server matches the file")
    _show(result, output, lines)
    if exit_code and result["changed"]:
        raise typer.Exit(ExitCode.NOT_DONE)


PUBLISH_WAIT = 25  # seconds the server waits for the publisher before "scheduled"


def apply(
    file: File,
    prune: Prune = False,
    output: PlanOutput = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Make the server's configuration match the file, all or nothing."""
    document = _load(file)
    result = _request(
        "POST",
        "/config/apply",
        (server, token, state_dir),
        json=document,
        params={"prune": str(prune).lower(), "wait": PUBLISH_WAIT},
    )
    if not result["changed"]:
        _show(result, output, ["nothing changed: the server matches the file"])
        return
    publish = result["publish"]
    if publish["result"] != "scheduled":
        result["rule_files"] = {
            "written": publish["files_written"],
            "removed": publish["files_removed"],
        }
    _show(result, output, _describe(result, applied=True))
    if publish["result"] == "scheduled":
        typer.echo(
            "the rule files are still being published; `aami prometheus status` tells when "
            "Prometheus runs them",
            err=True,
        )
    elif publish["result"] not in ("ok", "pending_reload"):
        typer.echo(f"warning: publishing the rule files: {publish['error']}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``export``, ``diff`` and ``apply`` to the ``aami`` command."""
    app.command("export")(export)
    app.command("diff")(diff)
    app.command("apply")(apply)
