"""Configuration as code: export the configuration as one document; plan and apply one.

``apply`` performs the plan through the domain services (validation, audit and the
rule-scope marks are theirs) in the caller's one transaction, flushing only: the first
error raises and the caller rolls everything back. ``plan`` is a context manager that
applies the document the same way and rolls it back when its block ends.

The document's format is ``document``; the sections and their services, ``sections``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alerts import service as alerts
from aami.alerts.rendering import RenderError
from aami.configcode.applying import Context
from aami.configcode.document import API_VERSION, KIND, check_references, parse, split_rule_key
from aami.configcode.export import key_alert_rule
from aami.configcode.planning import Change, Plan, RuleEffect, Step, execute
from aami.configcode.repository import ConfigRepository
from aami.configcode.sections import PHASES, SECTIONS
from aami.prometheus.rule_files import RuleFileStore
from aami.prometheus.service import comparable_rule_files

__all__ = ["Plan", "apply", "export_document", "plan", "touches_alertmanager"]


def export_document(session: Session) -> dict[str, Any]:
    """The whole configuration as one document, every section sorted by key."""
    repo = ConfigRepository(session)
    document: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
    for section in SECTIONS:
        entities = section.exported(repo)
        if section.name == "notification_channels":
            for data in entities.values():
                if data["secret"] is None:
                    del data["secret"]
        document[section.name] = entities
    return document


def _run(
    session: Session, document: object, *, prune: bool, actor: str, am: AlertmanagerPublisher
) -> Plan:
    desired = parse(document)
    result = Plan(prune=prune)
    repo = ConfigRepository(session)
    check_references(desired, repo.names())
    before = comparable_rule_files(session)
    rules_before = _rendered_rules(repo)
    steps: list[Step] = []
    for section in SECTIONS:
        planned = section.plan(repo, desired[section.name], prune=prune)
        steps += planned.steps
        result.unchanged[section.name] = planned.unchanged
        if planned.not_in_document:
            result.not_in_document[section.name] = planned.not_in_document
    result.changes = [step.change for step in steps]
    execute(Context(session, actor, am), steps, PHASES)
    session.flush()
    session.expire_all()
    after = comparable_rule_files(session)
    result.rule_files_written = sorted(n for n, text in after.items() if before.get(n) != text)
    result.rule_files_removed = sorted(set(before) - set(after))
    _attach_effects(result.changes, rules_before, _rendered_rules(repo))
    return result


Rendered = dict[str, tuple[str, dict[str, Any]]]  # rule key -> (rule file, rendered state)


def _rendered_rules(repo: ConfigRepository) -> Rendered:
    """Every alert rule as it renders now, by its key in the document, with its file."""
    rendered: Rendered = {}
    for rule in repo.alert_rules():
        state: dict[str, Any]
        try:
            out = alerts.render(rule)
            state = {
                "alert": out["alert"],
                "expr": out["expr"],
                "for": out["for"],
                "enabled": rule.enabled,
                "labels": out["labels"],
                "annotations": out.get("annotations", {}),
            }
        except RenderError as exc:
            state = {"enabled": rule.enabled, "error": str(exc)}
        rendered[key_alert_rule(rule)] = (RuleFileStore.file_name(rule.scope_key), state)
    return rendered


def _affected(change: Change, keys: set[str]) -> list[str]:
    """The rules a change may re-render: its own, its template's, its group's."""
    if change.kind == "alert_rules":
        return [change.key]
    if change.kind == "alert_templates":
        return sorted(k for k in keys if split_rule_key(k).template == change.key)
    if change.kind == "groups":
        return sorted(k for k in keys if split_rule_key(k).group_id == change.key)
    return []


def _attach_effects(changes: list[Change], before: Rendered, after: Rendered) -> None:
    """Give each change the rules whose rendered form it changes, before and after."""
    keys = set(before) | set(after)
    for change in changes:
        for key in _affected(change, keys):
            old, new = before.get(key), after.get(key)
            if old == new:
                continue
            rule_file = (new or old or ("", {}))[0]
            change.rules.append(
                RuleEffect(key, rule_file, old[1] if old else None, new[1] if new else None)
            )


class _ValidateOnly(AlertmanagerPublisher):
    """A plan checks the Alertmanager config it would make with amtool; it needs no
    running Alertmanager."""

    def validate(self, session: Session) -> None:
        session.flush()
        self.check(self.render(session))


@contextmanager
def plan(
    session: Session, document: object, *, prune: bool, am: AlertmanagerPublisher
) -> Iterator[Plan]:
    """What applying ``document`` would change, for the ``with`` block; the session is
    rolled back when the block ends, however it ends (and when planning fails).

    The document is applied for real (the Alertmanager config is only checked), so the
    plan fails exactly where the apply would and the rule files are rendered from the
    result; the rollback discards it all. No savepoint: on SQLite a SAVEPOINT opens a
    deferred transaction at the first read, and its later write fails at once if the
    publisher committed in between.
    """
    checker = _ValidateOnly(
        factory=am.factory, settings=am.settings, client=am.client, tool_timeout=am.tool_timeout
    )
    try:
        yield _run(session, document, prune=prune, actor="plan", am=checker)
    finally:
        session.rollback()


def apply(
    session: Session, document: object, *, prune: bool, actor: str, am: AlertmanagerPublisher
) -> Plan:
    """Make the configuration match ``document`` through the domain services; flush only.

    Any error raises; the caller rolls the whole transaction back.
    """
    return _run(session, document, prune=prune, actor=actor, am=am)


def touches_alertmanager(result: Plan) -> bool:
    """Whether a plan changes notification channels or routes."""
    return any(c.kind in ("notification_channels", "notification_routes") for c in result.changes)
