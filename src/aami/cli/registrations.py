"""``aami registrations list|get|approve|reject``: the queue of node registrations that
wait for an admin (an existing hostname without its node token, an address other than
the one the node connects from)."""

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
)

__all__ = ["register", "registrations_app"]

registrations_app = typer.Typer(
    help="Node registrations waiting for an admin's approval.", no_args_is_help=True
)

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="the registration's id")]


def _change(row: Mapping[str, Any]) -> str:
    """What approving does, in a few words."""
    target = row.get("target")
    if not isinstance(target, Mapping):
        return "new node"
    parts = []
    if target.get("ip_address") != row.get("ip_address"):
        parts.append(f"ip {target.get('ip_address')} -> {row.get('ip_address')}")
    group = row.get("group_id")
    if group and group not in (target.get("group_ids") or []):
        parts.append(f"+group {group}")
    if row.get("labels"):
        parts.append("labels")
    return ", ".join(parts) or "new node token"


COLUMNS = (
    Column("ID", "id"),
    Column("HOSTNAME", "hostname"),
    Column("CLAIMS", "ip_address"),
    Column("FROM", "source_address"),
    Column("TOKEN", "bootstrap_token_name"),
    Column("CHANGE", _change),
    Column("WHY", lambda row: "; ".join(row.get("reasons") or [])),
    Column("EXPIRES", "expires_at"),
)


@registrations_app.command("list")
def list_pending(
    page: Annotated[int | None, typer.Option(help="page number", min=1)] = None,
    limit: Annotated[int | None, typer.Option(help="items per page", min=1)] = None,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Registrations waiting for a decision, oldest first."""
    answer = call(
        connect(server, token, state_dir),
        "GET",
        "/api/v1/registrations/pending",
        params={"page": page, "limit": limit},
    )
    emit(answer, output, columns=COLUMNS, rows=answer["data"], empty="no pending registrations")


@registrations_app.command("get")
def get(
    registration_id: IdArgument,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """One registration, with the target it would change as it is now."""
    emit(
        call(connect(server, token, state_dir), "GET", f"/api/v1/registrations/{registration_id}"),
        output,
    )


@registrations_app.command("approve")
def approve(
    registration_id: IdArgument,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Apply the registration; the node collects its new node token at its next poll."""
    answer = call(
        connect(server, token, state_dir),
        "POST",
        f"/api/v1/registrations/{registration_id}/approve",
    )
    if output is not Output.table:
        emit(answer, output)
        return
    typer.echo(
        f"approved {registration_id}: {answer.get('hostname')} is target "
        f"{answer.get('target_id')}; the node collects its token at its next poll"
    )


@registrations_app.command("reject")
def reject(
    registration_id: IdArgument,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why (recorded, and shown to the node)")
    ] = None,
    output: OutputOption = Output.table,
    server: ServerOption = None,
    token: TokenOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Discard the registration: nothing changes; the node is told at its next poll."""
    answer = call(
        connect(server, token, state_dir),
        "POST",
        f"/api/v1/registrations/{registration_id}/reject",
        body={"reason": reason} if reason else None,
    )
    if output is not Output.table:
        emit(answer, output)
        return
    typer.echo(f"rejected {registration_id} ({answer.get('hostname')})")


def register(app: typer.Typer) -> None:
    app.add_typer(registrations_app, name="registrations")
