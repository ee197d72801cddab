"""``aami export``, ``aami diff`` and ``aami apply``: the configuration as one YAML file.

These commands talk to a server over HTTP only, like the rest of the operator CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
import yaml

__all__ = ["dump_yaml", "register"]

Server = Annotated[str, typer.Option(envvar="AAMI_SERVER", help="AAMI server URL")]
Token = Annotated[
    str | None,
    typer.Option(envvar=["AAMI_TOKEN", "AAMI_ADMIN_TOKEN"], help="API token", show_default=False),
]
File = Annotated[
    Path, typer.Option("--file", "-f", help="the configuration document (YAML)", exists=False)
]
Prune = Annotated[
    bool, typer.Option("--prune", help="delete what the file does not list (default: keep it)")
]
DEFAULT_SERVER = "http://127.0.0.1:8080"


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
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _request(
    method: str,
    server: str,
    token: str | None,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str | float] | None = None,
) -> dict[str, Any]:
    if not token:
        typer.echo("error: no token: pass --token or set AAMI_TOKEN", err=True)
        raise typer.Exit(2)
    try:
        response = httpx.request(
            method,
            f"{server.rstrip('/')}/api/v1{path}",
            headers={"Authorization": f"Bearer {token}"},
            json=json,
            params=params,
            timeout=300,
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {server}: {type(exc).__name__}")
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        _fail(f"{response.status_code}: {' '.join(str(detail).split())}")
    body: dict[str, Any] = response.json()
    return body


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except yaml.YAMLError as exc:
        _fail(f"{path} is not valid YAML: {' '.join(str(exc).split())}")


def _describe(result: dict[str, Any], *, applied: bool) -> list[str]:
    lines = []
    for change in result["changes"]:
        fields = f" ({', '.join(change['fields'])})" if change.get("fields") else ""
        lines.append(f"{change['action']:<8} {change['kind']}/{change['id']}{fields}")
    verb = "written" if applied else "would change"
    files = result["rule_files"]
    for name in files["written"]:
        lines.append(f"rule file {name}: {verb}")
    for name in files["removed"]:
        lines.append(f"rule file {name}: {'removed' if applied else 'would be removed'}")
    for kind, ids in sorted(result.get("not_in_document", {}).items()):
        lines.append(f"kept     {kind}: {', '.join(ids)} (not in the file; --prune deletes)")
    return lines


def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here instead of stdout")
    ] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
) -> None:
    """Print (or write) the server's whole configuration as one YAML document."""
    text = dump_yaml(_request("GET", server, token, "/config/export"))
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")


def diff(
    file: File,
    prune: Prune = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="exit 3 when the file differs from the server")
    ] = False,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
) -> None:
    """Show what applying the file would change, entity by entity, and which rule files."""
    document = _load(file)
    result = _request(
        "POST", server, token, "/config/plan", json=document, params={"prune": str(prune).lower()}
    )
    lines = _describe(result, applied=False)
    if not result["changed"]:
        lines.insert(0, "nothing changed: the server matches the file")
    typer.echo("\n".join(lines))
    if exit_code and result["changed"]:
        raise typer.Exit(3)


PUBLISH_WAIT = 25  # seconds the server waits for the publisher before "scheduled"


def apply(
    file: File,
    prune: Prune = False,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
) -> None:
    """Make the server's configuration match the file, all or nothing."""
    document = _load(file)
    result = _request(
        "POST",
        server,
        token,
        "/config/apply",
        json=document,
        params={"prune": str(prune).lower(), "wait": PUBLISH_WAIT},
    )
    if not result["changed"]:
        typer.echo("nothing changed: the server matches the file")
        return
    publish = result["publish"]
    if publish["result"] != "scheduled":
        result["rule_files"] = {
            "written": publish["files_written"],
            "removed": publish["files_removed"],
        }
    typer.echo("\n".join(_describe(result, applied=True)))
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
