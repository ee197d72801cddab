"""Alert template and rule verbs: validation by rendering, audit, publishing marks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from aami.alerts.compact import (
    COMPACT,
    CompactRefused,
    ThresholdSample,
    check_compact_rule,
    plan_compact,
    render_compact_rule,
)
from aami.alerts.models import GLOBAL_SCOPE, AlertRule, AlertTemplate
from aami.alerts.parameters import (
    ParameterError,
    check_config,
    check_parameters,
    infer_parameters,
)
from aami.alerts.rendering import (
    FOR_KEY,
    SEVERITY_KEY,
    GroupRef,
    RenderError,
    TemplateSpec,
    placeholders,
    render_rule,
)
from aami.alerts.rendering import validate_template as validate_spec
from aami.alerts.repository import AlertRuleRepository, AlertTemplateRepository
from aami.alerts.schemas import (
    AlertRuleCreate,
    AlertRuleRead,
    AlertRuleUpdate,
    AlertTemplateCreate,
    AlertTemplateRead,
    AlertTemplateUpdate,
    RenderedRuleRead,
)
from aami.audit import service as audit
from aami.common.changes import mark_rule_scopes
from aami.common.ids import new_id
from aami.common.patch import merge_patch
from aami.db.locking import lock_for_update
from aami.errors import Conflict, Invalid, NotFound
from aami.groups.models import Group
from aami.groups.repository import GroupRepository

RULE_CHECKER = "aami.rule_checker"


class RuleChecker(Protocol):
    """What promtool checks beyond rendering (Go templates in annotations and labels)."""

    def check(self, rules: Sequence[dict[str, Any]]) -> None: ...


def _checker(session: Session) -> RuleChecker | None:
    """The app's checker, carried by its sessions (``Session.info``); none in plain scripts."""
    checker: RuleChecker | None = session.info.get(RULE_CHECKER)
    return checker


def spec_of(template: AlertTemplate) -> TemplateSpec:
    """The plain-data view of a template that rendering takes."""
    return TemplateSpec(
        name=template.name,
        query_template=template.query_template,
        default_config=dict(template.default_config),
        severity=template.severity,
        for_duration=template.for_duration,
        labels=dict(template.labels),
        annotations=dict(template.annotations),
    )


def group_ref(group: Group | None) -> GroupRef | None:
    return GroupRef(group.id, group.name) if group is not None else None


def render(rule: AlertRule, *, template: TemplateSpec | None = None) -> dict[str, Any]:
    """Render a stored rule; raises RenderError."""
    return render_rule(
        template or spec_of(rule.template),
        rule.config,
        group_ref(rule.group),
        labels=rule.labels,
        annotations=rule.annotations,
    )


def is_compact(template: AlertTemplate) -> bool:
    return template.threshold_mode == COMPACT


def render_compact(template: AlertTemplate) -> dict[str, Any]:
    """A compact template's one rule; raises RenderError (CompactRefused says why)."""
    return render_compact_rule(spec_of(template))


def thresholds(session: Session) -> list[ThresholdSample]:
    """The threshold of every enabled group rule of the templates in compact mode; a rule
    that has no valid threshold (it could not be saved so) is left out."""
    plans: dict[str, str | None] = {}
    samples = []
    for rule in AlertRuleRepository(session).compact_rules():
        template, group = rule.template, rule.group
        if group is None:
            continue
        spec = spec_of(template)
        if template.id not in plans:
            try:
                plans[template.id] = plan_compact(spec).threshold_key
            except RenderError:
                plans[template.id] = None
        key = plans[template.id]
        if key is None:
            continue
        try:
            value = check_compact_rule(
                spec,
                key,
                group_id=group.id,
                config=rule.config,
                labels=rule.labels,
                annotations=rule.annotations,
            )
        except CompactRefused:
            continue
        samples.append(ThresholdSample(template.name, group.id, group.name, key, value))
    return samples


