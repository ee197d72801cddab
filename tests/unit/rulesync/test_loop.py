"""The sync pass against a fake AAMI and a fake Prometheus (httpx.MockTransport); files are
validated by the real promtool."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from aami.rulesync.files import STATE_FILE, RulesDirectory
from aami.rulesync.loop import Stopper, StopRequested
from tests.unit.rulesync.support import Rig, make_rig, rule_file

V1 = {"global.yml": rule_file("global", 1), "group-grp-1.yml": rule_file("grp-1", 1)}
V2 = {"global.yml": rule_file("global", 1), "group-grp-1.yml": rule_file("grp-1", 2, expr="up < 1")}


def _inodes(rules_dir: Path) -> dict[str, tuple[int, int]]:
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(rules_dir.glob("*.yml"))
    }


def _texts(rules_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(rules_dir.glob("*.yml"))}


def _installed(tmp_path: Path) -> tuple[Rig, str]:
    rig = make_rig(tmp_path, V1)
    result = rig.sync().step()
    assert result.ok, result.error
    return rig, rig.aami.revision


def test_first_pass_installs_reloads_confirms_and_reports(tmp_path: Path) -> None:
    (tmp_path / "mine.yml").write_text("groups: []\n")  # not ours: left alone
    rig = make_rig(tmp_path, V1)
    result = rig.sync().step()
    assert result.ok
    assert result.changed
    assert _texts(tmp_path) == {**V1, "mine.yml": "groups: []\n"}
    assert rig.evaluator.reloads == 1
    assert rig.aami.reports == [{"loaded_revision": rig.aami.revision, "error": None}]
    first = rig.aami.fetches()[0]
    assert "If-None-Match" not in first.headers
    assert first.headers["Authorization"] == "Bearer evaluator-token-0123456789abcdef"
    assert (tmp_path / STATE_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [STATE_FILE]


def test_unchanged_set_is_a_304_no_rewrite_no_reload_but_a_report(tmp_path: Path) -> None:
    rig, revision = _installed(tmp_path)
    before = _inodes(tmp_path)
    sync = rig.sync()
    result = sync.step(wait=30)
    assert result.ok
    assert not result.changed
    request = rig.aami.fetches()[-1]
    assert request.headers["If-None-Match"] == f'"{revision}"'
    assert request.url.params["wait"] == "30"
    assert _inodes(tmp_path) == before
    assert rig.evaluator.reloads == 1
    assert rig.aami.reports[-1] == {"loaded_revision": revision, "error": None}


def test_a_new_revision_replaces_files_and_removes_those_no_longer_in_the_set(
    tmp_path: Path,
) -> None:
    rig, _ = _installed(tmp_path)
    sync = rig.sync()
    new = rig.aami.serve({"group-grp-1.yml": V2["group-grp-1.yml"]})
    result = sync.step(wait=30)
    assert result.ok
    assert result.changed
    assert _texts(tmp_path) == {"group-grp-1.yml": V2["group-grp-1.yml"]}
    assert [g["name"] for g in rig.evaluator.groups] == ["aami-grp-1"]
    assert rig.aami.reports[-1] == {"loaded_revision": new, "error": None}


def test_a_refused_file_name_is_never_written(tmp_path: Path) -> None:
    rig, old = _installed(tmp_path)
    before = _texts(tmp_path)
    bad = rig.aami.serve({**V2, "../escape.yml": rule_file("escape", 1)})
    sync = rig.sync()
    result = sync.step()
    assert not result.ok
    assert result.held
    assert "refused file name '../escape.yml'" in (result.error or "")
    assert not (tmp_path.parent / "escape.yml").exists()
    assert _texts(tmp_path) == before
    assert rig.evaluator.reloads == 1
    report = rig.aami.reports[-1]
    assert report["loaded_revision"] == old  # the last good rules still run, confirmed
    assert "escape.yml" in report["error"]
    # Held: the next request long-polls on the refused revision instead of retrying it.
    sync.step(wait=30)
    assert rig.aami.fetches()[-1].headers["If-None-Match"] == f'"{bad}"'
    assert rig.aami.reports[-1]["error"] == report["error"]


def test_a_set_promtool_refuses_keeps_the_old_files_and_reports_why(tmp_path: Path) -> None:
    rig, old = _installed(tmp_path)
    before = _inodes(tmp_path)
    rig.aami.serve({**V1, "group-grp-1.yml": rule_file("grp-1", 2, expr="up == (")})
    result = rig.sync().step()
    assert not result.ok
    assert result.held
    assert _inodes(tmp_path) == before
    assert rig.evaluator.reloads == 1
    report = rig.aami.reports[-1]
    assert report["loaded_revision"] == old
    assert "refused by promtool" in report["error"]
    assert "group-grp-1.yml" in report["error"]
    assert ".aami-sync-" not in report["error"]  # the staging path is not shown
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".aami-sync-")] == []


def test_a_failed_reload_restores_the_old_files(tmp_path: Path) -> None:
    rig, old = _installed(tmp_path)
    before = _texts(tmp_path)
    state = (tmp_path / STATE_FILE).read_text()
    rig.aami.serve({"group-grp-1.yml": V2["group-grp-1.yml"]})
    rig.evaluator.reload_status = 500
    result = rig.sync().step()
    assert not result.ok
    assert not result.held
    assert _texts(tmp_path) == before
    assert (tmp_path / STATE_FILE).read_text() == state
    report = rig.aami.reports[-1]
    assert report["loaded_revision"] == old
    assert "reload failed" in report["error"]
    assert "500" in report["error"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".aami-sync-")] == []


def test_a_reload_the_evaluator_does_not_apply_is_not_confirmed(tmp_path: Path) -> None:
    rig, _ = _installed(tmp_path)
    rig.evaluator.ignore_reloads = True
    rig.aami.serve(V2)
    result = rig.sync().step()
    assert not result.ok
    report = rig.aami.reports[-1]
    assert report["loaded_revision"] is None
    assert "aami-grp-1: runs revision 1, want revision 2" in report["error"]
    # It polled /api/v1/rules until --confirm-timeout, not once.
    assert sum(rig.clock.sleeps) >= 5
    # Once the evaluator catches up, the next pass (a 304) confirms and reports.
    rig.evaluator.load()
    sync = rig.sync()
    assert sync.step().ok
    assert rig.aami.reports[-1] == {"loaded_revision": rig.aami.revision, "error": None}


def test_confirm_waits_for_an_evaluator_that_applies_late(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, V1)
    rig.evaluator.ignore_reloads = True
    sync = rig.sync()

    def catch_up(seconds: float) -> None:
        rig.clock.now += seconds
        if rig.clock.now >= 2:  # vmalert applies a reload a moment after answering it
            rig.evaluator.load()

    sync._sleep = catch_up
    assert sync.step().ok
    assert rig.aami.reports == [{"loaded_revision": rig.aami.revision, "error": None}]


def test_confirm_compares_stamps_not_group_names(tmp_path: Path) -> None:
    rig, revision = _installed(tmp_path)
    # Same groups, other fingerprints: not what the files on disk say.
    for group in rig.evaluator.groups:
        group["rules"][0]["labels"]["aami_fingerprint"] = "0000"
    result = rig.sync().step()
    assert not result.ok
    assert rig.aami.reports[-1]["loaded_revision"] is None
    assert "want revision" in rig.aami.reports[-1]["error"]
    assert revision


def test_aami_down_keeps_the_last_good_rules(tmp_path: Path) -> None:
    rig, _ = _installed(tmp_path)
    before = _inodes(tmp_path)
    reports = len(rig.aami.reports)
    rig.aami.down = True
    result = rig.sync().step()
    assert not result.ok
    assert not result.held
    assert "AAMI" in (result.error or "")
    assert "evaluator-token" not in (result.error or "")
    assert _inodes(tmp_path) == before
    assert rig.evaluator.reloads == 1
    assert len(rig.aami.reports) == reports


def test_the_evaluator_down_is_reported_without_a_loaded_revision(tmp_path: Path) -> None:
    rig, _ = _installed(tmp_path)
    rig.evaluator.down = True
    result = rig.sync().step()
    assert not result.ok
    report = rig.aami.reports[-1]
    assert report["loaded_revision"] is None
    assert "cannot reach prometheus" in report["error"]


def test_a_restart_finds_what_is_installed_and_does_not_rewrite(tmp_path: Path) -> None:
    rig, revision = _installed(tmp_path)
    before = _inodes(tmp_path)
    restarted = rig.sync()
    assert restarted.installed is not None
    assert restarted.installed.revision == revision
    assert restarted.installed.kind == "prometheus"
    assert restarted.step().ok
    assert rig.aami.fetches()[-1].headers["If-None-Match"] == f'"{revision}"'
    assert _inodes(tmp_path) == before
    assert rig.evaluator.reloads == 1
    assert rig.aami.reports[-1] == {"loaded_revision": revision, "error": None}


def test_a_file_changed_by_hand_is_rewritten(tmp_path: Path) -> None:
    rig, revision = _installed(tmp_path)
    (tmp_path / "global.yml").write_text(rule_file("global", 9))
    sync = rig.sync()
    assert sync.installed is None
    assert sync.step().ok
    assert _texts(tmp_path) == V1
    assert "If-None-Match" not in rig.aami.fetches()[-1].headers
    assert rig.aami.reports[-1] == {"loaded_revision": revision, "error": None}


def test_an_empty_set_removes_our_files(tmp_path: Path) -> None:
    rig, _ = _installed(tmp_path)
    (tmp_path / "other.yml").write_text("groups: []\n")
    empty = rig.aami.serve({})
    assert rig.sync().step().ok
    assert sorted(p.name for p in tmp_path.glob("*.yml")) == ["other.yml"]
    assert rig.aami.reports[-1] == {"loaded_revision": empty, "error": None}


class _CountingStop(threading.Event):
    """Stops the loop after ``passes`` pauses, recording each pause instead of waiting."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.passes = passes
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout or 0)
        if len(self.pauses) >= self.passes:
            self.set()
        return self.is_set()


