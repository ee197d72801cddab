"""The check watchdog: a dead agent, even one killed by SIGKILL, takes its checks along."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aami.agent import runner
from aami.agent.config import AgentConfig
from aami.agent.runner import Watchdog, run_once
from aami.agent.watchdog import command
from tests.agent.support import (
    NODE_TOKEN,
    FakeServer,
    agent_yaml,
    children,
    ignored_signals,
    live_group_members,
    make_check,
    pid_alive,
    pin,
    serve,
)
from tests.support.wait import wait_for

WATCHDOG_FILE = "aami/agent/watchdog.py"

# A python check that records the agent's watchdog (a child of its own parent), optionally
# kills it, and prints a metric.
SPY_CHECK = """\
import os, signal, sys, time
agent, out, kill = os.getppid(), sys.argv[1], sys.argv[2] == "kill"
found = []
for entry in os.listdir("/proc"):
    try:
        stat = open(f"/proc/{entry}/stat").read()
        cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
    except OSError:
        continue
    if int(stat[stat.rindex(")") + 2 :].split()[1]) == agent and b"WATCHDOG_FILE" in cmdline:
        found.append(int(entry))
if kill:
    for pid in found:
        os.kill(pid, signal.SIGKILL)
        while open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)
open(out, "w").write(" ".join(map(str, found)))
print("spy_ok 1")
""".replace("WATCHDOG_FILE", WATCHDOG_FILE)


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    return AgentConfig(
        server_url="https://aami.test",
        token=NODE_TOKEN,
        target_id="tgt-1",
        hostname="gpu-node-01",
        textfile_dir=tmp_path / "textfile",
        cache_dir=tmp_path / "cache",
        parallelism=1,
        signing_keys_file=pin(tmp_path / "signing-keys.json"),
    )


@contextlib.contextmanager
def process_group(tmp_path: Path, name: str) -> Iterator[tuple[int, int]]:
    """A real process group: a leader with a background child; yields (pgid, child pid)."""
    pids = tmp_path / f"{name}.pids"
    leader = subprocess.Popen(
        ["/bin/sh", "-c", f'sleep 600 & echo "$!" > {pids}.tmp && mv {pids}.tmp {pids}; wait'],
        start_new_session=True,
    )
    try:
        child = wait_for(lambda: pids.exists() and int(pids.read_text()), timeout=10, what=name)
        yield leader.pid, child
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


def group_alive(pgid: int, child: int) -> bool:
    return bool(live_group_members(pgid)) and pid_alive(child)


def group_gone(pgid: int, child: int) -> bool:
    return not live_group_members(pgid) and not pid_alive(child)


def test_eof_kills_the_registered_groups_only(tmp_path: Path) -> None:
    with (
        process_group(tmp_path, "kept") as (kept, kept_child),
        process_group(tmp_path, "doomed") as (doomed, doomed_child),
    ):
        watchdog = subprocess.Popen(
            command(), stdin=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        # Junk and pgids 0 and 1 (our own group, init's) are ignored; so is an unknown group.
        messages = f"+{kept}\n+{doomed}\nnoise\n+\n+0\n+1\n-{2**22 + 7}\n-{kept}\n"
        _, stderr = watchdog.communicate(messages.encode(), timeout=10)

        assert watchdog.returncode == 0
        wait_for(lambda: group_gone(doomed, doomed_child), timeout=10, what="the doomed group")
        assert group_alive(kept, kept_child)
        assert stderr.decode() == f"aami-agent watchdog: agent gone, killed groups {doomed}\n"


def test_closing_after_unregistering_everything_kills_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with process_group(tmp_path, "check") as (pgid, child):
        watchdog = Watchdog.start()
        watchdog.register(pgid)
        watchdog.unregister(pgid)
        watchdog.close()

        assert watchdog.process.returncode == 0
        assert watchdog.pid not in children(os.getpid())  # reaped
        assert capfd.readouterr().err == ""  # the watchdog shares our stderr: it killed nothing
        assert group_alive(pgid, child)


def test_the_watchdog_outlives_stop_signals_in_its_own_session(tmp_path: Path) -> None:
    with process_group(tmp_path, "check") as (pgid, child):
        watchdog = Watchdog.start()
        try:
            assert os.getsid(watchdog.pid) == watchdog.pid
            stops = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
            wait_for(
                lambda: stops <= ignored_signals(watchdog.pid),
                timeout=10,
                what="the watchdog to ignore stop signals",
            )
            for signum in stops:
                os.kill(watchdog.pid, signum)
            watchdog.register(pgid)
        finally:
            watchdog.close()  # end of file while the group is registered: a dead agent

        assert watchdog.process.returncode == 0
        wait_for(lambda: group_gone(pgid, child), timeout=10, what="the registered group")


@pytest.mark.parametrize("command_name", ["once", "run"])
def test_a_killed_agent_takes_its_checks_and_their_children_along(
    tmp_path: Path, command_name: str
) -> None:
    pids = tmp_path / "pids"
    script = f'sleep 600 &\necho "$$ $!" > {pids}.tmp\nmv {pids}.tmp {pids}\nsleep 600\n'
    server = FakeServer()
    server.set_checks([make_check("hang", script, timeout=600)])
    log = tmp_path / "agent.log"
    with serve(server.handle) as url, log.open("wb") as log_file:
        agent = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from aami.agent.cli import agent_app; agent_app(prog_name='aami agent')",
                command_name,
                "--config",
                str(agent_yaml(tmp_path, url)),
                "--interval-seconds",
                "0.1",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        leader = child = 0
        try:
            wait_for(pids.exists, timeout=30, what="the check to start")
            leader, child = map(int, pids.read_text().split())
            assert pid_alive(leader)
            assert pid_alive(child)
            watchdogs = [pid for pid, cmd in children(agent.pid).items() if WATCHDOG_FILE in cmd]
            assert len(watchdogs) == 1

            agent.send_signal(signal.SIGKILL)
            agent.wait(10)

            wait_for(
                lambda: not pid_alive(leader) and not pid_alive(child),
                timeout=10,
                what="the check and its child to die with the agent",
            )
            wait_for(lambda: not pid_alive(watchdogs[0]), timeout=10, what="the watchdog to exit")
            killed = f"aami-agent watchdog: agent gone, killed groups {leader}\n"
            wait_for(lambda: killed in log.read_text(), timeout=10, what="the watchdog's line")
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            if leader:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(leader, signal.SIGKILL)


def test_a_normal_run_leaves_no_watchdog_behind(config: AgentConfig, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    server = FakeServer()
    server.set_checks(
        [make_check("spy", SPY_CHECK, language="python", config={"out": str(seen), "kill": ""})]
    )

    report = run_once(config, transport=server.transport)

    assert report.exit_code == 0, report.results
    (watchdog,) = map(int, seen.read_text().split())  # there was one while the check ran
    assert watchdog not in children(os.getpid())  # reaped, not even a zombie
    assert not pid_alive(watchdog)


def test_checks_go_on_when_the_watchdog_is_gone(
    config: AgentConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen = tmp_path / "seen"
    server = FakeServer()
    server.set_checks(
        [
            make_check(
                "killer", SPY_CHECK, language="python", config={"out": str(seen), "kill": "kill"}
            ),
            make_check("after-1", 'echo "after 1"\n'),
            make_check("after-2", 'echo "after 2"\n'),
        ]
    )

    with caplog.at_level(logging.WARNING, logger="aami.agent"):
        report = run_once(config, transport=server.transport)

    assert report.exit_code == 0, report.results
    assert seen.read_text()  # the check found and killed the watchdog
    gone = [r.getMessage() for r in caplog.records if "watchdog" in r.getMessage()]
    assert len(gone) == 1
    assert "is gone" in gone[0]
    assert (config.textfile_dir / "aami_after-2.prom").read_text() == "after 2\n"


def test_checks_run_without_a_watchdog_that_cannot_start(
    config: AgentConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runner, "watchdog_command", lambda: ["/nonexistent/python"])
    server = FakeServer()
    server.set_checks([make_check("c", 'echo "fine 1"\n')])

    with caplog.at_level(logging.WARNING, logger="aami.agent"):
        report = run_once(config, transport=server.transport)

    assert report.exit_code == 0, report.results
    assert "cannot start the check watchdog" in caplog.text
