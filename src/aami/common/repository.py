"""The repository base: what every repository did by hand, written once.

``Repository[Model]`` holds the session and gives ``get``, ``add``, ``delete`` and
``page`` (one page of a query, and how many rows the whole query has). ``text_search``
and ``has_label`` are the SQL of the filter box and of ``?label=key=value``: they work on
SQLite and PostgreSQL alike, so filtering and paging both happen in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import JSON, Boolean, ColumnElement, Select, String, false, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from aami.db.base import Base

__all__ = ["Repository", "SessionRepository", "has_label", "text_search"]

M = TypeVar("M", bound=Base)


class SessionRepository:
    """A repository over several tables (no model of its own): it holds the session."""

    def __init__(self, session: Session) -> None:
        self.session = session


class Repository(SessionRepository, Generic[M]):
    """A repository of one model. Subclasses set ``model``::

    class GroupRepository(Repository[Group]):
        model = Group
    """

    model: type[M]
    # add/delete flush at once, so a constraint fails where the row was added; a
    # repository whose rows may wait for the commit says so.
    flush_writes: ClassVar[bool] = True

    def get(self, key: str | int) -> M | None:
        """The row with this primary key, or None."""
        return self.session.get(self.model, key)

    def add(self, row: M) -> None:
        self.session.add(row)
        if self.flush_writes:
            self.session.flush()

    def delete(self, row: M) -> None:
        self.session.delete(row)
        if self.flush_writes:
            self.session.flush()

    def page(
        self,
        query: Select[M],
        *order_by: ColumnElement[Any] | Any,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[M], int]:
        """One page of ``query`` in this order, and the number of rows it has in all."""
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(*order_by).offset(offset).limit(limit)).all()
        return rows, total


def text_search(q: str, *columns: Any) -> ColumnElement[bool]:
    """Rows where any of ``columns`` holds ``q``, case-insensitively, as a substring.

    Text columns are matched as they are; a JSON object column (labels) as its entries
    written ``key=value`` and joined by spaces, as the UI shows them. ``%`` and ``_`` in
    ``q`` are literal.
    """
    terms = [
        (_MapText(column) if isinstance(column.type, JSON) else column).icontains(
            q, autoescape=True
        )
        for column in columns
    ]
    return or_(false(), *terms)


def has_label(column: Any, key: str, value: str) -> ColumnElement[bool]:
    """Rows whose JSON object ``column`` maps ``key`` to exactly ``value``."""
    return _HasEntry(column, key, value)


# ---- dialect SQL -----------------------------------------------------------------------
# JSON functions differ per dialect; these constructs compile to each one's own. On both,
# the object's entries come out in document order (PostgreSQL's ``json``, not ``jsonb``).


class _MapText(FunctionElement[str]):
    """A JSON object as ``k1=v1 k2=v2`` (NULL when it is empty)."""

    type = String()
    inherit_cache = True
    name = "aami_map_text"


class _HasEntry(FunctionElement[bool]):
    """Whether a JSON object has the entry ``key: value`` (a string)."""

    type = Boolean()
    inherit_cache = True
    name = "aami_has_entry"


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(_MapText, "sqlite")
def _map_text_sqlite(element: _MapText, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _args(element, compiler, **kw)
    return (
        "(SELECT group_concat(aami_kv.key || '=' || aami_kv.value, ' ') "
        f"FROM json_each({column}) AS aami_kv)"
    )


@compiles(_MapText, "postgresql")
def _map_text_postgresql(element: _MapText, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _args(element, compiler, **kw)
    return (
        "(SELECT string_agg(aami_kv.key || '=' || aami_kv.value, ' ' ORDER BY aami_kv.n) "
        f"FROM json_each_text({column}) WITH ORDINALITY AS aami_kv(key, value, n))"
    )


@compiles(_HasEntry, "sqlite")
def _has_entry_sqlite(element: _HasEntry, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, value = _args(element, compiler, **kw)
    return (
        f"EXISTS (SELECT 1 FROM json_each({column}) AS aami_kv "
        f"WHERE aami_kv.key = {key} AND aami_kv.type = 'text' AND aami_kv.value = {value})"
    )


@compiles(_HasEntry, "postgresql")
def _has_entry_postgresql(element: _HasEntry, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, value = _args(element, compiler, **kw)
    return f"({column})::jsonb @> jsonb_build_object(CAST({key} AS text), CAST({value} AS text))"
