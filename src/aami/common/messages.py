"""Validation errors in words a person reads: what is wrong with the value and what to
type instead, never the pattern or the parser's jargon. The API's 422 detail and the UI's
field messages both say them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["validation_message"]

# The patterns our schemas use, by what they ask for.
_PATTERNS = {
    r"^[a-z0-9][a-z0-9._-]{0,62}$": (
        "use lowercase letters, digits, '.', '-' and '_', starting with a letter or a digit, "
        "63 characters at most"
    ),
    r"^[a-z0-9][a-z0-9_-]*$": (
        "use lowercase letters, digits, '-' and '_', starting with a letter or a digit"
    ),
    r"^[^\x00-\x1f\x7f]+$": "must not contain control characters such as line breaks or tabs",
    r"^[^\x00-\x1f\x7f]*$": "must not contain control characters such as line breaks or tabs",
    r"^/[A-Za-z0-9._~/-]*$": (
        "must be a path that starts with '/' and holds only letters, digits and . _ ~ / -"
    ),
}

_PLAIN = {
    "missing": "is required",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "extra_forbidden": "is not a field this takes",
    "json_invalid": "is not valid JSON",
    "datetime_parsing": "must be a date and time such as 2026-12-06T10:00:00Z",
    "datetime_from_date_parsing": "must be a date and time such as 2026-12-06T10:00:00Z",
}


def _bounded(kind: str, ctx: Mapping[str, Any]) -> str | None:
    """Bounds and lengths, from the constraint's context."""
    texts = {
        "greater_than": "must be more than {gt}",
        "greater_than_equal": "must be at least {ge}",
        "less_than": "must be less than {lt}",
        "less_than_equal": "must be at most {le}",
        "string_too_short": "must be at least {min_length} characters long",
        "string_too_long": "must be at most {max_length} characters long",
        "too_short": "must have at least {min_length} items",
        "too_long": "must have at most {max_length} items",
        "literal_error": "must be {expected}",
        "enum": "must be {expected}",
    }
    text = texts.get(kind)
    if text is None:
        return None
    try:
        return text.format(**ctx)
    except (KeyError, IndexError):
        return None


def validation_message(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a sentence part."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(ctx.get("pattern", "")), "has characters that are not allowed")
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must have at least one item"
    bounded = _bounded(kind, ctx)
    if bounded is not None:
        return bounded
    if kind in _PLAIN:
        return _PLAIN[kind]
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")
