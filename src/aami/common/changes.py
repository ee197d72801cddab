"""Which rule scopes a transaction changed, handed to the publisher once it commits.

A scope is a group id, or ``""`` for the global rules. Marking a scope also gives it a
new desired revision in the same transaction, so what must be published is in the
database, not only in this process's memory: a replica that takes over publishing after
a crash still finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from aami.db.revisions import RevisionRepository

__all__ = ["mark_rule_scopes", "on_rule_scopes_committed"]

_KEY = "aami.dirty_rule_scopes"


def mark_rule_scopes(session: Session, scopes: Iterable[str]) -> None:
    """Note that these scopes' rule files must be published after the commit."""
    wanted = set(scopes)
    RevisionRepository(session).bump_rule_scopes(wanted)
    session.info.setdefault(_KEY, set()).update(wanted)


def on_rule_scopes_committed(
    factory: sessionmaker[Session], callback: Callable[[set[str]], None]
) -> None:
    """Call ``callback`` with the scopes a transaction marked, after it commits."""

    @event.listens_for(factory, "after_commit")
    def _committed(session: Session) -> None:
        scopes = session.info.pop(_KEY, None)
        if scopes:
            callback(set(scopes))

    @event.listens_for(factory, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(_KEY, None)

    del _committed, _rolled_back
