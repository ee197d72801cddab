"""The server's check-signing keys: made once, kept in a file, shared by every replica.

Every check a node receives carries ``signatures``: Ed25519 signatures over the canonical
message of ``aami.agent.signing.check_message`` (the agent's contract, imported from there
so that both sides build the same bytes), one per signing key. A node runs a script only
if a signature by a key it pinned at registration verifies, so a script altered on the way
(a proxy, a broken or misissued TLS setup, a tampered cache) is refused even when the
channel looked fine.

Keys (``AAMI_SIGNING_KEY_FILE``, PEM PKCS#8, what ``openssl genpkey -algorithm ed25519``
writes) are created 0600 when missing: by default beside a SQLite database, else in
``$XDG_STATE_HOME/aami/``. A file readable by others is used, with a warning. Replicas
must share the same file: a replica with a key of its own signs what no node trusts.

Rotation: set ``AAMI_SIGNING_NEXT_KEY_FILE`` (created the same way) on every replica. The
server then signs with both keys and offers the next key endorsed by the current one;
each node pins it on its next sync. Once every node reports the new key
(``aami_agent_signing_key_info``), make the next key the current one and unset the next:
nodes drop the old key when the server no longer offers it.

Signatures are computed once per distinct message (script version and config) and kept
in an LRU cache; the documents the checks endpoint serves are cached on top of that.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from aami.agent.signing import check_message, endorsement_message, key_id
from aami.common.caching import LruCache
from aami.config import Settings

__all__ = ["Signer", "SigningKey", "default_key_path", "load_or_create_key", "signer_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key and what is derived from it."""

    private: Ed25519PrivateKey
    public_key: bytes
    key_id: str

    @classmethod
    def of(cls, private: Ed25519PrivateKey) -> SigningKey:
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private, raw, key_id(raw))

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key (tests, and servers without a key file: see ``create_app``)."""
        return cls.of(Ed25519PrivateKey.generate())


def load_or_create_key(path: Path) -> SigningKey:
    """Read the key at ``path``, creating it (0600) first if it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = _create(path)
    except OSError as exc:
        raise ValueError(f"cannot read the signing key {path}: {exc.strerror}") from None
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 key (openssl genpkey -algorithm ed25519)")
    if path.stat().st_mode & 0o077:
        log.warning("the signing key %s is readable by others; chmod 0600 it", path)
    return SigningKey.of(private)


def _create(path: Path) -> bytes:
    """Write a new key whole and 0600, unless another process did first (then read it)."""
    data = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link(2) fails if the name exists: two replicas starting at once keep one key.
            os.link(temp, path)
        except FileExistsError:
            return path.read_bytes()
        log.warning("created the check-signing key %s (share it with every replica)", path)
        return data
    finally:
        temp.unlink(missing_ok=True)


class Signer:
    """Signs check messages with the current key (and the next one, during a rotation)."""

    def __init__(
        self, current: SigningKey, next_key: SigningKey | None = None, *, cache_size: int = 65536
    ) -> None:
        self.keys = [current] if next_key is None else [current, next_key]
        self._cache: LruCache[bytes, list[dict[str, str]]] = LruCache(cache_size)
        self.document = self._key_document()

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys signing now, current first."""
        return [key.key_id for key in self.keys]

    def sign_check(
        self,
        *,
        name: str,
        script_type: str,
        language: str,
        version: str,
        hash: str,
        timeout_seconds: float,
        config: Mapping[str, Any],
    ) -> list[dict[str, str]]:
        """``[{"key_id", "signature"}]`` for one check, from the cache when it was signed."""
        message = check_message(
            name=name,
            script_type=script_type,
            language=language,
            version=version,
            hash=hash,
            timeout_seconds=timeout_seconds,
            config=config,
        )
        cached = self._cache.get(message)
        if cached is not None:
            return cached
        signatures = [
            {"key_id": key.key_id, "signature": _b64(key.private.sign(message))}
            for key in self.keys
        ]
        self._cache.put(message, signatures)
        return signatures

    def _key_document(self) -> dict[str, Any]:
        """What ``GET /api/v1/checks/signing-keys`` returns: each key, endorsed by the others."""
        return {
            "algorithm": "ed25519",
            "keys": [
                {
                    "key_id": key.key_id,
                    "public_key": _b64(key.public_key),
                    "endorsements": [
                        {
                            "key_id": other.key_id,
                            "signature": _b64(
                                other.private.sign(endorsement_message(key.public_key))
                            ),
                        }
                        for other in self.keys
                        if other is not key
                    ],
                }
                for key in self.keys
            ],
        }


def default_key_path(database_url: str) -> Path:
    """Where the key lives without ``AAMI_SIGNING_KEY_FILE``: beside a SQLite database
    (``<database>.signing-key``), else ``$XDG_STATE_HOME/aami/signing.key`` (the same rule
    as the secrets key, ``aami.security.secrets``)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database).expanduser()
        return database.with_name(database.name + ".signing-key")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "aami" / "signing.key"


def signer_for(settings: Settings) -> Signer:
    """The server's signer: ``AAMI_SIGNING_KEY_FILE`` (else the default path), and the next
    key during a rotation; key files are created when missing."""
    current = load_or_create_key(
        settings.signing_key_file or default_key_path(settings.database_url)
    )
    upcoming = (
        load_or_create_key(settings.signing_next_key_file)
        if settings.signing_next_key_file is not None
        else None
    )
    return Signer(current, upcoming)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
