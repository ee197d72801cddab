"""template parameters: each alert template declares the type, bounds and unit of its keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00

Existing templates get parameters inferred from their ``default_config``: a number is a
number, a duration string ('5m') a duration, a boolean an enum [true, false], ``severity``
an enum of the severities, any other string a label value. The inference is written out
here, not imported, so this revision keeps doing what it did when the code moves on.
"""

import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DURATION = re.compile(
    r"\A(?:0|(?=[0-9])(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?"
    r"(?:[0-9]+m)?(?:[0-9]+s)?(?:[0-9]+ms)?)\Z"
)
_templates = sa.table(
    "alert_templates",
    sa.column("id", sa.String),
    sa.column("default_config", sa.JSON),
    sa.column("parameters", sa.JSON),
)


def _parameter(key: str, value: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "label_value",
        "min": None,
        "max": None,
        "unit": "",
        "description": "",
        "choices": None,
    }
    if key == "severity":
        spec.update(type="enum", choices=["critical", "warning", "info"])
    elif isinstance(value, bool):
        spec.update(type="enum", choices=[True, False])
    elif isinstance(value, int | float):
        spec["type"] = "number"
    elif isinstance(value, str) and _DURATION.match(value):
        spec["type"] = "duration"
    return spec


def infer(default_config: dict[str, Any]) -> dict[str, Any]:
    """The parameters a template's defaults imply (group_id and group are filled in)."""
    return {
        key: _parameter(key, value)
        for key, value in default_config.items()
        if key not in ("group_id", "group")
    }


def upgrade() -> None:
    with op.batch_alter_table("alert_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parameters", sa.JSON(), nullable=False, server_default="{}"))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_templates.c.id, _templates.c.default_config)).all()
    for template_id, default_config in rows:
        if isinstance(default_config, str):  # a driver that hands JSON back as text
            default_config = json.loads(default_config)
        bind.execute(
            sa.update(_templates)
            .where(_templates.c.id == template_id)
            .values(parameters=infer(default_config or {}))
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_templates", schema=None) as batch_op:
        batch_op.drop_column("parameters")
