"""Bearer-token principals."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

__all__ = ["Principal", "generate_token", "hash_token", "matches"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: ``name`` goes into the audit trail."""

    name: str
    role: Literal["admin", "node"]
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