def test_the_loop_long_polls_when_all_is_well(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, V1, wait=25)
    stop = _CountingStop(3)
    rig.sync().run_forever(stop)
    waits = [r.url.params.get("wait") for r in rig.aami.fetches()]
    assert waits == [None, "25", "25"]  # the first pass answers at once after a start


def test_the_loop_backs_off_while_aami_is_down(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, V1, retry_min=1, retry_max=8)
    rig.aami.down = True
    stop = _CountingStop(6)
    rig.sync().run_forever(stop)
    assert stop.pauses == [1, 2, 4, 8, 8, 8]
    assert list(tmp_path.glob("*.yml")) == []


def test_a_stop_while_files_are_swapped_waits_for_the_swap_to_end() -> None:
    stopper = Stopper()
    steps: list[str] = []

    def swap() -> None:
        with stopper.shield():
            stopper.request()  # SIGTERM here does not interrupt the section
            steps.append("swapped")

    with pytest.raises(StopRequested):
        swap()
    assert steps == ["swapped"]
    assert stopper.event.is_set()
    with pytest.raises(StopRequested):
        stopper.request()  # outside a section it stops at once


def test_the_rule_sets_kind_picks_the_checker(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, V1)
    rig.aami.serve({"global.yml": rule_file("global", 1, expr="up == (")}, kind="vmalert")
    result = rig.sync().step()
    assert not result.ok
    assert "refused by vmalert" in (result.error or "")
    assert list(tmp_path.glob("*.yml")) == []


def test_kind_given_on_the_command_line_wins(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, V1, kind="vmalert")
    assert rig.sync().step().ok  # vmalert -dryRun accepted the set; the fake answered
    installed = RulesDirectory(tmp_path).installed()
    assert installed is not None
    assert installed.kind == "vmalert"
