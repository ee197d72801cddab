"""Pages of a list, and filtering a list by what a person typed in a filter box."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from fastapi import Request

__all__ = ["PAGE_SIZE", "Pager", "contains", "filtered", "page_number"]

T = TypeVar("T")
PAGE_SIZE = 50
# A filter box reads the whole list; past this many rows it stops and says so.
SCAN_LIMIT = 20_000
_CHUNK = 500


def page_number(request: Request) -> int:
    """The ``page`` query parameter; anything odd is page 1."""
    text = request.query_params.get("page", "1")
    return max(1, int(text)) if text.isdigit() and len(text) < 7 else 1


@dataclass(frozen=True)
class Pager:
    request: Request
    page: int
    total: int
    limit: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def url(self, page: int) -> str:
        params = {k: v for k, v in self.request.query_params.items() if k not in ("page", "notice")}
        params["page"] = str(page)
        return f"{self.request.url.path}?{urlencode(params)}"


def contains(needle: str, *haystack: object) -> bool:
    """Case-insensitive substring match over the text of some values (dicts as k=v)."""
    wanted = needle.lower()
    for value in haystack:
        if isinstance(value, dict):
            text = " ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            text = " ".join(str(v) for v in value)
        else:
            text = str(value or "")
        if wanted in text.lower():
            return True
    return False


def filtered(
    fetch: Callable[[int, int], tuple[Sequence[T], int]],
    keep: Callable[[T], bool],
    *,
    offset: int,
    limit: int,
) -> tuple[list[T], int]:
    """Walk a service's list in chunks, keep the matching rows, return one page of them.

    The services filter by exact name only; a filter box wants substrings.
    """
    matching: list[T] = []
    seen = 0
    while seen < SCAN_LIMIT:
        rows, total = fetch(seen, _CHUNK)
        matching.extend(row for row in rows if keep(row))
        seen += len(rows)
        if not rows or seen >= total:
            break
    return matching[offset : offset + limit], len(matching)
