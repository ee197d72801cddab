"""The check watchdog: kill the agent's check process groups when the agent dies.

The agent runs this file as a process of its own (``runner.Watchdog`` is the agent's side)
and tells it on a pipe which process groups are running checks: ``+<pgid>`` after spawning a
check, ``-<pgid>`` once that group is killed. At end of file, whether the agent closed the
pipe or the kernel closed it for a dead agent (even one killed by SIGKILL), every group still
registered gets SIGKILL and the watchdog exits. A normal run unregisters every group before
closing, so the watchdog then kills nothing.

It imports only ``os``, ``signal`` and ``sys`` and runs as ``python -I -S <this file>``, so it
starts in milliseconds. The agent puts it in its own session, out of reach of a terminal's
Ctrl-C, and it ignores SIGINT, SIGTERM and SIGHUP: a stop signal meant for the agent must not
take it away first. It lives exactly as long as the agent's end of the pipe.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["command", "main"]


def command() -> list[str]:
    """The argv that starts the watchdog: this file, isolated and without ``site``."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__)]


def main() -> None:
    """Track ``+pgid``/``-pgid`` lines on stdin; at end of file SIGKILL every group left."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    groups: set[int] = set()
    pending = b""
    while True:
        try:
            chunk = os.read(0, 4096)
        except OSError:  # stdin unreadable: treat it like a dead agent
            break
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            _apply(groups, line)
    killed = [pgid for pgid in sorted(groups) if _kill(pgid)]
    if killed:
        try:
            groups_text = " ".join(map(str, killed))
            sys.stderr.write(f"aami-agent watchdog: agent gone, killed groups {groups_text}\n")
            sys.stderr.flush()
        except OSError:  # nobody left to read it
            pass


def _apply(groups: set[int], line: bytes) -> None:
    """Apply one ``+pgid`` or ``-pgid`` line; anything else is ignored."""
    try:
        pgid = int(line[1:])
    except ValueError:
        return
    if pgid <= 1:  # 0 would be our own group, 1 init's
        return
    if line.startswith(b"+"):
        groups.add(pgid)
    elif line.startswith(b"-"):
        groups.discard(pgid)


def _kill(pgid: int) -> bool:
    """SIGKILL a process group; False if it is already gone (or not ours to kill)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    main()
    os._exit(0)  # the agent waits for this exit: skip the interpreter's teardown
