"""What the API, the web UI and configcode ask of the Prometheus domain: service discovery,
publishing (requests, status, history, the files on disk), the rules that apply to a
target, a scope's rule file as the publisher renders it, and the one preview.

The preview renders a template for one scope without saving anything, asked in two ways:

- a rule (``draft=False``, the API): the template with a rule's config. ``valid`` says
  whether that rule renders; a query the parser is not given (a comment, past the
  limits) is refused with Invalid, as creating the rule would be.
- a draft template (``draft=True``, the web UI's editor): ``valid`` says whether the
  template passes the check run when it is saved. The rule shown is rendered with the
  template's defaults; when the template leaves config keys to its rules, sample values
  stand in for them and ``sampled`` says which key and why.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from aami.alerts import service as alerts
from aami.alerts.models import AlertRule
from aami.alerts.rendering import (
    GroupRef,
    RenderError,
    TemplateSpec,
    UnsafeQuery,
    placeholders,
    render_rule,
    validate_template,
)
from aami.alerts.repository import AlertRuleRepository
from aami.common.schemas import Page, PageParams
from aami.errors import Invalid, NotFound
from aami.groups import service as groups
from aami.prometheus.publisher import RulePublisher, file_title
from aami.prometheus.rule_files import RuleFileInfo, RuleFileStore, build_rule_file
from aami.prometheus.schemas import EffectiveRuleRead, EffectiveRules, PrometheusStatus
from aami.prometheus.sd import SdCache, SdDocument, build_sd, make_document
from aami.publishing import service as publishing
from aami.publishing.reconciler import Job, Reconciler
from aami.publishing.schemas import PublishRead
from aami.publishing.types import PassResult, Result, Target, Trigger
from aami.targets import service as targets
from aami.targets.repository import TargetRepository

__all__ = [
    "COMPARISON_REVISION",
    "Problem",
    "RulePreview",
    "comparable_rule_files",
    "effective_rules",
    "history_page",
    "parse_config",
    "preview",
    "read_rule_file",
    "regenerate",
    "regenerate_group",
    "reload",
    "render_scope",
    "rule_files",
    "service_discovery",
    "status",
    "sync_report",
    "template_spec",
]

# The revision every file of ``comparable_rule_files`` is stamped with: never a published one.
COMPARISON_REVISION = 0


# ---- service discovery -----------------------------------------------------------------


def service_discovery(
    session: Session, *, cache: SdCache, exporter_type: str | None, group_id: str | None
) -> SdDocument:
    """Return the SD document for these filters at the current inventory revision."""
    repo = TargetRepository(session)
    key = (repo.inventory_revision(), exporter_type, group_id)
    doc = cache.get(key)
    if doc is None:
        rows, memberships = repo.sd_rows(exporter_type=exporter_type, group_id=group_id)
        doc = make_document(build_sd(rows, memberships))
        cache.put(key, doc)
    return doc


# ---- publishing requests ---------------------------------------------------------------


def regenerate(reconciler: Reconciler, *, actor: str, wait: float) -> PassResult | None:
    """Ask the publisher to render every rule file, write what changed, validate, reload
    and confirm; None when it is not done within ``wait`` seconds."""
    job = Job(full=True, trigger=Trigger.REGENERATE, actor=actor)
    return publishing.request_pass(reconciler, Target.PROMETHEUS, job, wait=wait)


def regenerate_group(
    session: Session, reconciler: Reconciler, *, group: str, actor: str, wait: float
) -> PassResult | None:
    """Ask the publisher to render one group's rule file (``global`` for the global rules)."""
    scope = "" if group == "global" else groups.get_or_raise(session, ref=group).id
    job = Job(scopes={scope}, trigger=Trigger.REGENERATE, actor=actor)
    return publishing.request_pass(reconciler, Target.PROMETHEUS, job, wait=wait)


def reload(reconciler: Reconciler, *, actor: str, wait: float) -> PassResult | None:
    """Ask the publisher to reload Prometheus and confirm the rule groups it runs."""
    job = Job(force_reload=True, trigger=Trigger.RELOAD, actor=actor)
    return publishing.request_pass(reconciler, Target.PROMETHEUS, job, wait=wait)


# ---- status and history ----------------------------------------------------------------


