"""Planning a document: what it changes, entry by entry and field by field, compared with
the database.

A ``Section`` maps one section of the document onto its rows and its domain service,
typed by the rows' model. Rows are matched to the document's entries by key (a name, see
``document``), never by id. Its ``plan`` compares the document's fields with each row's
export and makes the steps: create, update (each changed field, old and new) or delete
(only when pruning).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from aami.configcode.applying import Context
from aami.configcode.document import Fields, body_fields, entry_path
from aami.configcode.repository import ConfigRepository
from aami.errors import AamiError, Conflict

__all__ = [
    "Change",
    "FieldChange",
    "Plan",
    "RuleEffect",
    "Section",
    "SectionPlan",
    "Step",
    "execute",
    "field_changes",
]

Action = Literal["create", "update", "delete"]
HIDDEN = "(hidden)"  # what a diff shows of a secret


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # a field or config key that is not set


@dataclass(frozen=True)
class FieldChange:
    """One field that changes: its path in the entry (``config.threshold``), old and new."""

    path: str
    old: Any = ABSENT
    new: Any = ABSENT

    def as_dict(self) -> dict[str, Any]:
        item: dict[str, Any] = {"field": self.path}
        if self.old is not ABSENT:
            item["old"] = self.old
        if self.new is not ABSENT:
            item["new"] = self.new
        return item


@dataclass(frozen=True)
class RuleEffect:
    """An alert rule whose rendered Prometheus rule changes: before and after (None: there
    is none), each ``{alert, expr, for, enabled, labels, annotations}`` or ``{error}``."""

    rule: str
    rule_file: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "rule_file": self.rule_file,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class Change:
    """One entry the document changes: create, update or delete."""

    kind: str
    key: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    rules: list[RuleEffect] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        item: dict[str, Any] = {"kind": self.kind, "key": self.key, "action": self.action}
        if self.fields:
            item["fields"] = [change.as_dict() for change in self.fields]
        if self.rules:
            item["rules"] = [effect.as_dict() for effect in self.rules]
        return item


@dataclass
class Plan:
    """What applying a document changes, entry by entry, and which rule files."""

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


# ---- field-level differences -------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _join(prefix: str, name: object) -> str:
    if isinstance(name, int):
        return f"{prefix}[{name}]"
    text = str(name)
    if _NAME.match(text):
        return f"{prefix}.{text}" if prefix else text
    return f"{prefix}[{json.dumps(text, ensure_ascii=False)}]"


def field_changes(current: Fields, desired: Fields, prefix: str = "") -> list[FieldChange]:
    """Each field (and nested mapping key) whose value differs, in the desired order then
    the fields only ``current`` has; ``ABSENT`` stands for a key not set."""
    changes: list[FieldChange] = []
    names = list(desired) + sorted(name for name in current if name not in desired)
    for name in names:
        old, new = current.get(name, ABSENT), desired.get(name, ABSENT)
        if old == new:
            continue
        path = _join(prefix, name)
        if isinstance(old, dict) and isinstance(new, dict):
            inner = sorted(set(old) | set(new))
            changes += field_changes(
                {k: old[k] for k in inner if k in old}, {k: new[k] for k in inner if k in new}, path
            )
        else:
            changes.append(FieldChange(path, old, new))
    return changes


# ---- sections ----------------------------------------------------------------------------


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
    key: Callable[[ConfigRepository, RowT], str]
    export: Callable[[RowT], Fields]
    create: Callable[[Context, str, Fields], None]
    update: Callable[[Context, RowT, Fields], None]
    delete: Callable[[Context, RowT], None]
    # The changed fields as the update takes them, when that is not the export's diff.
    diff: Callable[[Fields, RowT], Fields] | None = None
    # Fields whose values a plan never shows (a channel's secret).
    hidden: frozenset[str] = frozenset()
    # The fields as a plan compares them for display, when that is not as exported.
    display: Callable[[Fields], Fields] | None = None

    def keyed(self, repo: ConfigRepository) -> dict[str, RowT]:
        """Every row by its key in the document, sorted by key; two rows with one key (only
        possible for script policies) are refused, naming both."""
        rows: dict[str, RowT] = {}
        for row in self.rows(repo):
            key = self.key(repo, row)
            other = rows.get(key)
            if other is not None:
                raise Conflict(
                    f"{entry_path(self.name, key)}: the server has two of these ({other.id} and "
                    f"{row.id}); delete one before exporting or applying a document"
                )
            rows[key] = row
        return dict(sorted(rows.items()))

    def exported(self, repo: ConfigRepository) -> dict[str, Fields]:
        """Every row as the document holds it, by key, sorted by key."""
        return {key: self.export(row) for key, row in self.keyed(repo).items()}

    def changed(self, desired: Fields, row: RowT) -> Fields:
        if self.diff is not None:
            return self.diff(desired, row)
        current = self.export(row)
        return {name: value for name, value in desired.items() if current.get(name) != value}

    def _shown(self, desired: Fields, row: RowT, changed: Fields) -> tuple[FieldChange, ...]:
        """The changed fields, old and new, as the document writes them."""
        current = self.export(row)
        visible = [n for n in changed if n not in self.hidden]
        old = {n: current[n] for n in visible if n in current}
        new = {n: desired[n] for n in visible}
        if self.display is not None:
            old, new = self.display(old), self.display(new)
        shown = field_changes(old, new)
        for name in sorted(self.hidden & set(changed)):
            shown.append(
                FieldChange(
                    name,
                    HIDDEN if current.get(name) is not None else ABSENT,
                    HIDDEN if changed[name] is not None else ABSENT,
                )
            )
        return tuple(shown)

    def plan(
        self, repo: ConfigRepository, wanted: dict[str, Fields], *, prune: bool
    ) -> SectionPlan:
        """The steps that make this section's rows what ``wanted`` says."""
        rows = self.keyed(repo)
        steps: list[Step] = []
        unchanged = 0
        for key, data in wanted.items():
            row = rows.get(key)
            if row is None:
                steps.append(self._create(key, data))
                continue
            changed = self.changed(data, row)
            if not changed:
                unchanged += 1
            else:
                steps.append(self._update(row, key, changed, self._shown(data, row, changed)))
        extra = sorted(set(rows) - set(wanted))
        if extra and prune:
            steps.extend(self._delete(rows[key], key) for key in extra)
            extra = []
        return SectionPlan(steps, unchanged, extra)

    def _create(self, key: str, data: Fields) -> Step:
        def run(ctx: Context) -> None:
            self.create(ctx, key, data)

        return Step(Change(self.name, key, "create"), run)

    def _update(self, row: RowT, key: str, changed: Fields, shown: tuple[FieldChange, ...]) -> Step:
        def run(ctx: Context) -> None:
            self.update(ctx, row, dict(changed))

        return Step(Change(self.name, key, "update", shown), run)

    def _delete(self, row: RowT, key: str) -> Step:
        def run(ctx: Context) -> None:
            self.delete(ctx, row)

        return Step(Change(self.name, key, "delete"), run)


# ---- running the steps -------------------------------------------------------------------

_FIELD_PATH = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)[.\[:]")


def located(section: str, key: str, detail: str) -> str:
    """A refusal with the entry's path in front: a field path the service names continues
    it (``alert_rules["HighCPUUsage@prod"].config.threshold: ...``)."""
    where = entry_path(section, key)
    if detail.startswith(where):
        return detail
    found = _FIELD_PATH.match(detail)
    if found and found.group(1) in body_fields(section):
        return f"{where}.{detail}"
    return f"{where}: {detail}"


def _run(ctx: Context, step: Step) -> None:
    """Run one step; a refusal names the entry it is about."""
    try:
        step.run(ctx)
    except AamiError as exc:
        detail = located(step.change.kind, step.change.key, exc.detail)
        if detail == exc.detail:
            raise
        raise type(exc)(detail) from None


def execute(ctx: Context, steps: Sequence[Step], phases: Sequence[Sequence[str]]) -> None:
    """Creates and updates in dependency order, then deletes in reverse, phase by phase."""
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
