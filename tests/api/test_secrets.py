"""Notification secrets are encrypted at rest; the key comes from a setting or a 0600 file
the server makes; the migration encrypts what was stored in plaintext."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from alembic import command
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from aami.app import create_app
from aami.config import Settings
from aami.db.migrate import alembic_config
from aami.db.session import make_engine, session_scope
from aami.security.secrets import (
    SecretBox,
    SecretKeyError,
    default_key_path,
    load_box,
    use_box,
)
from tests.conftest import AUTH, TOKEN
from tests.support.api import app_services, create

PLAINTEXT = "xoxb-do-not-store-me-in-clear-0123456789"


def _channel(client: TestClient, name: str = "ops", secret: str = PLAINTEXT) -> None:
    create(
        client,
        "/api/v1/notification-channels",
        {
            "name": name,
            "type": "webhook",
            "settings": {"url": "http://127.0.0.1:9/hook"},
            "secret": secret,
        },
    )


def _raw_secrets(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT secret FROM notification_channels")).all()
    finally:
        engine.dispose()
    return [row[0] for row in rows]


def test_secrets_are_stored_encrypted_and_read_back_in_plaintext(
    client: TestClient, settings: Settings
) -> None:
    _channel(client)
    [stored] = _raw_secrets(settings.database_url)
    assert PLAINTEXT not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token
    assert load_box(settings).decrypt(stored) == PLAINTEXT
    # The code above the ORM is unchanged: the publisher renders the plaintext secret file.
    app = app_services(client)
    with session_scope(app.sessionmaker) as session:
        rendered = app.alertmanager_publisher.render(session)
    assert rendered.secrets == {"ops": PLAINTEXT}


def test_no_plaintext_in_the_sqlite_file_bytes(sqlite_template: Path, tmp_path: Path) -> None:
    database = tmp_path / "plain.db"
    shutil.copyfile(sqlite_template, database)
    local = Settings(
        database_url=f"sqlite:///{database}",
        admin_token=TOKEN,
        PROMETHEUS_RULE_PATH=tmp_path / "rules",
        PROMETHEUS_RELOAD_ENABLED=False,
        ALERTMANAGER_URL="http://127.0.0.1:1",
    )
    with TestClient(create_app(local), headers=AUTH) as client:
        _channel(client)
        _channel(client, "second", PLAINTEXT + "-two")
        # Both the database file and its write-ahead log, while the server is running.
        files = [p for p in tmp_path.iterdir() if p.name.startswith("plain.db")]
        assert {p.name for p in files} >= {"plain.db", "plain.db-wal"}
        for path in files:
            assert PLAINTEXT.encode() not in path.read_bytes(), path
    assert PLAINTEXT.encode() not in database.read_bytes()
    connection = sqlite3.connect(database)
    stored = [row[0] for row in connection.execute("SELECT secret FROM notification_channels")]
    connection.close()
    assert len(stored) == 2
    assert all(value.startswith("gAAAAA") for value in stored)


def test_the_server_makes_its_key_file_0600_beside_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'aami.db'}"
    path = default_key_path(url)
    assert path == tmp_path / "state" / "aami.db.encryption-key"
    make_engine(url).dispose()  # the server makes the directory first
    box = load_box(Settings(database_url=url))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_box(Settings(database_url=url))  # the same key on the next start
    assert again.decrypt(box.encrypt("x")) == "x"


def test_a_key_from_the_environment_or_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aami.db'}"
    key = Fernet.generate_key().decode()
    box = load_box(Settings(database_url=url, encryption_key=key))
    assert Fernet(key.encode()).decrypt(box.encrypt("x").encode()) == b"x"
    assert not default_key_path(url).exists()
    key_file = tmp_path / "key"
    key_file.write_text(f"{key}\n")
    key_file.chmod(0o600)
    assert (
        load_box(Settings(database_url=url, encryption_key_file=key_file)).decrypt(box.encrypt("y"))
        == "y"
    )
    # Rotation: a new key in front encrypts, the old one still decrypts.
    new = Fernet.generate_key().decode()
    rotated = load_box(Settings(database_url=url, encryption_key=f"{new},{key}"))
    assert rotated.decrypt(box.encrypt("z")) == "z"
    assert Fernet(new.encode()).decrypt(rotated.encrypt("z").encode()) == b"z"


def test_bad_key_settings_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aami.db'}"
    key = Fernet.generate_key().decode()
    with pytest.raises(SecretKeyError, match="not both"):
        load_box(Settings(database_url=url, encryption_key=key, encryption_key_file=tmp_path / "k"))
    with pytest.raises(SecretKeyError, match="cannot read"):
        load_box(Settings(database_url=url, encryption_key_file=tmp_path / "missing"))
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        load_box(Settings(database_url=url, encryption_key="not-a-key"))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SecretKeyError, match="no key"):
        load_box(Settings(database_url=url, encryption_key_file=empty))


def test_a_server_with_another_key_refuses_to_start(client: TestClient, settings: Settings) -> None:
    _channel(client)
    other = settings.model_copy(
        update={"encryption_key": SecretStr(Fernet.generate_key().decode())}
    )
    with pytest.raises(SecretKeyError, match="same key"), TestClient(create_app(other)):
        pass


def _migrate(url: str, revision: str, box: SecretBox | None = None) -> None:
    engine = make_engine(url)
    if box is not None:
        use_box(engine, box)
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            if revision == "head":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    finally:
        engine.dispose()


def _stored(url: str) -> dict[str, str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, secret FROM notification_channels"))
            return {row[0]: row[1] for row in rows}
    finally:
        engine.dispose()


def test_the_migration_encrypts_plaintext_secrets(database_url: str) -> None:
    _migrate(database_url, "0006")  # before this change: secrets in plaintext
    engine = create_engine(database_url)
    with engine.begin() as connection:
        for name, secret in (("a", PLAINTEXT), ("b", None)):
            connection.execute(
                text(
                    "INSERT INTO notification_channels "
                    "(id, name, type, settings, secret, created_at, updated_at) "
                    "VALUES (:id, :id, 'webhook', '{}', :secret, "
                    "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ),
                {"id": name, "secret": secret},
            )
    engine.dispose()
    # As `aami db upgrade` does it: no key given to the engine, so the one the environment
    # names (here: the server's own key file, made now) is used.
    _migrate(database_url, "head")
    stored = _stored(database_url)
    assert stored["b"] is None
    box = load_box(Settings(database_url=database_url))
    assert stored["a"] is not None
    assert box.decrypt(stored["a"]) == PLAINTEXT
    if database_url.startswith("sqlite"):
        # No copy of the plaintext is left in the file's free space either.
        database = Path(database_url.removeprefix("sqlite:///"))
        for path in database.parent.iterdir():
            if path.name.startswith(database.name):
                assert PLAINTEXT.encode() not in path.read_bytes(), path

    # Down again: the plaintext comes back, with the key the engine is given.
    _migrate(database_url, "0006", box)
    assert _stored(database_url)["a"] == PLAINTEXT


def test_secret_box_refuses_tokens_of_another_key() -> None:
    one = SecretBox([Fernet.generate_key()])
    two = SecretBox([Fernet.generate_key()])
    assert not two.readable(one.encrypt("x"))
    assert not one.readable(PLAINTEXT)
