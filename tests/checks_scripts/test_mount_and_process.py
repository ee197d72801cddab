"""mount-check (paths with spaces and glob characters) and process-running (long names)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.checks_scripts.support import run
from tests.support.wait import wait_for

SYSTEM = [Path("/usr/bin"), Path("/bin")]


def test_mount_check_keeps_spaces_and_globs(tmp_path: Path) -> None:
    spaced = tmp_path / "model store"
    spaced.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    glob = f"{tmp_path}/*"
    quoted = tmp_path / 'say "hi"'
    quoted.mkdir()
    paths = ",".join(["/proc", str(spaced), glob, str(quoted), "", "/"])
    result = run("mount-check", tmp_path, path=SYSTEM, config={"paths": paths})
    assert result.returncode == 0, result.stderr
    assert result.samples == {
        ("mount_status", (("path", "/proc"),)): 1.0,
        ("mount_status", (("path", str(spaced)),)): 0.0,
        ("mount_status", (("path", glob),)): 0.0,  # checked as written, not expanded
        ("mount_status", (("path", str(quoted)),)): 0.0,
        ("mount_status", (("path", "/"),)): 1.0,
    }


def test_mount_check_without_mountpoint_fails(tmp_path: Path) -> None:
    bash_only = tmp_path / "bin"
    bash_only.mkdir()
    result = run("mount-check", tmp_path, path=[bash_only], config={"paths": "/proc"})
    assert result.returncode != 0
    assert "mountpoint" in result.stderr
    assert result.samples == {}


def exec_done(pid: int, binary: Path) -> bool:
    """The child has finished exec'ing binary: comm, exe and argv all name it.

    comm changes part-way through exec, before the new argv is in place; a check run in
    that window sees only the 15-byte comm and (rightly) counts it as the truncated name.
    """
    proc = Path(f"/proc/{pid}")
    try:
        comm = (proc / "comm").read_text().strip()
        exe = (proc / "exe").readlink()
        argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return comm == binary.name[:15] and exe == binary and argv0 == bytes(binary)


@contextmanager
def running(tmp_path: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """``sleep`` copied to ``name`` and running, until the block ends."""
    sleep = shutil.which("sleep")
    assert sleep is not None
    binary = tmp_path / name
    shutil.copy(sleep, binary)
    process = subprocess.Popen([str(binary), "300"])
    try:
        wait_for(lambda: exec_done(process.pid, binary), timeout=10, what="the process to exec")
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def daemon() -> str:
    """A name like nvidia-persistenced (19 bytes; /proc/PID/comm keeps 15), unique to the
    test: the check counts every process on the machine, and no other may share it."""
    return f"nvidia-{uuid.uuid4().hex[:12]}"


def others(name: str) -> list[tuple[str, str, str]]:
    """Every process whose comm reads like ``name`` (pid, comm, state), for a failure."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            comm = (entry / "comm").read_text().strip()
            if entry.name.isdigit() and comm == name[:15]:
                found.append((entry.name, comm, state(int(entry.name))))
        except OSError:
            continue
    return found


def test_process_running_matches_names_longer_than_comm(tmp_path: Path, daemon: str) -> None:
    with running(tmp_path, daemon):
        config = {"processes": f"{daemon},nv-fabricmanager,sleep"}
        result = run("process-running", tmp_path, path=SYSTEM, config=config)
    assert result.returncode == 0, result.stderr
    assert result.value("aami_process_running", process=daemon) == 1
    assert result.value("aami_process_count", process=daemon) == 1
    assert result.value("aami_process_running", process="nv-fabricmanager") == 0


def test_process_running_does_not_count_a_truncated_prefix(tmp_path: Path, daemon: str) -> None:
    # A process named <daemon>-x has the same 15-byte comm: not a match.
    with running(tmp_path, f"{daemon}-x"):
        result = run("process-running", tmp_path, path=SYSTEM, config={"processes": daemon})
        seen = others(daemon)
    assert result.value("aami_process_running", process=daemon) == 0, seen


def test_process_running_does_not_count_a_zombie(tmp_path: Path, daemon: str) -> None:
    # The daemon crashed and its parent has not reaped it: comm is still there, but nothing
    # runs. It must read 0, or the "not running" alert never fires.
    with running(tmp_path, daemon) as process:
        os.kill(process.pid, signal.SIGKILL)  # not waited for: stays a zombie
        wait_for(lambda: state(process.pid) == "Z", timeout=10, what="the process to die")
        result = run("process-running", tmp_path, path=SYSTEM, config={"processes": daemon})
        seen = others(daemon)
    assert result.returncode == 0, result.stderr
    assert result.value("aami_process_running", process=daemon) == 0, seen
    assert result.value("aami_process_count", process=daemon) == 0, seen


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_disk_usage(tmp_path: Path) -> None:
    missing = f"{tmp_path}/missing"
    result = run("disk-usage", tmp_path, path=SYSTEM, config={"mountpoints": f"/,{missing}"})
    assert result.value("aami_disk_mount_present", mountpoint=missing) == 0
    assert result.value("aami_disk_mount_present", mountpoint="/") == 1
    assert 0 <= result.value("aami_disk_used_percent", mountpoint="/") <= 100
    assert result.value("aami_disk_readonly", mountpoint="/") in (0, 1)
