"""Pages of a list, and what a person typed in a list's filter box.

The filtering itself is SQL in the repositories (``q=`` of the list services), paged there
too, so a filter box reaches every row however long the list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request

from aami.common.filters import SEARCH_MAX_LENGTH

__all__ = ["PAGE_SIZE", "Pager", "page_number", "search_text"]

PAGE_SIZE = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def page_number(request: Request) -> int:
    """The ``page`` query parameter; anything odd is page 1."""
    text = request.query_params.get("page", "1")
    return max(1, int(text)) if text.isdigit() and len(text) < 7 else 1


def search_text(raw: str) -> str:
    """What a filter box holds, as the list services take it: trimmed, without control
    characters (PostgreSQL refuses NUL), at most as long as the API's ``q``."""
    return _CONTROL.sub("", raw).strip()[:SEARCH_MAX_LENGTH]


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