def read_rule(rule: AlertRule) -> AlertRuleRead:
    """The API view of a rule, with its rendered form (or why it cannot render)."""
    rendered: RenderedRuleRead | None = None
    error: str | None = None
    try:
        # A compact template's rules share its one published rule (thresholds aside).
        published = render_compact(rule.template) if is_compact(rule.template) else render(rule)
        rendered = RenderedRuleRead.model_validate(published)
    except RenderError as exc:
        error = str(exc)
    return AlertRuleRead(
        id=rule.id,
        template_id=rule.template_id,
        template_name=rule.template.name,
        group_id=rule.group_id,
        group_name=rule.group.name if rule.group else None,
        scope="group" if rule.group_id else "global",
        config=rule.config,
        enabled=rule.enabled,
        labels=rule.labels,
        annotations=rule.annotations,
        rendered=rendered,
        render_error=error,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _template_snapshot(template: AlertTemplate) -> dict[str, Any]:
    return AlertTemplateRead.model_validate(template).model_dump(mode="json")


def _rule_snapshot(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "template_id": rule.template_id,
        "group_id": rule.group_id,
        "config": rule.config,
        "enabled": rule.enabled,
        "labels": rule.labels,
        "annotations": rule.annotations,
    }


# ---- templates -------------------------------------------------------------------------


def get_template_or_raise(session: Session, *, ref: str) -> AlertTemplate:
    template = AlertTemplateRepository(session).get_by_ref(ref)
    if template is None:
        raise NotFound.of("alert template", ref)
    return template


def list_templates(
    session: Session,
    *,
    name: str | None = None,
    severity: str | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[AlertTemplate], int]:
    """One page of alert templates; ``q`` matches any part of id, name, description,
    query or labels."""
    return AlertTemplateRepository(session).find(
        name=name, severity=severity, q=q, offset=offset, limit=limit
    )


def _check_template(session: Session, template: AlertTemplate) -> None:
    """The parameters are consistent and take the defaults, the template renders alone and
    with every rule that uses it (whose configs its parameters take), and promtool accepts
    what it renders."""
    spec = spec_of(template)
    try:
        check_parameters(template.name, template.parameters, template.default_config)
        rendered = [validate_spec(spec)]
    except (ParameterError, RenderError) as exc:
        raise Invalid(str(exc)) from None
    for rule in AlertRuleRepository(session).for_template(template.id):
        try:
            check_config(template.name, template.parameters, rule.config)
            rendered.append(render(rule, template=spec))
        except (ParameterError, RenderError) as exc:
            where = f"group {rule.group_id}" if rule.group_id else "the global rule"
            raise Invalid(f"the change breaks the rule {rule.id} ({where}): {exc}") from None
    if is_compact(template):
        rendered.append(_check_compact(session, template))
    checker = _checker(session)
    if checker is not None:
        checker.check(rendered)


def _check_compact(session: Session, template: AlertTemplate) -> dict[str, Any]:
    """A compact template's query rewrites, and each of its rules differs from the others
    in its threshold alone; Invalid says why not. Returns the one rule it publishes."""
    spec = spec_of(template)
    try:
        plan = plan_compact(spec)
        rule = render_compact_rule(spec, plan)
        for each in AlertRuleRepository(session).for_template(template.id):
            _compact_rule_fits(spec, plan.threshold_key, each)
    except RenderError as exc:
        raise Invalid(f"threshold_mode: {exc}") from None
    return rule


def _compact_rule_fits(spec: TemplateSpec, key: str, rule: AlertRule) -> None:
    check_compact_rule(
        spec,
        key,
        group_id=rule.group_id,
        config=rule.config,
        labels=rule.labels,
        annotations=rule.annotations,
    )


def create_template(session: Session, *, actor: str, data: AlertTemplateCreate) -> AlertTemplate:
    repo = AlertTemplateRepository(session)
    template_id = data.id or new_id("tpl")
    if repo.get(template_id) is not None:
        raise Conflict(f"alert template id {template_id!r} already exists")
    if repo.name_taken(data.name):
        raise Conflict(f"an alert template named {data.name!r} already exists")
    fields = data.model_dump(exclude={"id", "parameters"})
    declared = data.model_dump(include={"parameters"})["parameters"]
    template = AlertTemplate(
        id=template_id, parameters=infer_parameters(data.default_config, declared), **fields
    )
    _check_template(session, template)
    repo.add(template)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="alert_template",
        entity_id=template.id,
        after=_template_snapshot(template),
    )
    return template


def update_template(
    session: Session, *, actor: str, template: AlertTemplate, data: AlertTemplateUpdate
) -> AlertTemplate:
    lock_for_update(session, template)
    changes = data.changes()
    before = _template_snapshot(template)
    was_compact = is_compact(template)
    if "name" in changes and AlertTemplateRepository(session).name_taken(
        changes["name"], excluding=template.id
    ):
        raise Conflict(f"an alert template named {changes['name']!r} already exists")
    if "parameters" in changes:
        changes["parameters"] = data.model_dump(include={"parameters"})["parameters"]
    if "parameters" in changes or "default_config" in changes:
        # Declared parameters are kept; defaults without one get one inferred.
        changes["parameters"] = infer_parameters(
            changes.get("default_config", template.default_config),
            changes.get("parameters", template.parameters),
        )
    for field, value in changes.items():
        setattr(template, field, value)
    _check_template(session, template)
    session.flush()
    rules = AlertRuleRepository(session).for_template(template.id)
    scopes = {rule.scope_key for rule in rules}
    if rules and (was_compact or is_compact(template)):
        scopes.add(GLOBAL_SCOPE)  # the compact rule lives in the global file
    mark_rule_scopes(session, scopes)
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type="alert_template",
        entity_id=template.id,
        before=before,
        after=_template_snapshot(template),
    )
    return template


