"""Planning a document: what it changes, entity by entity, compared with the database.

A ``Section`` maps one section of the document onto its rows and its domain service,
typed by the rows' model. Its ``plan`` compares the document's fields with each row's
export and makes the steps: create, update, replace (a field the update schema cannot
change: delete, then create), or delete (only when pruning).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from aami.configcode.applying import Context
from aami.configcode.document import Fields
from aami.configcode.repository import ConfigRepository
from aami.errors import AamiError

__all__ = ["Change", "Plan", "Section", "SectionPlan", "Step", "execute"]

Action = Literal["create", "update", "replace", "delete"]


@dataclass(frozen=True)
class Change:
    """One entity the document changes: create, update, replace or delete."""

    kind: str
    id: str
    action: Action
    fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        item: dict[str, Any] = {"kind": self.kind, "id": self.id, "action": self.action}
        if self.fields:
            item["fields"] = list(self.fields)
        return item


@dataclass
class Plan:
    """What applying a document changes, entity by entity, and which rule files."""

    prune: bool
    changes: list[Change] = field(default_factory=list)
    unchanged: dict[str, int] = field(default_factory=dict)
    not_in_document: dict[str, list[str]] = field(default_factory=dict)
    rule_files_written: list[str] = field(default_factory=list)
    rule_files_removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.rule_files_written or self.rule_files_removed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "prune": self.prune,
            "changes": [change.as_dict() for change in self.changes],
            "unchanged": self.unchanged,
            "not_in_document": self.not_in_document,
            "rule_files": {
                "written": self.rule_files_written,
                "removed": self.rule_files_removed,
            },
        }


@dataclass(frozen=True)
class Step:
    """One change, ready to run in the apply's context."""

    change: Change
    run: Callable[[Context], None]


@dataclass(frozen=True)
class SectionPlan:
    steps: list[Step]
    unchanged: int
    not_in_document: list[str]


class Entity(Protocol):
    """A row of the configuration: every one has a string id."""

    @property
    def id(self) -> str: ...


RowT = TypeVar("RowT", bound=Entity)


@dataclass(frozen=True)
class Section(Generic[RowT]):
    """How one section of the document maps onto its rows and its domain service."""

    name: str
    rows: Callable[[ConfigRepository], Sequence[RowT]]
    export: Callable[[RowT], Fields]
    create: Callable[[Context, str, Fields], None]
    update: Callable[[Context, RowT, Fields], None]
    delete: Callable[[Context, RowT], None]
    # Fields the update schema cannot change: a change deletes and re-creates the entity.
    replace_on: frozenset[str] = frozenset()
    # The changed fields as the update takes them, when that is not the export's diff.
    diff: Callable[[Fields, RowT], Fields] | None = None

    def exported(self, repo: ConfigRepository) -> dict[str, Fields]:
        """Every row as the document holds it, by id, sorted by id."""
        return {row.id: self.export(row) for row in sorted(self.rows(repo), key=lambda r: r.id)}

    def changed(self, desired: Fields, row: RowT) -> Fields:
        if self.diff is not None:
            return self.diff(desired, row)
        current = self.export(row)
        return {name: value for name, value in desired.items() if current.get(name) != value}

    def plan(
        self, repo: ConfigRepository, wanted: dict[str, Fields], *, prune: bool
    ) -> SectionPlan:
        """The steps that make this section's rows what ``wanted`` says."""
        rows = {row.id: row for row in self.rows(repo)}
        steps: list[Step] = []
        unchanged = 0
        for entity_id, data in wanted.items():
            row = rows.get(entity_id)
            if row is None:
                steps.append(self._create(entity_id, data))
                continue
            changed = self.changed(data, row)
            if not changed:
                unchanged += 1
            elif self.replace_on & set(changed):
                steps.append(self._replace(row, entity_id, data, tuple(changed)))
            else:
                steps.append(self._update(row, entity_id, changed))
        extra = sorted(set(rows) - set(wanted))
        if extra and prune:
            steps.extend(self._delete(rows[entity_id], entity_id) for entity_id in extra)
            extra = []
        return SectionPlan(steps, unchanged, extra)

    def _create(self, entity_id: str, data: Fields) -> Step:
        def run(ctx: Context) -> None:
            self.create(ctx, entity_id, data)

        return Step(Change(self.name, entity_id, "create"), run)

    def _update(self, row: RowT, entity_id: str, changed: Fields) -> Step:
        def run(ctx: Context) -> None:
            self.update(ctx, row, dict(changed))

        return Step(Change(self.name, entity_id, "update", tuple(changed)), run)

    def _replace(self, row: RowT, entity_id: str, data: Fields, fields: tuple[str, ...]) -> Step:
        def run(ctx: Context) -> None:
            self.delete(ctx, row)
            ctx.session.flush()
            self.create(ctx, entity_id, data)

        return Step(Change(self.name, entity_id, "replace", fields), run)

    def _delete(self, row: RowT, entity_id: str) -> Step:
        def run(ctx: Context) -> None:
            self.delete(ctx, row)

        return Step(Change(self.name, entity_id, "delete"), run)


def _run(ctx: Context, step: Step) -> None:
    """Run one step; a refusal names the entry it is about (``alert_rules.r1: ...``)."""
    try:
        step.run(ctx)
    except AamiError as exc:
        where = f"{step.change.kind}.{step.change.id}"
        if exc.detail.startswith(where):
            raise
        raise type(exc)(f"{where}: {exc.detail}") from None


def execute(ctx: Context, steps: Sequence[Step], phases: Sequence[Sequence[str]]) -> None:
    """Creates, updates and replaces in dependency order, then deletes in reverse, phase by
    phase."""
    for phase in phases:
        for name in phase:
            for step in steps:
                if step.change.kind == name and step.change.action != "delete":
                    _run(ctx, step)
            ctx.session.flush()
        for name in reversed(phase):
            for step in steps:
                if step.change.kind == name and step.change.action == "delete":
                    _run(ctx, step)
            ctx.session.flush()
