"""Shared pydantic pieces: label maps, partial updates, paginated lists."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = ["LABEL_NAME", "Labels", "Page", "Pagination", "PartialUpdate", "ReadModel"]

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


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1)
    limit: int = Field(default=50, ge=1, le=1000)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit
