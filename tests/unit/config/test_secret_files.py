"""Secrets from files (``AAMI_ADMIN_TOKEN_FILE``, ``AAMI_SD_TOKEN_FILE``,
``AAMI_DB_PASSWORD_FILE``), as Docker Compose secrets and systemd credentials give them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from aami.config import Settings

ADMIN = "admin-token-from-a-file-0123456789"
SD = "sd-token-from-a-file-0123456789"


def _secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")  # `openssl rand -hex 32 > file` ends with a newline
    return path


def test_tokens_and_the_database_password_are_read_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AAMI_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("AAMI_ADMIN_TOKEN_FILE", str(_secret(tmp_path, "admin", ADMIN)))
    monkeypatch.setenv("AAMI_SD_TOKEN_FILE", str(_secret(tmp_path, "sd", SD)))
    monkeypatch.setenv("AAMI_DB_PASSWORD_FILE", str(_secret(tmp_path, "pw", "p@ss/word:1")))
    monkeypatch.setenv("AAMI_DATABASE_URL", "postgresql+psycopg://aami@db.example:5432/aami")
    settings = Settings()
    assert settings.admin_token == ADMIN
    assert settings.sd_token == SD
    url = make_url(settings.database_url)
    assert (url.username, url.password, url.host, url.database) == (
        "aami",
        "p@ss/word:1",
        "db.example",
        "aami",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AAMI_ADMIN_TOKEN": ADMIN, "AAMI_ADMIN_TOKEN_FILE": "{admin}"}, "not both"),
        ({"AAMI_ADMIN_TOKEN_FILE": "{missing}"}, "AAMI_ADMIN_TOKEN_FILE: cannot read"),
        ({"AAMI_SD_TOKEN_FILE": "{empty}"}, "AAMI_SD_TOKEN_FILE: "),
        ({"AAMI_ADMIN_TOKEN_FILE": "{short}"}, "at least 16 characters"),
        (
            {
                "AAMI_DATABASE_URL": "postgresql+psycopg://aami:inline@db/aami",
                "AAMI_DB_PASSWORD_FILE": "{admin}",
            },
            "keep the password in one place",
        ),
    ],
)
def test_a_bad_secret_file_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    files = {
        "admin": str(_secret(tmp_path, "admin", ADMIN)),
        "missing": str(tmp_path / "missing"),
        "empty": str(_secret(tmp_path, "empty", "")),
        "short": str(_secret(tmp_path, "short", "tooshort")),
    }
    monkeypatch.delenv("AAMI_ADMIN_TOKEN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(**files))
    with pytest.raises(ValidationError) as caught:
        Settings()
    said = "; ".join(str(error["msg"]) for error in caught.value.errors())  # what `aami` prints
    assert message in said
    assert ADMIN not in said
    assert "inline" not in said
