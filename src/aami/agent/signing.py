"""Check signatures: the bytes that are signed, and the server keys this node trusts.

The server signs every check it hands out with Ed25519 (RFC 8032); the agent runs a
script only if one of its signatures verifies with a key the node has pinned. This module
is the contract: the server builds its messages with ``check_message`` too.

Signed message of one check (ASCII)::

    b"aami-check-v1\\n" + JSON([name, script_type, language, version, hash,
                                timeout_ms, [[key, value], ...]])

JSON as ``json.dumps(..., ensure_ascii=True, separators=(",", ":"))``; ``hash`` is the
sha256 of the script in lowercase hex (the agent checks the content against it before the
signature, so the signature covers the script); ``timeout_ms`` is ``timeout_seconds`` in
whole milliseconds; the config is a list of pairs in the order the server sent it, which
is the order of the script's argv.

A key is known by its id, the first 16 hex digits of the sha256 of its raw 32 bytes. An
endorsement is one key's signature over ``b"aami-signing-key-v1\\n" + <raw key>`` of
another: during a rotation the server offers its next key endorsed by the current one,
and a node that trusts the current key pins the next (``update_trust``).

The pinned keys live in a JSON file (``signing_keys_file``, mode 0600) that
``aami agent register`` writes and rotations update::

    {"keys": [{"key_id": "3f1c…", "public_key": "<base64 of the raw 32 bytes>"}]}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "CHECK_CONTEXT",
    "KEY_CONTEXT",
    "KeysError",
    "OfferedKey",
    "Signature",
    "TrustUpdate",
    "check_message",
    "endorsement_message",
    "key_id",
    "load_keys",
    "parse_key_document",
    "save_keys",
    "update_trust",
    "verify_check",
]

CHECK_CONTEXT = b"aami-check-v1\n"
KEY_CONTEXT = b"aami-signing-key-v1\n"

# Why a check is refused (the ``reason`` label of ``aami_check_failure``).
NO_KEYS = "no_signing_key"
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown_signing_key"
BAD_SIGNATURE = "bad_signature"


class KeysError(Exception):
    """A key file or key document that cannot be used."""


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of a check or of a key, by the key ``key_id``."""

    key_id: str
    signature: bytes

    @classmethod
    def from_json(cls, item: object) -> Signature:
        """Parse ``{"key_id", "signature"}`` (base64); ``ValueError`` if malformed."""
        if not isinstance(item, dict):
            raise ValueError("a signature is not an object")
        kid, value = item.get("key_id"), item.get("signature")
        if not isinstance(kid, str) or not isinstance(value, str):
            raise ValueError("a signature needs key_id and signature strings")
        return cls(kid, _b64decode(value))

    def to_json(self) -> dict[str, str]:
        """The signature in the API's shape."""
        return {"key_id": self.key_id, "signature": base64.b64encode(self.signature).decode()}


@dataclass(frozen=True, slots=True)
class OfferedKey:
    """A key the server signs with, as its key document lists it."""

    key_id: str
    public_key: bytes
    endorsements: tuple[Signature, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class TrustUpdate:
    """The outcome of ``update_trust``: the keys to keep, and what changed."""

    keys: dict[str, bytes]
    added: list[str]
    removed: list[str]

    @property
    def changed(self) -> bool:
        """Whether the pinned keys must be written again."""
        return bool(self.added or self.removed)


def key_id(public_key: bytes) -> str:
    """The id of a raw Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def check_message(
    *,
    name: str,
    script_type: str,
    language: str,
    version: str,
    hash: str,
    timeout_seconds: float,
    config: Mapping[str, object],
) -> bytes:
    """The canonical bytes a check's signature is over (see the module docstring)."""
    fields = [
        name,
        script_type,
        language,
        version,
        hash.strip().lower(),
        round(float(timeout_seconds) * 1000),
        [[str(key), value] for key, value in config.items()],
    ]
    return CHECK_CONTEXT + json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode()


def endorsement_message(public_key: bytes) -> bytes:
    """The bytes a key's endorsement is over."""
    return KEY_CONTEXT + public_key


def verify_check(
    message: bytes, signatures: Sequence[Signature], keys: Mapping[str, bytes]
) -> str | None:
    """None if a signature by a pinned key verifies ``message``; else why not."""
    if not keys:
        return NO_KEYS
    if not signatures:
        return UNSIGNED
    known = [s for s in signatures if s.key_id in keys]
    if not known:
        return UNKNOWN_KEY
    if any(_verifies(keys[s.key_id], s.signature, message) for s in known):
        return None
    return BAD_SIGNATURE


def parse_key_document(document: object) -> list[OfferedKey]:
    """The keys of ``GET /api/v1/checks/signing-keys``; ``KeysError`` if malformed."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeysError("the signing key document has no keys list")
    offered = []
    for item in document["keys"]:
        try:
            if not isinstance(item, dict):
                raise ValueError("a key is not an object")
            raw = _raw_key(item.get("public_key"))
            endorsements = tuple(Signature.from_json(e) for e in item.get("endorsements") or [])
        except ValueError as exc:
            raise KeysError(f"a signing key is malformed: {exc}") from None
        if item.get("key_id") != key_id(raw):
            raise KeysError(f"key id {item.get('key_id')!r} does not match its public key")
        offered.append(OfferedKey(key_id(raw), raw, endorsements))
    return offered


def update_trust(trusted: Mapping[str, bytes], offered: Iterable[OfferedKey]) -> TrustUpdate:
    """Pin offered keys endorsed by a trusted one; drop trusted keys no longer offered.

    A key is added only with a valid endorsement by a key already trusted (or added in
    this pass, for a chain). Keys are dropped only if the server offers a key that is now
    trusted: a document of unknown keys alone never empties the pins.
    """
    offered = list(offered)
    keys = dict(trusted)
    added: list[str] = []
    progress = True
    while progress:
        progress = False
        for key in offered:
            if key.key_id in keys:
                continue
            message = endorsement_message(key.public_key)
            if any(
                e.key_id in keys and _verifies(keys[e.key_id], e.signature, message)
                for e in key.endorsements
            ):
                keys[key.key_id] = key.public_key
                added.append(key.key_id)
                progress = True
    listed = {key.key_id for key in offered}
    removed: list[str] = []
    if listed & set(keys):
        removed = sorted(k for k in keys if k not in listed)
        for kid in removed:
            del keys[kid]
    return TrustUpdate(keys, added, removed)


def load_keys(path: Path) -> dict[str, bytes]:
    """The pinned keys; an absent file is none; ``KeysError`` if unreadable or malformed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise KeysError(f"cannot read the pinned signing keys {path}: {exc}") from None
    keys: dict[str, bytes] = {}
    items = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise KeysError(f"{path}: expected {{'keys': [...]}}")
    for item in items:
        try:
            raw = _raw_key(item.get("public_key") if isinstance(item, dict) else None)
        except ValueError as exc:
            raise KeysError(f"{path}: {exc}") from None
        keys[key_id(raw)] = raw
    return keys


def save_keys(path: Path, keys: Mapping[str, bytes]) -> None:
    """Write the pinned keys atomically, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {
        "keys": [
            {"key_id": kid, "public_key": base64.b64encode(raw).decode()}
            for kid, raw in keys.items()
        ]
    }
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp: 0600 from the start
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)  # rename(2) is atomic: never half a trust anchor
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _raw_key(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("public_key must be a base64 string")
    raw = _b64decode(value)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def _b64decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
