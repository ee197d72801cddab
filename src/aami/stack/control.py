"""``aami stack down`` and ``--reset``: stop a stack started in another terminal, and remove
its state.

``aami stack up`` records itself and every child it starts in ``<state dir>/stack.json``
(pid and start time, so a recycled pid is never signalled) and removes the record when it
stops. ``down`` sends the supervisor SIGTERM (it stops its children as Ctrl-C does), waits,
and sends SIGKILL to whatever is still running after the timeout. ``reset`` deletes only
the entries ``stack up`` makes, inside the state dir, never following a symbolic link.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "RECORD",
    "STATE_ENTRIES",
    "Recorded",
    "StackStateError",
    "Stopped",
    "clear_record",
    "read_record",
    "recorded",
    "reset_plan",
    "reset_state",
    "running_supervisor",
    "stop_stack",
    "write_record",
]

RECORD = "stack.json"
TOKEN = "admin-token"  # every state dir ``stack up`` made has one
SUPERVISOR = "aami stack up"
# What ``stack up`` makes in its state dir; reset deletes these and nothing else.
STATE_ENTRIES = (
    RECORD,
    TOKEN,
    "sd-token",
    "history-token",
    "evaluator-token",
    "signing.key",
    "aami.db",
    "aami.db-wal",
    "aami.db-shm",
    "aami.db-journal",
    "aami.db.encryption-key",
    "aami.db.publisher-lock",
    "aami.db.signing-key",
    "tls",
    "prometheus.yml",
    "prometheus-data",
    "vmagent.yml",
    "vmagent-data",
    "victoria-metrics-data",
    "rules",
    "alertmanager",
    "alertmanager-data",
    "alertmanager-peer-data",
    "textfile",
    "logs",
    "agent-cache",
    "agent.yaml",
    "notifications.jsonl",
    "demo-mount",
)


class StackStateError(Exception):
    """The state dir cannot be stopped or reset as asked; the message says why."""


# --- processes ------------------------------------------------------------------------


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone (a zombie
    counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name in parentheses may hold spaces
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class Recorded:
    name: str
    pid: int
    started: int  # start time in clock ticks: tells a recycled pid apart

    def alive(self) -> bool:
        return start_time(self.pid) == self.started

    def signal(self, signum: signal.Signals) -> None:
        if self.alive():
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "start_time": self.started}


def recorded(name: str, pid: int) -> Recorded | None:
    """A running process as the record keeps it."""
    started = start_time(pid)
    return None if started is None else Recorded(name, pid, started)


# --- the record -----------------------------------------------------------------------


def write_record(state_dir: Path, children: Iterable[Recorded], **facts: Any) -> None:
    """Record this process (the supervisor) and its children; written whole, then renamed
    (rename(2) is atomic), so ``down`` never reads half a file."""
    me = recorded(SUPERVISOR, os.getpid())
    assert me is not None
    document = {
        "supervisor": me.as_json(),
        "children": [child.as_json() for child in children],
        **facts,
    }
    tmp = state_dir / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(state_dir / RECORD)


def clear_record(state_dir: Path) -> None:
    """Remove the record if it is this process's."""
    found = read_record(state_dir)
    if found is not None and found[0].pid == os.getpid():
        (state_dir / RECORD).unlink(missing_ok=True)


def read_record(state_dir: Path) -> tuple[Recorded, list[Recorded]] | None:
    """The supervisor and children a stack recorded, or None without a readable record."""
    try:
        document = json.loads((state_dir / RECORD).read_text())
        entries = [document["supervisor"], *document["children"]]
        processes = [Recorded(str(e["name"]), int(e["pid"]), int(e["start_time"])) for e in entries]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return processes[0], processes[1:]


def running_supervisor(state_dir: Path) -> Recorded | None:
    """The ``aami stack up`` that runs from this state dir, if one does."""
    found = read_record(state_dir)
    if found is None or not found[0].alive():
        return None
    return found[0]


# --- down -----------------------------------------------------------------------------


@dataclass
class Stopped:
    """What ``down`` did, process by process: ``stopped``, ``killed`` or ``still running``."""

    outcomes: list[tuple[Recorded, str]] = field(default_factory=list)

    @property
    def all_gone(self) -> bool:
        return all(how != "still running" for _, how in self.outcomes)


def _wait_gone(processes: list[Recorded], deadline: float) -> list[Recorded]:
    """Wait until every process is gone or the deadline passes; return those still there."""
    while True:
        left = [p for p in processes if p.alive()]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def stop_stack(state_dir: Path, *, timeout: float = 30.0) -> Stopped | None:
    """Stop the stack recorded in ``state_dir``; None when there is no record.

    SIGTERM goes to the supervisor, which stops its children as Ctrl-C does (or straight to
    the children when the supervisor is gone); what still runs after ``timeout`` gets
    SIGKILL."""
    found = read_record(state_dir)
    if found is None:
        return None
    supervisor, children = found
    running = [p for p in (supervisor, *children) if p.alive()]
    if supervisor.alive():
        supervisor.signal(signal.SIGTERM)
    else:
        for child in running:
            child.signal(signal.SIGTERM)
    left = _wait_gone(running, time.monotonic() + timeout)
    for process in left:
        process.signal(signal.SIGKILL)
    still = _wait_gone(left, time.monotonic() + 5)
    report = Stopped()
    for process in running:
        how = "still running" if process in still else "killed" if process in left else "stopped"
        report.outcomes.append((process, how))
    if report.all_gone:
        (state_dir / RECORD).unlink(missing_ok=True)
    return report


# --- reset ----------------------------------------------------------------------------


def _refuse_unsafe(state_dir: Path) -> Path:
    resolved = state_dir.resolve()
    if resolved in (Path("/"), Path.home().resolve(), Path.cwd().resolve()):
        raise StackStateError(
            f"refusing to reset {resolved}: the root, your home or the current directory is "
            "never a stack's own state dir; nothing deleted"
        )
    if not (resolved / TOKEN).is_file():
        raise StackStateError(
            f"refusing to reset {resolved}: it has no {TOKEN}, so `aami stack up` did not "
            "make it; nothing deleted"
        )
    supervisor = running_supervisor(resolved)
    if supervisor is not None:
        raise StackStateError(
            f"a stack is running from {resolved} (pid {supervisor.pid}); stop it first "
            "with `aami stack down`"
        )
    return resolved


def reset_plan(state_dir: Path) -> tuple[list[Path], list[Path]]:
    """What a reset would delete (the stack's own entries) and keep (anything else), or
    raise StackStateError when the directory is not a stopped stack's state dir."""
    resolved = _refuse_unsafe(state_dir)
    entries = [resolved / name for name in STATE_ENTRIES]
    delete = [path for path in entries if path.is_symlink() or path.exists()]
    keep = sorted(p for p in resolved.iterdir() if p.name not in STATE_ENTRIES)
    return delete, keep


def _remove(path: Path, inside: Path) -> None:
    # A link is removed itself, never what it points at; rmtree does the same inside.
    if path.parent != inside:
        raise StackStateError(f"refusing to delete {path}: it is outside {inside}")
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def reset_state(state_dir: Path) -> tuple[list[Path], list[Path]]:
    """Delete the stack's own entries in its state dir (the database, keys, tokens, TLS,
    rule files, Prometheus and Alertmanager data, logs); keep anything else. The state dir
    itself goes when nothing else is left in it. Returns (deleted, kept)."""
    delete, keep = reset_plan(state_dir)
    resolved = state_dir.resolve()
    for path in delete:
        _remove(path, resolved)
    if not keep:
        resolved.rmdir()
    return delete, keep
