"""Notification secrets encrypted at rest (Fernet), and the key they are encrypted with.

The key comes from, in this order:

1. ``AAMI_ENCRYPTION_KEY``: one or more Fernet keys, comma-separated;
2. ``AAMI_ENCRYPTION_KEY_FILE``: a file with one key per line (it must exist);
3. neither: a key file the server creates, mode 0600, on first start — beside a SQLite
   database (``<database>.encryption-key``), else ``$XDG_STATE_HOME/aami/encryption.key``
   (``~/.local/state/aami/encryption.key``).

The first key encrypts; every key decrypts (add a new key in front to rotate; secrets are
re-encrypted with it when they are next changed). Replicas must share the key.

``EncryptedText`` is the column type: code above the ORM sees plaintext. The key belongs
to an engine (``use_box(engine, box)``), so two apps in one process may use two keys.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Engine, Text, TypeDecorator
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker

from aami.config import Settings
from aami.errors import Unavailable

__all__ = [
    "EncryptedText",
    "SecretBox",
    "SecretKeyError",
    "SecretUnreadable",
    "box_for",
    "box_for_connection",
    "check_key",
    "default_key_path",
    "load_box",
    "use_box",
]

log = logging.getLogger(__name__)


class SecretKeyError(RuntimeError):
    """The key is missing, unreadable or malformed: the server cannot start."""


class SecretUnreadable(Unavailable):
    """A stored secret does not decrypt with this server's key."""


class SecretBox:
    """Encrypt and decrypt secrets with a list of Fernet keys (the first one encrypts)."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise SecretKeyError("no encryption key given")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "an encryption key is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeEncodeError):
            raise SecretUnreadable(
                "a stored notification secret cannot be decrypted with this server's key "
                "(AAMI_ENCRYPTION_KEY / AAMI_ENCRYPTION_KEY_FILE); every replica must use "
                "the same key"
            ) from None

    def readable(self, token: str) -> bool:
        """Whether ``token`` is a secret this box encrypted."""
        try:
            self.decrypt(token)
        except SecretUnreadable:
            return False
        return True


def _parse_keys(text: str, where: str) -> list[str]:
    keys = [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]
    if not keys:
        raise SecretKeyError(f"{where} holds no key")
    return keys


def default_key_path(database_url: str) -> Path:
    """Where the server keeps the key it made itself."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database).expanduser()
        return database.with_name(database.name + ".encryption-key")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "aami" / "encryption.key"


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` (0600) unless a key is already there."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, Fernet.generate_key() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link(2) fails if the name exists: two servers starting at once keep one key.
        os.link(staging, path)
    except FileExistsError:
        pass
    else:
        log.warning(
            "created the key that encrypts notification secrets: %s (mode 0600). Back it up "
            "with the database; every replica needs the same key (AAMI_ENCRYPTION_KEY_FILE)",
            path,
        )
    finally:
        staging.unlink(missing_ok=True)


def _read_key_file(path: Path) -> list[str]:
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise SecretKeyError(f"cannot read the encryption key file {path}: {exc}") from None
    if mode & 0o077:
        log.warning(
            "the encryption key file %s is readable by others (mode %o)", path, mode & 0o777
        )
    return _parse_keys(text, str(path))


def load_box(settings: Settings) -> SecretBox:
    """The key the settings name, or the server's own key file (made on first use)."""
    if settings.encryption_key is not None and settings.encryption_key_file is not None:
        raise SecretKeyError("set AAMI_ENCRYPTION_KEY or AAMI_ENCRYPTION_KEY_FILE, not both")
    if settings.encryption_key is not None:
        return SecretBox(
            _parse_keys(settings.encryption_key.get_secret_value(), "AAMI_ENCRYPTION_KEY")
        )
    if settings.encryption_key_file is not None:
        return SecretBox(_read_key_file(settings.encryption_key_file.expanduser()))
    path = default_key_path(settings.database_url)
    if not path.exists():
        try:
            _create_key_file(path)
        except OSError as exc:
            raise SecretKeyError(
                f"cannot create the encryption key file {path}: {exc}; "
                "set AAMI_ENCRYPTION_KEY_FILE to a key file the server can read"
            ) from None
    return SecretBox(_read_key_file(path))


_BOXES: weakref.WeakKeyDictionary[Dialect, SecretBox] = weakref.WeakKeyDictionary()


def use_box(engine: Engine, box: SecretBox) -> None:
    """Encrypt and decrypt the secrets of ``engine``'s database with ``box``."""
    _BOXES[engine.dialect] = box


def box_for(dialect: Dialect) -> SecretBox | None:
    return _BOXES.get(dialect)


def box_for_connection(connection: Connection) -> SecretBox:
    """The engine's box, or the one the environment's settings name (``aami db upgrade``)."""
    box = box_for(connection.dialect)
    if box is None:
        url = connection.engine.url.render_as_string(hide_password=False)
        box = load_box(Settings(database_url=url))
    return box


def check_key(factory: sessionmaker[Session]) -> None:
    """Refuse to start with a key that cannot read the secrets already stored."""
    from aami.security.repository import SecretRepository  # it imports the models

    with factory() as session:
        try:
            SecretRepository(session).sample()
        except SecretUnreadable as exc:
            raise SecretKeyError(exc.detail) from None


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token of the engine's key (see ``use_box``)."""

    impl = Text
    cache_ok = True

    @staticmethod
    def _box(dialect: Dialect) -> SecretBox:
        box = box_for(dialect)
        if box is None:
            raise SecretKeyError(
                "no encryption key for this database engine (aami.security.secrets.use_box)"
            )
        return box

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self._box(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self._box(dialect).decrypt(value)
