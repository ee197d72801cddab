"""The words of the publishing pipeline: targets, outcomes, one pass's result, sync state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aami.publishing.files import Stamp

__all__ = [
    "Fenced",
    "PassResult",
    "Reload",
    "Result",
    "ScopeSync",
    "SyncState",
    "Target",
    "Trigger",
    "Validation",
]


class Target(StrEnum):
    PROMETHEUS = "prometheus"
    ALERTMANAGER = "alertmanager"


class Trigger(StrEnum):
    CHANGE = "change"  # a committed change marked it
    CHECK = "check"  # the periodic comparison of desired, written and loaded
    STARTUP = "startup"  # this replica became the publisher
    RETRY = "retry"  # after a failure, at the backoff's time
    REGENERATE = "regenerate"
    RELOAD = "reload"
    APPLY = "apply"


class Result(StrEnum):
    OK = "ok"
    PARTIAL = "partial"  # some scopes published, others refused (named)
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"  # the consumer refused the new files; the old ones are back
    PENDING_RELOAD = "pending_reload"  # written; the consumer does not answer yet
    FENCED = "fenced"  # the lease was lost mid-pass; nothing more was touched
    NOT_LEADER = "not_leader"


class Validation(StrEnum):
    SKIPPED = "skipped"
    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"


class Reload(StrEnum):
    NOT_NEEDED = "not_needed"
    OK = "ok"
    REJECTED = "rejected"
    FORBIDDEN = "forbidden"
    PENDING = "pending"
    DISABLED = "disabled"
    UNCONFIRMED = "unconfirmed"  # reloaded, but the consumer does not run what was written


FAILURES = frozenset({Result.FAILED, Result.ROLLED_BACK, Result.PENDING_RELOAD, Result.FENCED})


class Fenced(Exception):
    """This replica no longer holds the publisher lease (or a newer epoch exists)."""


@dataclass
class PassResult:
    """What one reconcile pass of one target did."""

    target: Target
    trigger: Trigger
    actor: str
    scopes: list[str] | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    id: int | None = None
    holder: str = ""
    epoch: int | None = None
    files_written: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files_unchanged: int = 0
    files_rejected: dict[str, str] = field(default_factory=dict)
    rule_count: int = 0
    rule_counts: dict[str, int] = field(default_factory=dict)
    validation: Validation = Validation.SKIPPED
    validation_output: str = ""
    reload: Reload = Reload.NOT_NEEDED
    confirmed: bool | None = None
    missing_groups: list[str] = field(default_factory=list)
    result: Result = Result.OK
    error: str | None = None
    count: int = 1
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def acted(self) -> bool:
        """Did the pass change anything or find anything wrong?"""
        return bool(
            self.files_written
            or self.files_removed
            or self.files_rejected
            or self.reload is not Reload.NOT_NEEDED
            or self.result is not Result.OK
        )

    @property
    def failed(self) -> bool:
        return self.result in FAILURES or bool(self.files_rejected)

    def fail(self, result: Result, error: str) -> None:
        self.result = result
        self.error = error if not self.error else f"{self.error}; {error}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ScopeSync:
    """One scope (a rule group, or the Alertmanager config): desired, written, loaded."""

    scope: str
    desired: int | None  # desired revision (None: nothing is wanted, the file must go)
    written: Stamp | None
    written_intact: bool
    loaded: Stamp | None
    error: str | None = None

    @property
    def in_sync(self) -> bool:
        if self.desired is None:
            return self.written is None and self.loaded is None
        return (
            self.written is not None
            and self.written_intact
            and self.written.revision == self.desired
            and self.loaded == self.written
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "desired_revision": self.desired,
            "written_revision": self.written.revision if self.written else None,
            "written_fingerprint": self.written.fingerprint if self.written else None,
            "written_intact": self.written_intact if self.written else None,
            "loaded_revision": self.loaded.revision if self.loaded else None,
            "loaded_fingerprint": self.loaded.fingerprint if self.loaded else None,
            "in_sync": self.in_sync,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class SyncState:
    """Every scope of a target, and why the loaded side is unknown when it is."""

    scopes: list[ScopeSync]
    loaded_error: str | None = None

    @property
    def in_sync(self) -> bool:
        return self.loaded_error is None and all(s.in_sync for s in self.scopes)

    @property
    def out_of_sync(self) -> list[str]:
        return sorted(s.scope for s in self.scopes if not s.in_sync)
