"""mount-check (paths with spaces and glob characters) and process-running (long names)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
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


@pytest.fixture
def long_named_process(tmp_path: Path) -> Iterator[str]:
    """A process whose executable is named nvidia-persistenced (19 bytes; comm keeps 15)."""
    sleep = shutil.which("sleep")
    assert sleep is not None
    name = "nvidia-persistenced"
    binary = tmp_path / name
    shutil.copy(sleep, binary)
    process = subprocess.Popen([str(binary), "300"])
    try:
        # Until the child has exec'd, its comm is still the parent's.
        wait_for(
            lambda: Path(f"/proc/{process.pid}/comm").read_text().strip() == name[:15],
            timeout=10,
            what="the process to exec",
        )  # name[:15]: what the old check compared against, and missed
        yield name
    finally:
        process.kill()
        process.wait()


@pytest.mark.xdist_group("nvidia-persistenced")  # each sees the processes the other starts
def test_process_running_matches_names_longer_than_comm(
    tmp_path: Path, long_named_process: str
) -> None:
    config = {"processes": f"{long_named_process},nv-fabricmanager,sleep"}
    result = run("process-running", tmp_path, path=SYSTEM, config=config)
    assert result.returncode == 0, result.stderr
    assert result.value("aami_process_running", process=long_named_process) == 1
    assert result.value("aami_process_count", process=long_named_process) == 1
    assert result.value("aami_process_running", process="nv-fabricmanager") == 0


@pytest.mark.xdist_group("nvidia-persistenced")  # each sees the processes the other starts
def test_process_running_does_not_count_a_truncated_prefix(tmp_path: Path) -> None:
    # A process named nvidia-persistenced-x has the same 15-byte comm: not a match.
    sleep = shutil.which("sleep")
    assert sleep is not None
    other = tmp_path / "nvidia-persistenced-x"
    shutil.copy(sleep, other)
    process = subprocess.Popen([str(other), "300"])
    try:
        wait_for(
            lambda: Path(f"/proc/{process.pid}/comm").read_text().strip() == other.name[:15],
            timeout=10,
            what="the process to exec",
        )
        config = {"processes": "nvidia-persistenced"}
        result = run("process-running", tmp_path, path=SYSTEM, config=config)
        assert result.value("aami_process_running", process="nvidia-persistenced") == 0
    finally:
        process.kill()
        process.wait()


def test_disk_usage(tmp_path: Path) -> None:
    missing = f"{tmp_path}/missing"
    result = run("disk-usage", tmp_path, path=SYSTEM, config={"mountpoints": f"/,{missing}"})
    assert result.value("aami_disk_mount_present", mountpoint=missing) == 0
    assert result.value("aami_disk_mount_present", mountpoint="/") == 1
    assert 0 <= result.value("aami_disk_used_percent", mountpoint="/") <= 100
    assert result.value("aami_disk_readonly", mountpoint="/") in (0, 1)