def delete_template(session: Session, *, actor: str, template: AlertTemplate) -> None:
    lock_for_update(session, template)
    rules = AlertRuleRepository(session).for_template(template.id)
    if rules:
        names = ", ".join(f"{r.id} ({r.group_id or 'global'})" for r in rules[:20])
        raise Conflict(
            f"alert template {template.name!r} is used by {len(rules)} rule(s): {names}; "
            "delete them first"
        )
    before = _template_snapshot(template)
    AlertTemplateRepository(session).delete(template)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="alert_template",
        entity_id=template.id,
        before=before,
    )


# ---- rules -----------------------------------------------------------------------------


def get_rule_or_raise(session: Session, *, rule_id: str) -> AlertRule:
    rule = AlertRuleRepository(session).get(rule_id)
    if rule is None:
        raise NotFound.of("alert rule", rule_id)
    return rule


def list_rules(
    session: Session,
    *,
    template: str | None = None,
    group: str | None = None,
    scope: str | None = None,
    enabled: bool | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[AlertRule], int]:
    template_id = group_id = None
    if template:
        found = AlertTemplateRepository(session).get_by_ref(template)
        if found is None:
            return [], 0
        template_id = found.id
    if group:
        found_group = GroupRepository(session).get_by_ref(group)
        if found_group is None:
            return [], 0
        group_id = found_group.id
    return AlertRuleRepository(session).find(
        template_id=template_id,
        group_id=group_id,
        global_only=scope == "global",
        enabled=enabled,
        offset=offset,
        limit=limit,
    )


def _resolve_group(session: Session, ref: str | None) -> Group | None:
    if ref is None:
        return None
    group = GroupRepository(session).get_by_ref(ref)
    if group is None:
        raise Invalid(f"group_id: unknown group {ref!r}")
    return group


def _unknown_keys(rule: AlertRule) -> None:
    """Refuse a config key the template neither declares nor uses: a typo such as
    ``treshold`` would otherwise be kept and silently do nothing."""
    template = rule.template
    texts = [template.query_template, *template.labels.values(), *template.annotations.values()]
    texts += [*rule.labels.values(), *rule.annotations.values()]
    known = {FOR_KEY, SEVERITY_KEY, *template.parameters, *template.default_config}
    for text in texts:
        known.update(placeholders(text))
    unknown = sorted(set(rule.config) - known)
    if unknown:
        takes = ", ".join(sorted(known - {"group_id", "group"}))
        raise Invalid(
            f"config.{unknown[0]}: template {template.name} has no parameter {unknown[0]!r} "
            f"(it takes: {takes})"
        )


def _check_rule(session: Session, rule: AlertRule) -> None:
    """The template's parameters take the rule's config, and the rule renders (and, for a
    compact template, differs from the others in its threshold alone)."""
    _unknown_keys(rule)
    try:
        check_config(rule.template.name, rule.template.parameters, rule.config)
        rendered = render(rule)
        if is_compact(rule.template):
            spec = spec_of(rule.template)
            _compact_rule_fits(spec, plan_compact(spec).threshold_key, rule)
    except (ParameterError, RenderError) as exc:
        raise Invalid(str(exc)) from None
    checker = _checker(session)
    if checker is not None:
        checker.check([rendered])


def _changed_scopes(
    session: Session, template: AlertTemplate, scopes: set[str], had_enabled: bool
) -> set[str]:
    """The rule files a rule change touches. A compact template's rules are thresholds
    served as metrics: the global file (its one rule) changes only when the template
    gains its first enabled rule or loses its last; otherwise no file changes and
    Prometheus is not reloaded (the ``rules`` revision still moves, for the thresholds)."""
    if not is_compact(template):
        return scopes
    has_enabled = AlertRuleRepository(session).has_enabled_rules(template.id)
    return {GLOBAL_SCOPE} if has_enabled != had_enabled else set()


