"""The reconciler's scheduling with a target of our own: backoff, collapsed history,
fencing, tickets, history pruning."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from aami.db.migrate import upgrade
from aami.db.session import make_engine, make_sessionmaker
from aami.errors import Conflict
from aami.publishing import service as publishing
from aami.publishing.lease import PublisherLease
from aami.publishing.models import Publish, PublisherEpoch
from aami.publishing.reconciler import Fence, Job, Reconciler, Timing
from aami.publishing.repository import PublishRepository
from aami.publishing.types import (
    PassResult,
    Result,
    ScopeSync,
    SyncState,
    Target,
    Trigger,
)
from tests.support.wait import wait_for


class ScriptedTarget:
    """Fails while ``failing`` is set (as a broken promtool would), then converges."""

    target = Target.PROMETHEUS

    def __init__(self) -> None:
        self.failing = True
        self.calls: list[float] = []
        self.jobs: list[Job] = []
        self.writes = 0
        self.lock = threading.Lock()

    def revision(self, session: Session) -> int:
        return 1

    def prepare(self) -> None:
        pass

    def cleanup(self) -> None:
        pass

    def run(self, job: Job, fence: Fence, result: PassResult) -> SyncState:
        with self.lock:
            self.calls.append(time.monotonic())
            self.jobs.append(job)
        fence()
        if self.failing:
            result.files_rejected["group-g.yml"] = "promtool: exit status 3"
            result.fail(Result.FAILED, "group-g.yml: promtool: exit status 3")
            return SyncState([ScopeSync("g", 2, None, False, None)])
        fence()
        self.writes += 1
        return SyncState([])


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


def _reconciler(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path, target: ScriptedTarget
) -> Reconciler:
    lease = PublisherLease(engine, factory, tmp_path / "lock")
    timing = Timing(
        debounce=0.01, check_interval=0.1, watch_interval=0.1, retry_base=0.2, retry_max=0.8
    )
    return Reconciler(factory=factory, lease=lease, targets=[target], timing=timing)


def _rows(factory: sessionmaker[Session]) -> list[Publish]:
    with factory() as session:
        rows, _ = PublishRepository(session).find(target="prometheus", offset=0, limit=100)
        return list(rows)


def test_failures_back_off_and_are_one_history_row_with_a_count(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    target = ScriptedTarget()
    reconciler = _reconciler(engine, factory, tmp_path, target)
    reconciler.start()
    try:
        wait_for(lambda: len(target.calls) >= 6, timeout=20, what="six attempts")
        calls = list(target.calls)
        gaps = [later - earlier for earlier, later in itertools.pairwise(calls[1:])]
        # 0.2, 0.4, 0.8, then the ceiling: never the 0.1 s check interval of a hot loop
        for gap, floor in zip(gaps, (0.2, 0.4, 0.8, 0.8), strict=False):
            assert gap >= floor * 0.9, gaps
        assert max(gaps) < 0.8 * 3, gaps
        # The sixth call is counted when the pass starts; its row and failure count are
        # written when it ends.
        wait_for(
            lambda: [r.count for r in _rows(factory)] >= [6],
            timeout=10,
            what="the sixth pass to be recorded",
        )
        [row] = _rows(factory)  # one row for every failure
        assert row.result == "failed"
        assert reconciler.states[Target.PROMETHEUS].failures >= 6
        assert row.files_rejected == {"group-g.yml": "promtool: exit status 3"}

        target.failing = False
        wait_for(lambda: target.writes, timeout=10, what="the recovery")
        state = reconciler.states[Target.PROMETHEUS]
        wait_for(lambda: state.in_sync, timeout=10, what="in sync")
        assert state.failures == 0
        assert state.failures_total >= 6
        assert [r.result for r in _rows(factory)] == ["failed"]  # a quiet success adds none
    finally:
        reconciler.stop()


def test_a_change_is_not_held_back_by_the_backoff(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    target = ScriptedTarget()
    reconciler = _reconciler(engine, factory, tmp_path, target)
    reconciler.timing.retry_base = reconciler.timing.retry_max = 30.0
    reconciler.start()
    try:
        wait_for(lambda: len(target.calls) >= 1, timeout=10, what="the first attempt")
        count = len(target.calls)
        reconciler.mark(Target.PROMETHEUS, {"g"})
        wait_for(lambda: len(target.calls) > count, timeout=5, what="the marked change")
        assert target.jobs[-1].trigger is Trigger.CHANGE
        assert target.jobs[-1].scopes == {"g"}
    finally:
        reconciler.stop()


def test_a_pass_stops_when_another_replica_takes_the_epoch(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    target = ScriptedTarget()
    target.failing = False
    reconciler = _reconciler(engine, factory, tmp_path, target)
    reconciler.start()
    try:
        wait_for(lambda: reconciler.is_leader and target.writes, timeout=10, what="leadership")
        first_epoch = reconciler.lease.epoch
        assert first_epoch is not None
        # The next pass stops between its first fence and its write; meanwhile another
        # replica advances the epoch (it took the lease while this one was away).
        entered, resume = threading.Event(), threading.Event()
        original = target.run

        def paused(job: Job, fence: Fence, result: PassResult) -> SyncState:
            fence()
            entered.set()
            resume.wait(10)
            return original(job, fence, result)

        target.run = paused  # type: ignore[method-assign]
        reconciler.request(Target.PROMETHEUS, Job(trigger=Trigger.REGENERATE))
        assert entered.wait(10)
        with factory() as session:
            session.execute(
                update(PublisherEpoch)
                .where(PublisherEpoch.name == "publisher")
                .values(epoch=PublisherEpoch.epoch + 1, holder="elsewhere")
            )
            session.commit()
        writes = target.writes
        resume.set()
        [fenced] = wait_for(
            lambda: [r for r in _rows(factory) if r.result == "fenced"],
            timeout=5,
            what="the fenced pass in the history",
        )
        assert fenced.epoch == first_epoch
        assert "another replica publishes" in (fenced.error or "")
        # The lock is free again (the other "replica" was only an epoch): this one takes
        # the lease anew, with an epoch newer than the one that fenced it, and publishes.
        wait_for(lambda: target.writes > writes, timeout=5, what="publishing again")
        assert (reconciler.lease.epoch or 0) >= first_epoch + 2
        # the fenced pass itself never wrote: every write since came from a later pass
        later = [r for r in _rows(factory) if r.id > fenced.id]
        assert all(r.epoch != first_epoch for r in later)
    finally:
        reconciler.stop()


def test_a_request_waits_a_bounded_time_and_a_standby_refuses(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    target = ScriptedTarget()
    target.failing = False
    leader = _reconciler(engine, factory, tmp_path, target)
    standby = _reconciler(engine, factory, tmp_path, ScriptedTarget())
    leader.start()
    try:
        wait_for(lambda: leader.is_leader, timeout=10, what="leadership")
        standby.start()
        job = Job(full=True, trigger=Trigger.REGENERATE, actor="op")
        result = publishing.request_pass(leader, Target.PROMETHEUS, job, wait=10)
        assert result is not None
        assert result.trigger is Trigger.REGENERATE
        assert target.jobs[-1].full is True
        assert _rows(factory)[0].trigger == "regenerate"  # an explicit request is recorded
        with pytest.raises(Conflict):
            publishing.request_pass(standby, Target.PROMETHEUS, job, wait=1)
    finally:
        standby.stop()
        leader.stop()


def test_history_is_pruned_by_count_and_age(factory: sessionmaker[Session]) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    with factory() as session:
        repo = PublishRepository(session)
        for index in range(30):
            repo.record(
                Publish(
                    target="prometheus",
                    started_at=old if index < 5 else datetime.now(UTC),
                    actor="t",
                    trigger="change",
                    error=f"e{index}",
                ),
                collapse=False,
            )
        repo.record(Publish(target="alertmanager", actor="t", trigger="change"), collapse=False)
        removed = repo.prune("prometheus", keep=20, older_than=datetime.now(UTC) - timedelta(30))
        session.commit()
        assert removed == 10
        rows, total = repo.find(target="prometheus", offset=0, limit=100)
        assert total == 20
        assert rows[-1].error == "e10"
        assert repo.find(target="alertmanager", offset=0, limit=10)[1] == 1


def test_a_standby_waits_instead_of_spinning(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = ScriptedTarget()
    target.failing = False
    leader = _reconciler(engine, factory, tmp_path, target)
    standby = _reconciler(engine, factory, tmp_path, ScriptedTarget())
    ticks = itertools.count()
    real_tick = standby._tick

    def counted() -> None:
        next(ticks)
        real_tick()

    monkeypatch.setattr(standby, "_tick", counted)
    leader.start()
    try:
        wait_for(lambda: leader.is_leader, timeout=10, what="leadership")
        standby.start()
        # Its targets are due (no pass ever moves them) and a change is marked: still, a
        # standby only wakes to watch the lease (every 0.1 s here).
        standby.mark(Target.PROMETHEUS, {"g"})
        before = next(ticks)
        time.sleep(1.0)  # a window to count ticks in
        assert next(ticks) - before < 40
        assert not standby.is_leader
    finally:
        standby.stop()
        leader.stop()
