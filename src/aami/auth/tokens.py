"""Bearer-token principals."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

__all__ = ["NodeTokenCache", "Principal", "generate_token", "hash_token", "matches"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: ``name`` goes into the audit trail."""

    name: str
    role: Literal["admin", "node", "sd"]
    target_id: str | None = None


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
    """Recently seen node-token hashes and their target, for ``ttl`` seconds.

    Nodes poll often; this spares a query per poll. A revoked token keeps working for at
    most ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 60.0, size: int = 100_000) -> None:
        self.ttl = ttl
        self.size = size
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, float]] = {}

    def get(self, token_hash: str) -> str | None:
        with self._lock:
            entry = self._entries.get(token_hash)
            if entry is None or entry[1] < time.monotonic():
                return None
            return entry[0]

    def put(self, token_hash: str, target_id: str) -> None:
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token_hash] = (target_id, time.monotonic() + self.ttl)
