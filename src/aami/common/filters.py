"""Query-string filter helpers."""

from __future__ import annotations

from aami.errors import BadRequest

__all__ = ["parse_label_filter"]


def parse_label_filter(value: str | None) -> tuple[str, str] | None:
    """Parse ``key=value`` into a pair; None when absent."""
    if value is None:
        return None
    key, sep, label_value = value.partition("=")
    if not sep or not key:
        raise BadRequest(f"label filter {value!r} must look like key=value")
    return key, label_value
