"""The alert-history migration (0009) upgrades and downgrades on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from aami.db.session import make_engine
from tests.support.migrations import HEAD, migrate


def _tables(url: str) -> tuple[set[str], set[str], str]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        indexes = (
            {i["name"] or "" for i in inspector.get_indexes("alert_history")}
            if "alert_history" in tables
            else set()
        )
        with engine.connect() as connection:
            version = str(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            )
    finally:
        engine.dispose()
    return tables, indexes, version


def test_alert_history_migration_up_and_down(database_url: str) -> None:
    tables, indexes, version = _tables(database_url)
    assert version == HEAD
    assert "alert_history" in tables
    assert {"ix_alert_history_instance_at", "ix_alert_history_group_at"} <= indexes

    engine = make_engine(database_url)
    insert = text(
        "INSERT INTO alert_history (fingerprint, alertname, status, labels, summary, "
        "starts_at, at, receiver, received_at) VALUES ('abc', 'NodeDown', 'firing', '{}', '', "
        "'2026-12-06 05:00:00+00:00', '2026-12-06 05:00:00+00:00', 'aami-history', "
        "'2026-12-06 05:00:01+00:00')"
    )
    with engine.begin() as connection:
        connection.execute(insert)
    # the same episode and status is stored once
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert)
    engine.dispose()

    migrate(database_url, "0008")
    tables, _, version = _tables(database_url)
    assert version == "0008"
    assert "alert_history" not in tables

    migrate(database_url, "head")
    tables, _, version = _tables(database_url)
    assert version == HEAD
    assert "alert_history" in tables
