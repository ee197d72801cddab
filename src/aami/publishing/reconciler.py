"""The reconciler: one background thread that drives every target toward the database.

Targets (the Prometheus rule files, the Alertmanager config) say how to measure and act.
This module decides when: after a committed change (debounced), when another replica's
change shows in a revision counter, periodically (so a missed reload or a restarted
consumer is noticed), on an operator's request, and after a failure with exponential
backoff. It holds the publisher lease; losing it (fenced) stops the pass at once.

A request never runs a pass itself: it files a ticket and may wait a bounded time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from aami.db.session import session_scope
from aami.publishing.files import describe_os_error
from aami.publishing.lease import PublisherLease
from aami.publishing.models import Publish
from aami.publishing.repository import PublishRepository
from aami.publishing.types import Fenced, PassResult, Result, SyncState, Target, Trigger

__all__ = ["Job", "PublishTarget", "Reconciler", "TargetState", "Ticket", "Timing"]

log = logging.getLogger(__name__)

Fence = Callable[[], int]


@dataclass
class Job:
    """What a pass must do beyond comparing: scopes to render regardless, or all of them,
    and whether to reload even when nothing differs."""

    scopes: set[str] = field(default_factory=set)
    full: bool = False
    force_reload: bool = False
    trigger: Trigger = Trigger.CHECK
    actor: str = "publisher"

    def merge(self, other: Job) -> Job:
        """One pass for both; the more explicit trigger and actor name it."""
        keep = other if _RANK[other.trigger] >= _RANK[self.trigger] else self
        return Job(
            scopes=self.scopes | other.scopes,
            full=self.full or other.full,
            force_reload=self.force_reload or other.force_reload,
            trigger=keep.trigger,
            actor=keep.actor,
        )


_RANK = {
    Trigger.CHECK: 0,
    Trigger.RETRY: 1,
    Trigger.CHANGE: 2,
    Trigger.STARTUP: 3,
    Trigger.APPLY: 4,
    Trigger.RELOAD: 5,
    Trigger.REGENERATE: 6,
}


class PublishTarget(Protocol):
    """One thing AAMI publishes to."""

    target: Target

    def revision(self, session: Session) -> int:
        """The desired state's revision counter: cheap, read every second."""

    def prepare(self) -> None:
        """This replica just became the publisher: clear what a crashed one left."""

    def run(self, job: Job, fence: Fence, result: PassResult) -> SyncState:
        """Measure desired, written and loaded; act on what differs; fill ``result``;
        return the state measured at the end."""

    def cleanup(self) -> None:
        """After every pass, whatever happened."""


