"""The server signs every check it hands out; the key is made once, kept, and rotated by
holding the next key beside it. What it signs is what the agent verifies."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from aami.agent.client import Check
from aami.agent.signing import parse_key_document, update_trust, verify_check
from aami.app import create_app
from aami.config import Settings
from aami.security.signing import Signer, SigningKey, default_key_path, load_or_create_key
from tests.api.test_checks import MOUNT_CHECK
from tests.conftest import AUTH, TOKEN
from tests.support.api import app_services, create

SD_TOKEN = "sd-token-0123456789abcdef"


def _checks_and_keys(client: TestClient) -> tuple[list[Check], dict[str, bytes]]:
    """The admin's view of gpu-node-01's checks, and the keys the server offers."""
    checks = client.get("/api/v1/checks/target/gpu-node-01").json()
    offered = parse_key_document(client.get("/api/v1/checks/signing-keys").json())
    return [Check.from_json(c) for c in checks], {k.key_id: k.public_key for k in offered}


def _fleet(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "ml", "name": "ml"})
    create(
        client,
        "/api/v1/targets",
        {"id": "gpu-node-01", "hostname": "gpu-node-01", "ip_address": "10.0.0.1"},
    )
    client.put("/api/v1/targets/gpu-node-01", json={"group_ids": ["ml"]})
    create(client, "/api/v1/script-templates", MOUNT_CHECK)
    for config in ({"paths": "/data"}, {"paths": "/mnt"}):
        create(
            client,
            "/api/v1/script-policies",
            {"template_id": "mount-check", "scope": "group", "group_id": "ml", "config": config},
        )


def test_every_check_is_signed_with_the_offered_key(client: TestClient) -> None:
    _fleet(client)
    checks, keys = _checks_and_keys(client)
    assert checks
    assert list(keys) == app_services(client).signer.key_ids
    for check in checks:
        assert verify_check(check.message(), check.signatures, keys) is None
        # one changed byte of what reaches the node, and the signature no longer holds
        moved = Check.from_json({**check.to_json(), "config": {"paths": "/"}})
        assert verify_check(moved.message(), moved.signatures, keys) == "bad_signature"


def test_signing_keys_need_a_node_or_admin_token(
    settings: Settings, tmp_path: Path, client: TestClient
) -> None:
    anonymous = TestClient(client.app)
    assert anonymous.get("/api/v1/checks/signing-keys").status_code == 401
    sd_app = create_app(settings.model_copy(update={"sd_token": SD_TOKEN}))
    with TestClient(sd_app) as sd:
        response = sd.get(
            "/api/v1/checks/signing-keys", headers={"Authorization": f"Bearer {SD_TOKEN}"}
        )
        assert response.status_code == 403
        admin = sd.get("/api/v1/checks/signing-keys", headers=AUTH)
        assert admin.status_code == 200
        assert admin.json()["algorithm"] == "ed25519"


def test_the_key_is_created_private_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "aami-signing.key"
    first = load_or_create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_key(path)
    assert again.key_id == first.key_id
    assert again.public_key == first.public_key


def test_the_default_key_lives_beside_a_sqlite_database_or_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_key_path(f"sqlite:///{tmp_path / 'aami.db'}") == tmp_path / "aami.db.signing-key"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    state_key = tmp_path / "state" / "aami" / "signing.key"
    assert default_key_path("postgresql+psycopg://aami@db/aami") == state_key
    assert default_key_path("sqlite://") == state_key


def test_two_apps_on_one_database_file_sign_with_one_key(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'aami.db'}", admin_token=TOKEN)
    first = app_services(create_app(settings)).signer
    second = app_services(create_app(settings)).signer
    assert first.key_ids == second.key_ids
    assert (tmp_path / "aami.db.signing-key").exists()


def test_a_key_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ec.key"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        load_or_create_key(path)
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        load_or_create_key(tmp_path / "junk.key")


def test_signatures_are_computed_once_per_message() -> None:
    signer = Signer(SigningKey.generate())
    fields = {
        "name": "c",
        "script_type": "custom",
        "language": "sh",
        "version": "1",
        "hash": "ab" * 32,
        "timeout_seconds": 30,
        "config": {"a": 1},
    }
    first = signer.sign_check(**fields)  # type: ignore[arg-type]
    assert signer.sign_check(**fields) is first  # type: ignore[arg-type]
    other = signer.sign_check(**{**fields, "config": {"a": 2}})  # type: ignore[arg-type]
    assert other is not first
    assert other != first


def test_rotation_the_server_signs_with_both_keys_and_endorses_the_next(
    settings: Settings, tmp_path: Path
) -> None:
    current, upcoming = tmp_path / "current.key", tmp_path / "next.key"
    before = settings.model_copy(update={"signing_key_file": current})
    with TestClient(create_app(before), headers=AUTH) as client:
        _fleet(client)
        checks, pinned = _checks_and_keys(client)
    old_id = next(iter(pinned))

    # 1. every replica gets the next key: both sign, the next is endorsed by the current
    during = before.model_copy(update={"signing_next_key_file": upcoming})
    with TestClient(create_app(during), headers=AUTH) as client:
        checks, offered = _checks_and_keys(client)
        document = parse_key_document(client.get("/api/v1/checks/signing-keys").json())
    new_id = load_or_create_key(upcoming).key_id
    assert list(offered) == [old_id, new_id]
    for check in checks:
        assert [s.key_id for s in check.signatures] == [old_id, new_id]
        assert verify_check(check.message(), check.signatures, pinned) is None
    trust = update_trust(pinned, document)
    assert trust.added == [new_id]
    assert trust.removed == []

    # 2. the next key becomes the key: nodes that followed keep running, and retire the old
    after = settings.model_copy(update={"signing_key_file": upcoming})
    with TestClient(create_app(after), headers=AUTH) as client:
        checks, offered = _checks_and_keys(client)
        document = parse_key_document(client.get("/api/v1/checks/signing-keys").json())
    assert list(offered) == [new_id]
    for check in checks:
        assert verify_check(check.message(), check.signatures, trust.keys) is None
        assert verify_check(check.message(), check.signatures, pinned) == "unknown_signing_key"
    assert update_trust(trust.keys, document).keys == {new_id: offered[new_id]}


def test_the_key_document_is_what_the_agent_parses(client: TestClient) -> None:
    body = client.get("/api/v1/checks/signing-keys").json()
    (key,) = body["keys"]
    assert len(base64.b64decode(key["public_key"])) == 32
    assert key["endorsements"] == []
    assert parse_key_document(body)[0].key_id == key["key_id"]
