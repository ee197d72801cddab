"""Rule files on disk: atomic installs, unique bounded backups, restore, fail-closed checks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aami.common.files import write_atomic
from aami.prometheus.rule_files import RuleFileStore, promtool_budget, promtool_check

GOOD = "groups:\n- name: aami-g\n  rules:\n  - alert: A\n    expr: up == 0\n"


def test_file_names_are_safe() -> None:
    assert RuleFileStore.file_name("") == "global.yml"
    assert RuleFileStore.file_name("grp-123") == "group-grp-123.yml"
    for bad in ("../etc", "a/b", "..", "UPPER", ""[:0] + " x"):
        with pytest.raises(ValueError, match="cannot name"):
            RuleFileStore.file_name(bad)
    assert RuleFileStore.scope_of("group-grp-1.yml") == "grp-1"
    assert RuleFileStore.scope_of("global.yml") == ""
    assert RuleFileStore.scope_of("system-alerts.yml") is None


def test_install_backs_up_and_restore_undoes(tmp_path: Path) -> None:
    store = RuleFileStore(tmp_path, backups=True)
    store.ensure()
    write_atomic(tmp_path / "group-a.yml", "old a\n")
    undo = store.install(store.stage({"group-a.yml": "new a\n", "group-b.yml": "new b\n"}))
    assert (tmp_path / "group-a.yml").read_text() == "new a\n"
    assert (tmp_path / "group-b.yml").read_text() == "new b\n"
    store.restore(undo)
    assert (tmp_path / "group-a.yml").read_text() == "old a\n"
    assert not (tmp_path / "group-b.yml").exists()  # it had not existed before


def test_backups_in_the_same_second_do_not_overwrite_and_are_bounded(tmp_path: Path) -> None:
    store = RuleFileStore(tmp_path, backups=True, keep=3)
    store.ensure()
    for index in range(6):
        write_atomic(tmp_path / "group-a.yml", f"version {index}\n")
        store.install(store.stage({"group-a.yml": f"version {index + 1}\n"}))
    backups = sorted((tmp_path / ".backups").iterdir())
    assert len(backups) == 3
    assert [b.read_text() for b in backups] == ["version 3\n", "version 4\n", "version 5\n"]


def test_backups_off_leaves_none_behind(tmp_path: Path) -> None:
    store = RuleFileStore(tmp_path, backups=False)
    store.ensure()
    write_atomic(tmp_path / "group-a.yml", "old\n")
    undo = store.install(store.stage({"group-a.yml": "new\n"}))
    store.forget(undo)
    assert list((tmp_path / ".backups").iterdir()) == []


def test_info_counts_rules(tmp_path: Path) -> None:
    store = RuleFileStore(tmp_path)
    store.ensure()
    write_atomic(tmp_path / "group-g.yml", GOOD)
    write_atomic(tmp_path / "system-alerts.yml", GOOD)  # not ours
    [info] = store.info()
    assert (info.name, info.group_id, info.rule_count) == ("group-g.yml", "g", 1)


def test_write_atomic_leaves_no_temp_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "x.yml", "a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["x.yml"]


def test_promtool_check(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yml"
    bad.write_text(GOOD.replace("up == 0", "up =="))
    assert promtool_check([good]).ok is True
    check = promtool_check([good, bad])
    assert check.ok is False
    assert "bad.yml" in check.output
    # the file to blame is named; the good one is not
    assert list(check.rejected) == [str(bad)]
    assert check.tool_failed is False


def test_promtool_missing_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    good = tmp_path / "good.yml"
    good.write_text(GOOD)
    check = promtool_check([good])
    assert check.ok is False
    assert check.tool_failed is True
    assert "promtool is not installed" in check.output


def test_the_promtool_budget_grows_with_the_files_each_process_checks() -> None:
    assert promtool_budget(30, 1) == 30
    assert promtool_budget(30, 1000) == 30
    assert promtool_budget(30, 5000) == 150  # 10,000 files over 2 promtool processes


def test_a_hanging_promtool_is_killed_at_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "promtool").write_text("#!/bin/sh\n/bin/sleep 600\n")
    (tmp_path / "promtool").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    good = tmp_path / "good.yml"
    good.write_text(GOOD)
    started = time.monotonic()
    check = promtool_check([good], timeout=0.5)
    assert time.monotonic() - started < 5
    assert check.ok is False
    assert check.tool_failed is True
    assert "did not finish within 0.5s" in check.output
