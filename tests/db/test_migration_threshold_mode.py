"""The threshold-mode migration (0010) upgrades and downgrades on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect, text

from aami.db.session import make_engine
from tests.support.migrations import HEAD, migrate


def _columns(url: str) -> tuple[set[str], str]:
    engine = make_engine(url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("alert_templates")}
        with engine.connect() as connection:
            version = str(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            )
    finally:
        engine.dispose()
    return columns, version


def _insert_template(url: str, template_id: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO alert_templates (id, name, description, query_template, "
                    "default_config, parameters, severity, for_duration, labels, annotations, "
                    "created_at, updated_at) VALUES (:id, :id, '', 'up == 0', '{}', '{}', "
                    "'warning', '5m', '{}', '{}', '2026-12-06 05:00:00+00:00', "
                    "'2026-12-06 05:00:00+00:00')"
                ),
                {"id": template_id},
            )
    finally:
        engine.dispose()


def test_threshold_mode_migration_up_and_down(database_url: str) -> None:
    columns, version = _columns(database_url)
    assert version == HEAD
    assert "threshold_mode" in columns

    migrate(database_url, "0009")
    columns, version = _columns(database_url)
    assert version == "0009"
    assert "threshold_mode" not in columns
    _insert_template(database_url, "tpl-before")

    migrate(database_url, "head")
    columns, version = _columns(database_url)
    assert version == HEAD
    assert "threshold_mode" in columns
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            mode = connection.execute(
                text("SELECT threshold_mode FROM alert_templates WHERE id = 'tpl-before'")
            ).scalar()
    finally:
        engine.dispose()
    assert mode == "per_group"  # a template from before keeps publishing per group