def sync_report(
    session: Session, reconciler: Reconciler, publisher: RulePublisher
) -> dict[str, Any]:
    """Desired, written and loaded per rule scope (measured now), keyed by scope."""
    return publishing.sync_report(
        session,
        reconciler,
        Target.PROMETHEUS,
        publisher.status_now(),
        scope_of=publisher.store.scope_of,
    )


def status(session: Session, reconciler: Reconciler, publisher: RulePublisher) -> PrometheusStatus:
    """Per rule group: the desired revision (database), the written one (file) and the
    loaded one (what Prometheus reports), measured now, with the publisher's settings."""
    client = publisher.client
    reachable = client.healthy()
    report = sync_report(session, reconciler, publisher)
    report["groups"] = {(scope or "global"): item for scope, item in report.pop("scopes").items()}
    report["out_of_sync"] = [s or "global" for s in report["out_of_sync"]]
    last = publishing.latest_read(session, Target.PROMETHEUS)
    answer = {
        "url": client.base_url,
        "reachable": reachable,
        "ready": client.ready() if reachable else False,
        "reload_enabled": publisher.reload_enabled,
        "validate_rules": publisher.validate,
        "rule_path": str(publisher.store.root),
        **report,
        "reload_pending": bool(last and last["result"] == Result.PENDING_RELOAD.value)
        and not report["in_sync"],
        "last_publish": last,
    }
    return PrometheusStatus.model_validate(answer)


def history_page(session: Session, *, page: PageParams) -> Page[PublishRead]:
    """Every publish of rule files, newest first; repeated failures are one row (count)."""
    return publishing.history_page(session, target=Target.PROMETHEUS, page=page)


# ---- the files on disk -----------------------------------------------------------------


def rule_files(publisher: RulePublisher) -> list[RuleFileInfo]:
    """The generated rule files: group, path, rule count, stamp, sha256, when written."""
    return publisher.store.info()


def read_rule_file(publisher: RulePublisher, name: str) -> tuple[str, RuleFileInfo | None]:
    """One generated rule file's text as it is on disk, and what is known about it."""
    store = publisher.store
    if name not in store.managed():
        raise NotFound(f"there is no generated rule file {name!r} in {store.root}")
    content = store.read(name)
    if content is None:
        raise NotFound(f"{name} was removed while it was being read")
    return content, next((f for f in store.info() if f.name == name), None)


# ---- rules -----------------------------------------------------------------------------


def effective_rules(session: Session, *, target: str) -> EffectiveRules:
    """The rendered rules that apply to a target: its primary group's and the global ones."""
    found = targets.get_or_raise(session, ref=target)
    return EffectiveRules(
        target_id=found.id,
        hostname=found.hostname,
        group_id=found.primary_group_id,
        rules=[
            EffectiveRuleRead.model_validate(rule)
            for rule in alerts.effective_rules(session, found.primary_group_id)
        ],
    )


def render_scope(scope: str, rules: Sequence[AlertRule], *, revision: int) -> str:
    """A scope's rule file (``""`` is the global one) as the publisher writes it, stamped
    with ``revision``; raises RenderError when a rule does not render."""
    rendered = [alerts.render(rule) for rule in rules]
    group = rules[0].group if rules else None
    content, _ = build_rule_file(
        scope,
        rendered,
        revision=revision,
        title=file_title(scope, group.name if group is not None else None),
    )
    return content


def comparable_rule_files(session: Session) -> dict[str, str]:
    """Every rule file the enabled rules make now, by name, rendered by ``render_scope`` at
    ``COMPARISON_REVISION``: two calls give equal texts exactly when the files' rules are
    equal. A scope that does not render gets a comment saying why."""
    by_scope: dict[str, list[AlertRule]] = defaultdict(list)
    for rule in AlertRuleRepository(session).enabled_in_scopes(None):
        by_scope[rule.scope_key].append(rule)
    files: dict[str, str] = {}
    for scope, rules in sorted(by_scope.items()):
        name = RuleFileStore.file_name(scope)
        try:
            files[name] = render_scope(scope, rules, revision=COMPARISON_REVISION)
        except RenderError as exc:
            files[name] = f"# cannot render: {exc}"
    return files


# ---- the preview ----------------------------------------------------------------------

