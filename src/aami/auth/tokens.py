"""Bearer-token principals."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["NodeTokenCache", "Principal", "generate_token", "hash_token", "matches"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: ``name`` goes into the audit trail."""

    name: str
    role: Literal["admin", "node", "sd", "history", "evaluator"]
    target_id: str | None = None
    evaluator: str | None = None  # the evaluator an evaluator token belongs to


def generate_token(prefix: str = "aami") -> str:
    """Make a new random bearer token."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """Return the stored form of a token (sha256 hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def matches(given: str, expected: str) -> bool:
    """Compare two tokens in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


class NodeTokenCache:
    """Node-token hashes checked recently, and their target, each tagged with the
    ``node_tokens`` revision it was checked at.

    Nodes poll often; this spares a query per poll. An entry is believed only while the
    revision is still the one it was checked at and for at most ``ttl`` seconds: issuing a
    token (which revokes the node's others) bumps the revision, so a replaced token stops
    working on this replica at once and on the others as soon as they re-read the counter
    (about a second); the ``ttl`` bounds what no revision tells, such as a token deleted
    with its target. ``ttl`` 0 turns the cache off.
    """

    def __init__(
        self,
        ttl: float = 10.0,
        size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, int, float]] = {}

    def get(self, token_hash: str, revision: int) -> str | None:
        """The target of a token checked at ``revision`` less than ``ttl`` ago, else None."""
        with self._lock:
            entry = self._entries.get(token_hash)
            if entry is None:
                return None
            target_id, checked_at_revision, expires = entry
            if checked_at_revision != revision or expires <= self.clock():
                del self._entries[token_hash]
                return None
            return target_id

    def put(self, token_hash: str, target_id: str, revision: int) -> None:
        """Remember a token the database vouched for while the counter was ``revision``
        (read before the database was asked, so a change committed meanwhile wins)."""
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token_hash] = (target_id, revision, self.clock() + self.ttl)
