"""What the endpoints, the web UI and the CLI ask of publishing: status measured now, the
history, and requests for a pass (which never run in the request itself)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from aami.common.schemas import Page, PageParams
from aami.errors import Conflict
from aami.publishing.models import Publish
from aami.publishing.reconciler import Job, Reconciler
from aami.publishing.repository import PublishRepository
from aami.publishing.schemas import PublishRead
from aami.publishing.types import PassResult, Result, SyncState, Target

__all__ = [
    "history",
    "history_page",
    "latest",
    "latest_read",
    "request_pass",
    "sync_report",
]

MAX_WAIT = 30.0  # seconds a request may wait for its pass


def request_pass(
    reconciler: Reconciler, target: Target, job: Job, *, wait: float
) -> PassResult | None:
    """File a pass; wait for it at most ``wait`` seconds (bounded); None if not done yet.

    A standby replica refuses: only the lease holder publishes.
    """
    if not reconciler.is_leader:
        raise Conflict(
            "another AAMI replica holds the publisher lease and publishes; it picks up "
            "changes made here within a second or two"
        )
    ticket = reconciler.request(target, job)
    result = ticket.wait(min(max(wait, 0.0), MAX_WAIT))
    if result is not None and result.result is Result.NOT_LEADER:
        raise Conflict(result.error or "this replica does not publish")
    return result


def history(
    session: Session, *, target: Target | None, offset: int, limit: int
) -> tuple[Sequence[Publish], int]:
    return PublishRepository(session).find(
        target=target.value if target else None, offset=offset, limit=limit
    )


def history_page(session: Session, *, target: Target, page: PageParams) -> Page[PublishRead]:
    """One page of a target's publishes, newest first, as the API shows them."""
    rows, total = history(session, target=target, offset=page.offset, limit=page.limit)
    return Page.of(
        [PublishRead.model_validate(row, from_attributes=True) for row in rows],
        page=page.page,
        limit=page.limit,
        total=total,
    )


def latest_read(session: Session, target: Target) -> dict[str, Any] | None:
    """The target's newest publish as the API shows it (JSON), or None."""
    row = latest(session, target)
    if row is None:
        return None
    return PublishRead.model_validate(row, from_attributes=True).model_dump(mode="json")


def latest(session: Session, target: Target) -> Publish | None:
    return PublishRepository(session).latest(target.value)


def _errors(row: Publish | None, scope_of: Callable[[str], str | None]) -> dict[str, str]:
    """The last recorded error of each scope: what the newest history row says."""
    if row is None or (row.result == Result.OK.value and not row.files_rejected):
        return {}
    errors: dict[str, str] = {}
    for name, message in (row.files_rejected or {}).items():
        scope = scope_of(name)
        if scope is not None:
            errors[scope] = str(message)
    if row.error:
        errors.setdefault("*", row.error)
    return errors


def sync_report(
    session: Session,
    reconciler: Reconciler,
    target: Target,
    sync: SyncState,
    *,
    scope_of: Callable[[str], str | None],
) -> dict[str, Any]:
    """Desired, written and loaded per scope (measured now), with the last errors, the
    publisher's role and how long the target has been out of sync."""
    row = latest(session, target)
    errors = _errors(row, scope_of)
    general = errors.pop("*", None)
    if sync.loaded_error is not None:
        general = f"what is loaded cannot be read: {sync.loaded_error}"
    report: dict[str, dict[str, Any]] = {}
    for state in sync.scopes:
        item = state.as_dict()
        if not state.in_sync:
            item["error"] = state.error or errors.get(state.scope) or general
        report[state.scope] = item
    in_sync = sync.in_sync
    out_of_sync = sync.out_of_sync
    tracked = reconciler.states[target]
    now = time.time()
    since = tracked.last_in_sync_at
    return {
        "in_sync": in_sync,
        "out_of_sync": out_of_sync,
        "scopes": report,
        "publisher": "leader" if reconciler.is_leader else "standby",
        "holder": reconciler.lease.holder,
        "epoch": reconciler.lease.epoch,
        "pending_changes": tracked.pending_scopes,
        "consecutive_failures": tracked.failures,
        "last_in_sync_at": (
            datetime.fromtimestamp(since, UTC).isoformat() if since is not None else None
        ),
        "seconds_since_in_sync": (
            0.0 if in_sync else (round(now - since, 3) if since is not None else None)
        ),
        "last_error": None if in_sync else general,
    }