_BUILTIN_KEYS = ("group_id", "group")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a preview is not valid or has no rule: the reason as shown to a person, and
    the input it is about when that is known (``query_template``, ``config.<key>``)."""

    reason: str
    field: str | None = None

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class RulePreview:
    """What a template renders for one scope."""

    valid: bool  # a rule: it renders; a draft: the template would be accepted as it stands
    scope: str  # "global" or "group <name>"
    rule: dict[str, Any] | None = None  # None: nothing renders (``problem`` says why)
    problem: Problem | None = None
    sampled: Problem | None = None  # the rule shows sample values in place of missing keys


def template_spec(
    session: Session, *, template: str | None, query_template: str | None
) -> TemplateSpec:
    """What to preview: a stored template (id or name), with its query replaced when
    ``query_template`` is given, or that query alone."""
    if template is not None:
        spec = alerts.spec_of(alerts.get_template_or_raise(session, ref=template))
        if query_template is not None:
            spec = dataclasses.replace(spec, query_template=query_template)
        return spec
    if query_template is not None:
        return TemplateSpec(name="Preview", query_template=query_template)
    raise Invalid("give template_id or query_template")


def parse_config(text: str) -> dict[str, Any]:
    """A preview's config overrides from their JSON text; Invalid unless a JSON object."""
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"config: not JSON ({exc.msg})") from None
    except RecursionError:
        raise Invalid("config: nested too deep") from None
    if not isinstance(overrides, dict):
        raise Invalid("config: must be a JSON object")
    return overrides


def _missing_keys(spec: TemplateSpec, config: Mapping[str, Any]) -> list[str]:
    """The ``{{.key}}`` fields of the template that neither its defaults nor the config
    fill, in the order rendering meets them (``group_id`` and ``group`` are the group's)."""
    known = {*spec.default_config, *config, *_BUILTIN_KEYS}
    texts = [spec.query_template, *spec.labels.values(), *spec.annotations.values()]
    missing: list[str] = []
    for text in texts:
        missing += [key for key in placeholders(text) if key not in known and key not in missing]
    return missing


def _rule(spec: TemplateSpec, config: Mapping[str, Any], group: GroupRef | None) -> RulePreview:
    scope = f"group {group.name}" if group else "global"
    try:
        rule = render_rule(spec, config, group)
    except UnsafeQuery as exc:
        raise Invalid(str(exc)) from None
    except RenderError as exc:
        return RulePreview(valid=False, scope=scope, problem=Problem(str(exc)))
    return RulePreview(valid=True, scope=scope, rule=rule)


def _draft(spec: TemplateSpec, group: GroupRef | None) -> RulePreview:
    scope = f"group {group.name}" if group else "global"
    try:
        validate_template(spec)
    except UnsafeQuery as exc:
        return RulePreview(valid=False, scope=scope, problem=Problem(str(exc), "query_template"))
    except RenderError as exc:
        return RulePreview(valid=False, scope=scope, problem=Problem(str(exc)))
    try:
        return RulePreview(valid=True, scope=scope, rule=render_rule(spec, {}, group))
    except RenderError as exc:
        first = exc
    # Valid as a template: each rule may still have to set a key. Sample values fill the
    # missing keys and nothing else, so the same failure again means no key was missing.
    missing = _missing_keys(spec, {})
    sampled = Problem(str(first), f"config.{missing[0]}" if missing else None)
    try:
        rule = render_rule(spec, {}, group, sample=True)
    except RenderError as exc:
        if type(exc) is type(first) and exc.args == first.args:
            return RulePreview(valid=True, scope=scope, problem=Problem(str(first)))
        return RulePreview(valid=True, scope=scope, problem=Problem(str(exc)), sampled=sampled)
    return RulePreview(valid=True, scope=scope, rule=rule, sampled=sampled)


def preview(
    session: Session,
    *,
    spec: TemplateSpec,
    group: str | None,
    config: Mapping[str, Any] | None = None,
    draft: bool = False,
) -> RulePreview:
    """Render ``spec`` for ``group`` (id or name; None: globally), saving nothing.

    NotFound when the group does not exist. ``config`` is a rule's config (ignored for a
    draft, which renders with the template's defaults).
    """
    found = groups.get_or_raise(session, ref=group) if group else None
    ref = GroupRef(found.id, found.name) if found is not None else None
    if draft:
        return _draft(spec, ref)
    return _rule(spec, config or {}, ref)
