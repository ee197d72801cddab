"""Query-string filter helpers."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from aami.errors import BadRequest

__all__ = ["SEARCH_MAX_LENGTH", "parse_label_filter", "search_param"]

SEARCH_MAX_LENGTH = 200
# No control characters: PostgreSQL refuses NUL in a text parameter (a 500, not a match).
_SEARCH_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def parse_label_filter(value: str | None) -> tuple[str, str] | None:
    """Parse ``key=value`` into a pair; None when absent."""
    if value is None:
        return None
    key, sep, label_value = value.partition("=")
    if not sep or not key:
        raise BadRequest(f"label filter {value!r} must look like key=value")
    return key, label_value


def search_param(fields: str) -> Any:
    """The ``q`` query parameter of a list: a case-insensitive substring of ``fields``."""
    return Query(
        max_length=SEARCH_MAX_LENGTH,
        pattern=_SEARCH_PATTERN,
        description=f"any part of {fields}, case-insensitive (labels as key=value)"
        if "labels" in fields
        else f"any part of {fields}, case-insensitive",
    )
