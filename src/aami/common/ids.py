"""Client-chosen or generated string ids."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from pydantic import StringConstraints

__all__ = ["ID_PATTERN", "EntityId", "new_id"]

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_ID = re.compile(ID_PATTERN)

EntityId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def new_id(prefix: str) -> str:
    """Make an id such as ``grp-3f9a1c2b7d10``."""
    return f"{prefix}-{secrets.token_hex(6)}"


def is_valid_id(value: str) -> bool:
    """Tell whether ``value`` may be used as an id (safe in file names and labels)."""
    return bool(_ID.match(value)) and ".." not in value