class Ticket:
    """A request's claim on the next pass; ``wait`` for its result (bounded)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.result: PassResult | None = None
        self._done = threading.Event()

    def finish(self, result: PassResult) -> None:
        self.result = result
        self._done.set()

    def wait(self, timeout: float) -> PassResult | None:
        self._done.wait(max(0.0, timeout))
        return self.result


@dataclass
class Timing:
    debounce: float = 0.2  # quiet time after a change before publishing
    max_delay: float = 2.0  # a stream of changes waits at most this long
    check_interval: float = 10.0  # compare desired, written and loaded this often
    watch_interval: float = 1.0  # lease and revision counters
    retry_base: float = 1.0  # first retry after a failure; doubles up to retry_max
    retry_max: float = 60.0
    history_keep: int = 1000  # rows per target
    history_max_age: float = 30 * 86400.0


@dataclass
class TargetState:
    target: PublishTarget
    pending: Job | None = None
    first_mark: float = 0.0
    last_mark: float = 0.0
    tickets: list[Ticket] = field(default_factory=list)
    next_check: float = 0.0
    failures: int = 0
    failures_total: int = 0
    retry_at: float = 0.0
    seen_revision: int | None = None
    sync: SyncState | None = None
    in_sync: bool = False
    last_in_sync_at: float | None = None  # wall clock
    last_result: PassResult | None = None
    last_pass_at: float | None = None  # wall clock

    @property
    def pending_scopes(self) -> int:
        return len(self.pending.scopes) if self.pending else 0


class Reconciler:
    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        lease: PublisherLease,
        targets: Iterable[PublishTarget],
        timing: Timing | None = None,
    ) -> None:
        self.factory = factory
        self.lease = lease
        self.timing = timing or Timing()
        self.states: dict[Target, TargetState] = {t.target: TargetState(t) for t in targets}
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._next_watch = 0.0
        self._last_prune = 0.0
        self.leader_since: float | None = None  # wall clock
        self.started_at = time.time()

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aami-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.lease.release()

    @property
    def is_leader(self) -> bool:
        return self.lease.held

    # ---- what callers ask for ----------------------------------------------------------

    def mark(self, target: Target, scopes: Iterable[str]) -> None:
        """A committed change: publish these scopes after a quiet moment."""
        self._schedule(target, Job(scopes=set(scopes), trigger=Trigger.CHANGE))

    def request(self, target: Target, job: Job) -> Ticket:
        """An operator's request: run it as soon as possible; the ticket tells the result."""
        ticket = Ticket(job)
        with self._cond:
            state = self.states[target]
            state.tickets.append(ticket)
            self._cond.notify_all()
        return ticket

    def _schedule(self, target: Target, job: Job) -> None:
        now = time.monotonic()
        with self._cond:
            state = self.states.get(target)
            if state is None:  # not published here (an Alertmanager config AAMI does not manage)
                return
            if state.pending is None:
                state.first_mark = now
                state.pending = job
            else:
                state.pending = state.pending.merge(job)
            state.last_mark = now
            self._cond.notify_all()

    # ---- the loop ----------------------------------------------------------------------

    def _due(self, state: TargetState, now: float) -> float:
        """When this target next needs a pass (monotonic)."""
        if state.tickets:
            return now
        due = state.retry_at if state.failures else state.next_check
        if state.pending is not None:
            quiet = state.last_mark + self.timing.debounce
            overdue = state.first_mark + self.timing.max_delay
            due = min(due, max(min(quiet, overdue), 0.0))
        return due

    def _wake(self, now: float) -> float:
        """When the thread next has work. A standby runs no passes: it only watches the
        lease and refuses tickets, so the targets' due times (long past: no pass moves
        them) must not wake it, or it would spin."""
        if not self.lease.held:
            return now if any(s.tickets for s in self.states.values()) else self._next_watch
        return min([self._next_watch] + [self._due(s, now) for s in self.states.values()])

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                now = time.monotonic()
                wake = self._wake(now)
                if wake > now:
                    self._cond.wait(min(wake - now, self.timing.watch_interval))
                if self._stop:
                    return
            try:
                self._tick()
            except Exception:  # the thread must survive anything a pass does
                log.exception("publisher tick failed")
                time.sleep(0.2)

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_watch:
            self._next_watch = now + self.timing.watch_interval
            self._watch()
        if not self.lease.held:
            self._refuse_tickets()
            return
        for state in self.states.values():
            now = time.monotonic()
            with self._cond:
                if self._due(state, now) > now:
                    continue
                job = state.pending or Job(
                    trigger=Trigger.RETRY if state.failures else Trigger.CHECK
                )
                tickets, state.tickets = state.tickets, []
                for ticket in tickets:
                    job = job.merge(ticket.job)
                state.pending = None
            result = self._pass(state, job)
            for ticket in tickets:
                ticket.finish(result)

    def _watch(self) -> None:
        """Keep or take the lease; notice other replicas' changes by their counters."""
        if self.lease.held:
            try:
                self.lease.check()
            except Fenced as exc:
                self._step_down(str(exc))
                return
        elif self.lease.try_acquire():
            self.leader_since = time.time()
            for state in self.states.values():
                try:
                    state.target.prepare()
                except OSError as exc:
                    log.warning("%s", describe_os_error(exc, "preparing to publish"))
                self._schedule(state.target.target, Job(full=True, trigger=Trigger.STARTUP))
                state.failures = 0
        if not self.lease.held:
            return
        try:
            with session_scope(self.factory) as session:
                revisions = {t: s.target.revision(session) for t, s in self.states.items()}
        except SQLAlchemyError as exc:
            log.warning("publisher: the revision counters cannot be read: %s", exc)
            return
        for target, revision in revisions.items():
            state = self.states[target]
            if state.seen_revision is not None and revision != state.seen_revision:
                self._schedule(target, Job(trigger=Trigger.CHANGE))
            state.seen_revision = revision

    def _step_down(self, reason: str) -> None:
        log.warning("publisher: stepping down: %s", reason)
        self.lease.release()
        self.leader_since = None
        with self._cond:
            for state in self.states.values():
                state.pending = None
                state.failures = 0

    def _refuse_tickets(self) -> None:
        with self._cond:
            waiting = [(s, s.tickets) for s in self.states.values() if s.tickets]
            for state, _ in waiting:
                state.tickets = []
                state.pending = None
        for state, tickets in waiting:
            result = PassResult(
                target=state.target.target,
                trigger=tickets[0].job.trigger,
                actor=tickets[0].job.actor,
                holder=self.lease.holder,
            )
            result.fail(
                Result.NOT_LEADER,
                "another AAMI replica holds the publisher lease and publishes; it picks "
                "up changes made here within a second or two",
            )
            result.finished_at = datetime.now(UTC)
            for ticket in tickets:
                ticket.finish(result)

    def _pass(self, state: TargetState, job: Job) -> PassResult:
        result = PassResult(
            target=state.target.target,
            trigger=job.trigger,
            actor=job.actor,
            scopes=None if job.full else sorted(job.scopes),
            holder=self.lease.holder,
            epoch=self.lease.epoch,
        )
        sync: SyncState | None = None
        try:
            # What this pass sees includes every change committed so far: the revision
            # watch need not schedule another pass for them.
            with session_scope(self.factory) as session:
                state.seen_revision = state.target.revision(session)
            sync = state.target.run(job, self.lease.check, result)
        except Fenced as exc:
            result.fail(Result.FENCED, str(exc))
            self._step_down(str(exc))
        except OSError as exc:
            result.fail(Result.FAILED, describe_os_error(exc, "publishing"))
        except SQLAlchemyError as exc:
            result.fail(Result.FAILED, f"the database cannot be read: {type(exc).__name__}")
            log.warning("publish: database error: %s", exc)
        except Exception as exc:
            log.exception("publish failed")
            result.fail(Result.FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            try:
                state.target.cleanup()
            except OSError as exc:
                log.warning("%s", describe_os_error(exc, "cleaning up after a publish"))
        result.finished_at = datetime.now(UTC)
        now = time.monotonic()
        state.last_pass_at = time.time()
        if sync is not None:
            state.sync = sync
            state.in_sync = sync.in_sync and not result.failed
            if state.in_sync:
                state.last_in_sync_at = time.time()
        else:
            state.in_sync = False
        if result.failed:
            state.failures += 1
            state.failures_total += 1
            delay = min(self.timing.retry_max, self.timing.retry_base * 2 ** (state.failures - 1))
            state.retry_at = now + delay
        else:
            state.failures = 0
            state.retry_at = 0.0
        state.next_check = now + self.timing.check_interval
        state.last_result = result
        explicit = job.trigger in (Trigger.REGENERATE, Trigger.RELOAD, Trigger.APPLY)
        if result.acted or explicit:
            self._record(result, collapse=result.failed and not explicit)
        return result

    def _record(self, result: PassResult, *, collapse: bool) -> None:
        row = Publish(
            target=result.target.value,
            started_at=result.started_at,
            finished_at=result.finished_at,
            actor=result.actor,
            trigger=result.trigger.value,
            holder=result.holder,
            epoch=result.epoch,
            scopes=result.scopes or [],
            files_written=result.files_written,
            files_removed=result.files_removed,
            files_rejected=result.files_rejected,
            rule_count=result.rule_count,
            validation=result.validation.value,
            reload=result.reload.value,
            result=result.result.value,
            error=result.error,
            timings={k: round(v, 6) for k, v in result.timings.items()},
        )
        try:
            with session_scope(self.factory) as session:
                repo = PublishRepository(session)
                stored = repo.record(row, collapse=collapse)
                result.id, result.count = stored.id, stored.count
                if time.monotonic() - self._last_prune > 60:
                    self._last_prune = time.monotonic()
                    cutoff = datetime.now(UTC) - timedelta(seconds=self.timing.history_max_age)
                    repo.prune(
                        result.target.value, keep=self.timing.history_keep, older_than=cutoff
                    )
        except SQLAlchemyError as exc:
            log.error("could not record the publish (%s): %s", result.result, exc)
