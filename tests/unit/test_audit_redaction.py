from __future__ import annotations

from aami.audit.service import REDACTED, redact


def test_secret_keys_are_redacted_at_any_depth() -> None:
    value = {
        "name": "slack",
        "config": {
            "api_url": "https://hooks",
            "password": "hunter2",
            "headers": [{"Authorization": "x", "bot_token": "t"}],
        },
        "token_hash": "abc",
        "routing_key": None,
    }
    assert redact(value) == {
        "name": "slack",
        "config": {
            "api_url": "https://hooks",
            "password": REDACTED,
            "headers": [{"Authorization": "x", "bot_token": REDACTED}],
        },
        "token_hash": REDACTED,
        "routing_key": None,
    }
