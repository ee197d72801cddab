"""Shared pydantic pieces: label maps, partial updates, paginated lists, error bodies."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ERROR_RESPONSES",
    "LABEL_NAME",
    "ErrorBody",
    "Labels",
    "Page",
    "Pagination",
    "PartialUpdate",
    "ReadModel",
]

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
T = TypeVar("T")


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not LABEL_NAME.match(key) or key.startswith("__"):
            raise ValueError(
                f"label name {key!r} is not a valid Prometheus label name "
                "([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
            )
    return value


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]


class PartialUpdate(BaseModel):
    """Base of ``*Update`` schemas: absent fields stay as they are.

    ``false``, ``0`` and ``""`` are real values; ``null`` is accepted only for the
    fields named in ``nullable``.
    """

    model_config = ConfigDict(extra="forbid")
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null(self) -> PartialUpdate:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"{name} may not be null; leave it out to keep it unchanged")
        return self

    def changes(self) -> dict[str, Any]:
        """Return only the fields the client sent."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    """Every error answer of the API (``aami.api.errors``), whatever its status."""

    error: str = Field(
        description="the kind: invalid, not_found, conflict, unauthorized, forbidden, "
        "unavailable, bad_request, ...",
        examples=["invalid"],
    )
    detail: str = Field(
        description="what was wrong and why (for invalid input: the field first)",
        examples=["query_template: brackets ( [ { are nested more than 64 deep"],
    )


# The error statuses every /api/v1 route may answer, documented with the body they carry;
# 422 replaces FastAPI's HTTPValidationError, which is not what the handler sends.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request: the body cannot be read"),
        (401, "No token, or one AAMI does not know"),
        (403, "The token may not do this"),
        (404, "Not found"),
        (409, "Conflicts with what exists"),
        (413, "The body is too large"),
        (422, "Invalid input: the detail names the field and says why"),
        (429, "Too many failed authentications; retry later"),
        (503, "A dependency (the database, Prometheus, Alertmanager) cannot answer; retry"),
    )
}


class Pagination(BaseModel):
    page: int
    limit: int
    total: int
    total_pages: int


class Page(BaseModel, Generic[T]):
    data: list[T]
    pagination: Pagination

    @classmethod
    def of(cls, data: list[T], *, page: int, limit: int, total: int) -> Page[T]:
        """Wrap one page of results with its totals."""
        return cls(
            data=data,
            pagination=Pagination(
                page=page, limit=limit, total=total, total_pages=-(-total // limit)
            ),
        )


# Past the end of any table, and within the 64-bit OFFSET of SQLite and PostgreSQL: a page
# number of 2**63 - 1 overflowed it (a 500); any page past the end is an empty page.
MAX_OFFSET = 2**53


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1)
    limit: int = Field(default=50, ge=1, le=1000)

    @property
    def offset(self) -> int:
        return min((self.page - 1) * self.limit, MAX_OFFSET)
