"""``aami stack up|down``: the all-in-one local stack, and stopping and resetting it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aami.cli.client import DEFAULT_STATE_DIR, ExitCode, fail

__all__ = ["stack_app"]

stack_app = typer.Typer(help="The all-in-one local stack.", no_args_is_help=True)

StateDir = Annotated[
    Path,
    typer.Option(envvar="AAMI_STATE_DIR", help="where configs, data and logs go"),
]
_RESET = (
    "delete the stack's state in the state dir (database, keys, tokens, TLS, rule files, "
    "Prometheus and Alertmanager data, logs) {when}; asks unless --yes"
)
Yes = Annotated[bool, typer.Option("--yes", "-y", help="do not ask before --reset deletes")]


def _reset(state_dir: Path, *, yes: bool) -> None:
    """Show what goes, ask (unless --yes), delete; only the stack's own entries in its own
    state dir."""
    from aami.stack.control import StackStateError, reset_plan, reset_state

    if not state_dir.exists():
        typer.echo(f"nothing to reset: {state_dir.resolve()} does not exist")
        return
    try:
        delete, _ = reset_plan(state_dir)
    except StackStateError as exc:
        fail(str(exc), ExitCode.USAGE)
    if not delete:
        typer.echo(f"nothing to reset in {state_dir.resolve()}")
        return
    typer.echo(f"--reset deletes in {state_dir.resolve()}: {', '.join(p.name for p in delete)}")
    if not yes and not typer.confirm("Delete the stack's state?", default=False):
        fail("nothing deleted (--yes skips the question)")
    try:
        deleted, kept = reset_state(state_dir)
    except (StackStateError, OSError) as exc:
        fail(f"reset stopped: {exc}")
    typer.echo(f"deleted the stack's state: {len(deleted)} entries")
    if kept:
        typer.echo(f"kept (not made by the stack): {', '.join(p.name for p in kept)}")


@stack_app.command("up")
def stack_up(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    port: Annotated[
        int, typer.Option(envvar="AAMI_STACK_SERVER_PORT", help="AAMI server port")
    ] = 8080,
    prometheus_port: Annotated[
        int, typer.Option(envvar="AAMI_STACK_PROMETHEUS_PORT", help="Prometheus port")
    ] = 19090,
    node_exporter_port: Annotated[
        int, typer.Option(envvar="AAMI_STACK_NODE_EXPORTER_PORT", help="node_exporter port")
    ] = 19100,
    alertmanager_port: Annotated[
        int, typer.Option(envvar="AAMI_STACK_ALERTMANAGER_PORT", help="Alertmanager port")
    ] = 19093,
    webhook_port: Annotated[
        int, typer.Option(envvar="AAMI_STACK_WEBHOOK_PORT", help="local notification receiver")
    ] = 19095,
    demo: Annotated[
        bool, typer.Option(help="load the demo groups, rules, mount check and agent")
    ] = True,
    victoria_metrics: Annotated[
        bool,
        typer.Option(
            "--victoria-metrics",
            help="also run victoria-metrics, vmagent and vmalert (AAMI's rules through `aami "
            "rules sync`, alerting the stack's Alertmanager); Debian package victoria-metrics",
        ),
    ] = False,
    victoria_metrics_port: Annotated[
        int,
        typer.Option(envvar="AAMI_STACK_VICTORIA_METRICS_PORT", help="victoria-metrics port"),
    ] = 18428,
    vmagent_port: Annotated[
        int, typer.Option(envvar="AAMI_STACK_VMAGENT_PORT", help="vmagent port")
    ] = 18429,
    vmalert_port: Annotated[
        int, typer.Option(envvar="AAMI_STACK_VMALERT_PORT", help="vmalert port")
    ] = 18880,
    alertmanager_cluster: Annotated[
        bool,
        typer.Option(
            "--alertmanager-cluster",
            help="run two gossiping Alertmanagers (the second on --alertmanager-port + 1, "
            "gossip on 19096 and 19097); Prometheus alerts both, AAMI manages both",
        ),
    ] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help=_RESET.format(when="before starting"))
    ] = False,
    yes: Yes = False,
) -> None:
    """Run the server, Prometheus, Alertmanager, node_exporter and the agent until Ctrl-C
    (or `aami stack down`).

    Prometheus and node_exporter get ports next to, not on, their usual ones so that the
    services Debian's packages start do not collide with the stack.
    """
    from aami.stack.control import running_supervisor
    from aami.stack.runner import StackError, StackPorts, run_stack

    running = running_supervisor(state_dir)
    if running is not None:
        fail(
            f"a stack already runs from {state_dir.resolve()} (pid {running.pid}); stop it "
            "with `aami stack down` first"
        )
    if reset:
        _reset(state_dir, yes=yes)
    ports = StackPorts(
        server=port,
        prometheus=prometheus_port,
        node_exporter=node_exporter_port,
        alertmanager=alertmanager_port,
        webhook=webhook_port,
        victoria_metrics=victoria_metrics_port,
        vmagent=vmagent_port,
        vmalert=vmalert_port,
        alertmanager_peer=alertmanager_port + 1,
    )
    try:
        code = run_stack(
            state_dir.resolve(),
            ports=ports,
            demo=demo,
            victoria_metrics=victoria_metrics,
            alertmanager_cluster=alertmanager_cluster,
        )
    except StackError as exc:
        fail(str(exc))
    raise typer.Exit(code)


@stack_app.command("down")
def stack_down(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    timeout: Annotated[
        float,
        typer.Option(help="seconds to wait for a clean stop before SIGKILL", min=0),
    ] = 30.0,
    reset: Annotated[
        bool, typer.Option("--reset", help=_RESET.format(when="once it is stopped"))
    ] = False,
    yes: Yes = False,
) -> None:
    """Stop the stack `aami stack up` runs from this state dir (in another terminal, too):
    SIGTERM, then SIGKILL what is still running after --timeout."""
    from aami.stack.control import stop_stack

    where = state_dir.resolve()
    report = stop_stack(where, timeout=timeout)
    if report is None or not report.outcomes:
        typer.echo(f"no stack is running from {where}")
    else:
        for process, how in report.outcomes:
            typer.echo(f"{how:<8} {process.name} (pid {process.pid})")
        if not report.all_gone:
            fail("some processes survived SIGKILL; see above")
        typer.echo(f"the stack in {where} is down")
    if reset:
        _reset(state_dir, yes=yes)
