"""Moving a test database to a migration revision, and the newest one."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory

from aami.db.migrate import alembic_config
from aami.db.session import make_engine

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def migrate(url: str, revision: str) -> None:
    """Upgrade to ``head``, or downgrade to ``revision``."""
    engine = make_engine(url)
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
