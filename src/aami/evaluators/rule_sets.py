"""An evaluator's rule set: the stamped rule files of the global scope and of its groups,
and a revision that names exactly those bytes.

The text of each file is the local publisher's (``aami.prometheus.rule_sets``), so the
same rule reads the same on every evaluator. Sets are cached under the revision
counters they were rendered at: a change asks for a new key, never an invalidation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy.orm import Session

from aami.alerts.models import GLOBAL_SCOPE
from aami.alerts.repository import AlertRuleRepository
from aami.common.caching import LruCache
from aami.db.revisions import RevisionRepository
from aami.prometheus.rule_files import RuleFileStore, group_name
from aami.prometheus.rule_sets import render_scopes

__all__ = ["RuleSet", "RuleSetCache", "rule_set"]


@dataclass(frozen=True, slots=True)
class RuleSet:
    files: tuple[tuple[str, str], ...]  # (file name, text), by name
    stamps: tuple[tuple[str, int, str], ...]  # (rule group, revision, fingerprint)
    errors: tuple[tuple[str, str], ...]  # (scope, why it did not render)
    revision: str  # sha256 over names and texts

    @property
    def etag(self) -> str:
        return f'"{self.revision}"'

    def body(self, evaluator: str, kind: str) -> bytes:
        return orjson.dumps(
            {
                "evaluator": evaluator,
                "kind": kind,
                "revision": self.revision,
                "files": [
                    {
                        "name": name,
                        "content": text,
                        "sha256": hashlib.sha256(text.encode()).hexdigest(),
                    }
                    for name, text in self.files
                ],
            }
        )


def revision_of(files: Sequence[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, text in files:
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


RuleSetKey = tuple[int, int, tuple[str, ...] | None]


class RuleSetCache(LruCache[RuleSetKey, RuleSet]):
    """Rule sets by (rules revision, inventory revision, the evaluator's groups)."""

    def __init__(self, size: int = 32) -> None:
        super().__init__(size)


def rule_set(session: Session, cache: RuleSetCache, groups: Sequence[str] | None) -> RuleSet:
    """The rule set of an evaluator of these groups (None: every group), now."""
    revisions = RevisionRepository(session)
    wanted = None if groups is None else tuple(sorted(set(groups)))
    key = (revisions.area("rules"), revisions.area("inventory"), wanted)
    found = cache.get(key)
    if found is not None:
        return found
    scopes = {
        scope
        for scope in AlertRuleRepository(session).publishing_scopes()
        if scope == GLOBAL_SCOPE or wanted is None or scope in wanted
    }
    scope_revisions = revisions.rule_scopes()
    rendered = render_scopes(session, scopes, scope_revisions)
    files = tuple(
        sorted((RuleFileStore.file_name(scope), text) for scope, text in rendered.contents.items())
    )
    stamps = tuple(
        sorted(
            (group_name(scope), scope_revisions.get(scope, 0), fingerprint)
            for scope, fingerprint in rendered.fingerprints.items()
        )
    )
    made = RuleSet(files, stamps, tuple(sorted(rendered.errors.items())), revision_of(files))
    cache.put(key, made)
    return made
