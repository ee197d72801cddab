"""The rules directory: names refused, atomic install, restore, the state file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from aami.rulesync.files import (
    STATE_FILE,
    FileNameRefused,
    Installed,
    RulesDirectory,
    check_name,
    sha256_text,
)


def _installed(revision: str, files: dict[str, str]) -> Installed:
    return Installed(revision, "prometheus", {n: sha256_text(t) for n, t in files.items()})


def _install(directory: RulesDirectory, revision: str, files: dict[str, str]) -> None:
    undo = directory.install(directory.stage(files), _installed(revision, files))
    directory.commit(undo)


@pytest.mark.parametrize(
    "name", ["global.yml", "group-grp-1.yml", "group-team_a.yml", "group-gpu.v100.yml"]
)
def test_names_we_write(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "../global.yml",
        "group-../x.yml",
        "group-a/b.yml",
        "/etc/passwd",
        "group-A.yml",
        ".global.yml",
        "global.yaml",
        "other.yml",
        "group-.yml",
        "group-a..yml",
        "group-a.yml\n",
    ],
)
def test_names_refused(name: str) -> None:
    with pytest.raises(FileNameRefused):
        check_name(name)


def test_a_refused_name_writes_nothing(tmp_path: Path) -> None:
    directory = RulesDirectory(tmp_path / "rules")
    with pytest.raises(FileNameRefused):
        directory.stage({"global.yml": "a", "../escape.yml": "b"})
    assert not (tmp_path / "escape.yml").exists()
    assert not (tmp_path / "rules").exists() or list((tmp_path / "rules").iterdir()) == []


def test_install_replaces_ours_removes_stale_ours_and_leaves_the_rest(tmp_path: Path) -> None:
    directory = RulesDirectory(tmp_path)
    (tmp_path / "group-old.yml").write_text("old")
    (tmp_path / "static.yml").write_text("static")
    (tmp_path / "group-notes.txt").write_text("notes")
    _install(directory, "r1", {"global.yml": "g1", "group-a.yml": "a1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        STATE_FILE,
        "global.yml",
        "group-a.yml",
        "group-notes.txt",
        "static.yml",
    ]
    assert (tmp_path / "global.yml").read_text() == "g1"
    assert stat.S_IMODE((tmp_path / "global.yml").stat().st_mode) == 0o644
    assert directory.installed() == _installed("r1", {"global.yml": "g1", "group-a.yml": "a1"})


def test_restore_puts_back_files_and_state(tmp_path: Path) -> None:
    directory = RulesDirectory(tmp_path)
    first = {"global.yml": "g1", "group-a.yml": "a1"}
    _install(directory, "r1", first)
    state = (tmp_path / STATE_FILE).read_text()
    second = {"global.yml": "g2", "group-b.yml": "b2"}
    undo = directory.install(directory.stage(second), _installed("r2", second))
    assert directory.installed() == _installed("r2", second)
    directory.restore(undo)
    assert {p.name: p.read_text() for p in tmp_path.glob("*.yml")} == first
    assert (tmp_path / STATE_FILE).read_text() == state
    assert directory.installed() == _installed("r1", first)
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".aami-sync-")] == []


def test_restore_of_a_first_install_leaves_no_state(tmp_path: Path) -> None:
    directory = RulesDirectory(tmp_path)
    undo = directory.install(
        directory.stage({"global.yml": "g"}), _installed("r", {"global.yml": "g"})
    )
    directory.restore(undo)
    assert list(tmp_path.iterdir()) == []


def test_installed_is_none_when_the_directory_does_not_match_its_state(tmp_path: Path) -> None:
    directory = RulesDirectory(tmp_path)
    _install(directory, "r1", {"global.yml": "g1"})
    assert directory.installed() is not None
    (tmp_path / "group-extra.yml").write_text("x")
    assert directory.installed() is None
    (tmp_path / "group-extra.yml").unlink()
    (tmp_path / "global.yml").write_text("edited")
    assert directory.installed() is None
    (tmp_path / "global.yml").write_text("g1")
    assert directory.installed() is not None
    (tmp_path / STATE_FILE).write_text("{not json")
    assert directory.installed() is None


def test_leftovers_of_an_interrupted_run_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".aami-sync-stage-x").mkdir()
    (tmp_path / ".aami-sync-stage-x" / "global.yml").write_text("g")
    (tmp_path / ".aami-sync-state-y").write_text("{}")
    (tmp_path / ".keep").write_text("")
    RulesDirectory(tmp_path).ensure()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep"]