def create_rule(session: Session, *, actor: str, data: AlertRuleCreate) -> AlertRule:
    template = AlertTemplateRepository(session).get_by_ref(data.template_id)
    if template is None:
        raise Invalid(f"template_id: unknown alert template {data.template_id!r}")
    # Under the template's lock, re-read: a switch to or from compact committed since
    # decides which file the rule lands in, and so which scope this change marks.
    lock_for_update(session, template)
    group = _resolve_group(session, data.group_id)
    repo = AlertRuleRepository(session)
    rule_id = data.id or new_id("rule")
    if repo.get(rule_id) is not None:
        raise Conflict(f"alert rule id {rule_id!r} already exists")
    scope_key = group.id if group else GLOBAL_SCOPE
    if repo.exists(template.id, scope_key):
        where = f"group {group.id!r}" if group else "the global scope"
        raise Conflict(f"{where} already has a rule from template {template.name!r}")
    rule = AlertRule(
        id=rule_id,
        template=template,
        template_id=template.id,
        group=group,
        group_id=group.id if group else None,
        scope_key=scope_key,
        config=data.config,
        enabled=data.enabled,
        labels=data.labels,
        annotations=data.annotations,
    )
    _check_rule(session, rule)
    had = is_compact(template) and repo.has_enabled_rules(template.id)
    repo.add(rule)
    session.flush()
    mark_rule_scopes(session, _changed_scopes(session, template, {scope_key}, had))
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="alert_rule",
        entity_id=rule.id,
        after=_rule_snapshot(rule),
    )
    return rule


def update_rule(
    session: Session,
    *,
    actor: str,
    rule: AlertRule,
    data: AlertRuleUpdate,
    replace_config: bool = False,
) -> AlertRule:
    """Change the fields given. ``config`` is a JSON merge patch (only the keys given
    change, ``null`` removes one) unless ``replace_config``: then it is the whole config,
    as a form or a configuration document states it."""
    lock_for_update(session, rule)
    had = AlertRuleRepository(session).has_enabled_rules(rule.template_id)
    changes = data.changes()
    if "config" in changes:
        changes["config"] = merge_patch({} if replace_config else rule.config, changes["config"])
    before = _rule_snapshot(rule)
    old_scope = rule.scope_key
    if "group_id" in changes:
        group = _resolve_group(session, changes.pop("group_id"))
        scope_key = group.id if group else GLOBAL_SCOPE
        if scope_key != old_scope and AlertRuleRepository(session).exists(
            rule.template_id, scope_key, excluding=rule.id
        ):
            raise Conflict(f"that scope already has a rule from template {rule.template.name!r}")
        rule.group, rule.group_id, rule.scope_key = group, group.id if group else None, scope_key
    for field, value in changes.items():
        setattr(rule, field, value)
    _check_rule(session, rule)
    session.flush()
    mark_rule_scopes(
        session, _changed_scopes(session, rule.template, {old_scope, rule.scope_key}, had)
    )
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type="alert_rule",
        entity_id=rule.id,
        before=before,
        after=_rule_snapshot(rule),
    )
    return rule


def delete_rule(session: Session, *, actor: str, rule: AlertRule) -> None:
    lock_for_update(session, rule)
    before = _rule_snapshot(rule)
    scope = rule.scope_key
    template = rule.template
    repo = AlertRuleRepository(session)
    had = repo.has_enabled_rules(template.id)
    repo.delete(rule)
    session.flush()
    mark_rule_scopes(session, _changed_scopes(session, template, {scope}, had))
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="alert_rule",
        entity_id=rule.id,
        before=before,
    )


def rules_of_group(session: Session, group_id: str) -> Sequence[AlertRule]:
    return AlertRuleRepository(session).for_group(group_id)


def effective_rules(session: Session, group_id: str | None) -> list[dict[str, Any]]:
    """Rendered rules that apply to a target whose primary group is ``group_id``."""
    rendered = []
    for rule in AlertRuleRepository(session).effective_for_group(group_id):
        try:
            item = render(rule)
        except RenderError as exc:
            item = {"alert": rule.template.name, "error": str(exc)}
        rendered.append(
            {"rule_id": rule.id, "scope": "group" if rule.group_id else "global", **item}
        )
    return rendered


def seed_templates(session: Session, *, actor: str) -> dict[str, list[str]]:
    """Create the default alert templates that do not exist yet (by name)."""
    from aami.alerts.defaults import DEFAULT_ALERT_TEMPLATES

    repo = AlertTemplateRepository(session)
    created, existing = [], []
    for item in DEFAULT_ALERT_TEMPLATES:
        if repo.name_taken(item["name"]):
            existing.append(item["name"])
            continue
        create_template(session, actor=actor, data=AlertTemplateCreate.model_validate(item))
        created.append(item["name"])
    return {"created": created, "existing": existing}
