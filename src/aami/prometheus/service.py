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

Given a Prometheus client, a rendered rule is also evaluated now (``evaluate``): what
would fire, the series nearest the threshold, or that the metric does not exist. A rule
being edited (``RuleDraft``: its config checked against the template's parameters) is
previewed with ``preview_draft`` and replayed over past hours with ``backtest``;
``template_impact`` renders every rule of a template before and after a change.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from aami.alerts import parameters
from aami.alerts import service as alerts
from aami.alerts.compact import exposition
from aami.alerts.models import GLOBAL_SCOPE, AlertRule, AlertTemplate
from aami.alerts.rendering import (
    FOR_KEY,
    SEVERITY_KEY,
    GroupRef,
    RenderError,
    TemplateSpec,
    UnsafeQuery,
    placeholders,
    render_rule,
    validate_template,
)
from aami.alerts.repository import AlertRuleRepository
from aami.common.durations import parse_duration
from aami.common.http_cache import etag_of
from aami.common.patch import merge_patch
from aami.common.schemas import Page, PageParams
from aami.db.revisions import RevisionRepository
from aami.errors import Invalid, NotFound
from aami.groups import service as groups
from aami.prometheus.backtest import MAX_POINTS, Episodes, count_episodes, grid_step
from aami.prometheus.client import PrometheusClient, PrometheusError, PrometheusUnreachable
from aami.prometheus.comparison import Comparison, metric_names, split_comparison
from aami.prometheus.publisher import RulePublisher
from aami.prometheus.rule_files import RuleFileInfo, RuleFileStore, build_rule_file
from aami.prometheus.rule_sets import file_title
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
    "Backtest",
    "BacktestRun",
    "Evaluation",
    "Problem",
    "RuleDraft",
    "RuleImpact",
    "RulePreview",
    "SeriesValue",
    "TemplateImpact",
    "absent_metrics",
    "backtest",
    "backtest_grid",
    "check_config",
    "comparable_rule_files",
    "draft_of",
    "draft_of_rule",
    "effective_rules",
    "evaluate",
    "history_page",
    "parse_config",
    "preview",
    "preview_draft",
    "read_rule_file",
    "regenerate",
    "regenerate_group",
    "reload",
    "render_scope",
    "rule_files",
    "saved_rule",
    "service_discovery",
    "status",
    "sync_report",
    "template_impact",
    "template_spec",
    "thresholds_document",
]

# The revision every file of ``comparable_rule_files`` is stamped with: never a published one.
COMPARISON_REVISION = 0


# ---- service discovery -----------------------------------------------------------------


def service_discovery(
    session: Session,
    *,
    cache: SdCache,
    exporter_type: str | None,
    group_id: str | None,
    member_of: Sequence[str] | None = None,
) -> SdDocument:
    """Return the SD document for these filters at the current inventory revision;
    ``member_of`` keeps the targets in any of these groups (an evaluator's shard)."""
    repo = TargetRepository(session)
    shard = None if member_of is None else "@" + ",".join(sorted(set(member_of)))
    key = (repo.inventory_revision(), exporter_type, f"{group_id or ''}{shard or ''}" or None)
    doc = cache.get(key)
    if doc is None:
        rows, memberships = repo.sd_rows(exporter_type=exporter_type, group_id=group_id)
        if member_of is not None:
            wanted = set(member_of)
            rows = [row for row in rows if wanted.intersection(memberships.get(row[3], ()))]
        doc = make_document(build_sd(rows, memberships))
        cache.put(key, doc)
    return doc


# The thresholds document shares the SD documents' cache under a key of its own: its
# revision is the ``rules`` counter's, which every rule, template and group change moves.
_THRESHOLDS = "aami_thresholds"


def thresholds_document(session: Session, *, cache: SdCache) -> SdDocument:
    """The ``aami_threshold`` series of the templates in compact threshold mode (Prometheus
    text format) at the current rules revision."""
    key = (RevisionRepository(session).area("rules"), _THRESHOLDS, None)
    doc = cache.get(key)
    if doc is None:
        body = exposition(alerts.thresholds(session))
        doc = SdDocument(body=body, etag=etag_of(body))
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


def render_scope(
    scope: str,
    rules: Sequence[AlertRule],
    *,
    revision: int,
    compact: Sequence[AlertTemplate] = (),
) -> str:
    """A scope's rule file (``""`` is the global one) as the publisher writes it, stamped
    with ``revision``; raises RenderError when a rule does not render. ``compact``: the
    templates in compact threshold mode, whose one rule each is in the global file."""
    rendered = [alerts.render(rule) for rule in rules]
    rendered += [alerts.render_compact(template) for template in compact]
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
    repo = AlertRuleRepository(session)
    by_scope: dict[str, list[AlertRule]] = defaultdict(list)
    for rule in repo.enabled_in_scopes(None):
        if not alerts.is_compact(rule.template):
            by_scope[rule.scope_key].append(rule)
    compact = repo.compact_templates_in_use()
    if compact:
        by_scope.setdefault(GLOBAL_SCOPE, [])
    files: dict[str, str] = {}
    for scope, rules in sorted(by_scope.items()):
        name = RuleFileStore.file_name(scope)
        try:
            files[name] = render_scope(
                scope,
                rules,
                revision=COMPARISON_REVISION,
                compact=compact if scope == GLOBAL_SCOPE else (),
            )
        except RenderError as exc:
            files[name] = f"# cannot render: {exc}"
    return files


# ---- the preview ----------------------------------------------------------------------

_BUILTIN_KEYS = ("group_id", "group")
NEAR_MISSES = 5  # nearest misses shown unless asked otherwise
MAX_NEAR_MISSES = 50
SHOWN_FIRING = 50  # firing series listed (all are counted)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a preview is not valid or has no rule: the reason as shown to a person, and
    the input it is about when that is known (``query_template``, ``config.<key>``)."""

    reason: str
    field: str | None = None

    def __str__(self) -> str:
        return self.reason


EvaluationState = Literal["firing", "all_below", "no_such_metric", "unreachable", "query_error"]


@dataclass(frozen=True, slots=True)
class SeriesValue:
    """One series of an evaluation: its labels, its value now (None: NaN), and for a near
    miss how far it is from firing."""

    labels: dict[str, str]
    value: float | None
    distance: float | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What Prometheus answers now for a rendered rule.

    ``state``: ``firing`` (``firing_count`` series would fire), ``all_below`` (all
    ``series_count`` series of the selection are on the safe side of the threshold),
    ``no_such_metric`` (the selection matches no series; ``absent_metrics`` names the
    metrics Prometheus has no series of), ``unreachable`` or ``query_error``.
    """

    state: EvaluationState
    summary: str
    series_count: int = 0
    firing_count: int = 0
    firing: list[SeriesValue] = dataclasses.field(default_factory=list)
    near_misses: list[SeriesValue] = dataclasses.field(default_factory=list)
    comparison: Comparison | None = None
    near_misses_note: str | None = None  # why there are none to show
    absent_metrics: list[str] = dataclasses.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RulePreview:
    """What a template renders for one scope, and what Prometheus makes of it now."""

    valid: bool  # a rule: it renders; a draft: the template would be accepted as it stands
    scope: str  # "global" or "group <name>"
    rule: dict[str, Any] | None = None  # None: nothing renders (``problem`` says why)
    problem: Problem | None = None
    sampled: Problem | None = None  # the rule shows sample values in place of missing keys
    evaluation: Evaluation | None = None  # asked only with a client and a rendered rule


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


def _rule(
    spec: TemplateSpec,
    config: Mapping[str, Any],
    group: GroupRef | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> RulePreview:
    scope = f"group {group.name}" if group else "global"
    try:
        rule = render_rule(spec, config, group, labels=labels, annotations=annotations)
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
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    client: PrometheusClient | None = None,
    near: int = NEAR_MISSES,
) -> RulePreview:
    """Render ``spec`` for ``group`` (id or name; None: globally), saving nothing.

    NotFound when the group does not exist. ``config`` is a rule's config (ignored for a
    draft, which renders with the template's defaults). With a ``client``, the rendered
    expression is evaluated now: what would fire and the ``near`` nearest misses.
    """
    found = groups.get_or_raise(session, ref=group) if group else None
    ref = GroupRef(found.id, found.name) if found is not None else None
    if draft:
        result = _draft(spec, ref)
    else:
        result = _rule(spec, config or {}, ref, labels, annotations)
    return _with_evaluation(result, client, near)


# ---- what Prometheus makes of a rule now ------------------------------------------------


def _value(item: Mapping[str, Any]) -> float | None:
    pair = item.get("value")
    try:
        number = float(pair[1]) if isinstance(pair, list | tuple) and len(pair) == 2 else None
    except (TypeError, ValueError):
        return None
    return None if number is None or math.isnan(number) else number


def _labels(item: Mapping[str, Any]) -> dict[str, str]:
    metric = item.get("metric")
    return {str(k): str(v) for k, v in metric.items()} if isinstance(metric, dict) else {}


def _instant(client: PrometheusClient, promql: str) -> list[dict[str, Any]]:
    """An instant query's series; ValueError and the like become PrometheusError."""
    try:
        result = client.query(promql)
    except (ValueError, KeyError, TypeError) as exc:
        raise PrometheusError(f"{client.base_url} answered {type(exc).__name__}") from None
    return [item for item in result if isinstance(item, dict) and "metric" in item]


def absent_metrics(client: PrometheusClient, names: Sequence[str]) -> list[str]:
    """The metric names of which Prometheus has no series now. Names come from the
    parser's tree and match the metric name grammar, so they are placed in the regex as
    they are (``:`` and ``_`` are not special in it)."""
    if not names:
        return []
    pattern = "|".join(names)
    found = _instant(client, f'group by (__name__) ({{__name__=~"{pattern}"}})')
    present = {_labels(item).get("__name__") for item in found}
    return [name for name in names if name not in present]


def _firing(comparison: Comparison | None, found: list[dict[str, Any]]) -> list[SeriesValue]:
    firing = [SeriesValue(_labels(item), _value(item)) for item in found]
    if comparison is not None and comparison.op in ("<", "<="):
        firing.sort(key=lambda s: math.inf if s.value is None else s.value)
    else:
        firing.sort(key=lambda s: -math.inf if s.value is None else -s.value)
    return firing[:SHOWN_FIRING]


def _near(comparison: Comparison, selection: list[dict[str, Any]], near: int) -> list[SeriesValue]:
    misses = []
    for item in selection:
        value = _value(item)
        if value is None or comparison.holds(value):
            continue
        distance = comparison.distance(value)
        if distance is not None:
            misses.append(SeriesValue(_labels(item), value, distance))
    misses.sort(key=lambda s: (s.distance, sorted(s.labels.items())))
    return misses[:near]


def _no_data(client: PrometheusClient, expr: str, comparison: Comparison | None) -> Evaluation:
    names = metric_names(comparison.lhs if comparison else expr)
    absent = absent_metrics(client, names)
    if absent:
        summary = f"no such metric: Prometheus has no series of {', '.join(absent)}"
    elif names:
        summary = (
            f"no series match the selection: {', '.join(names)} exist, but not with the "
            "rule's labels (such as its group_id)"
        )
    else:
        summary = "the selection matches no series"
    return Evaluation(
        state="no_such_metric", summary=summary, comparison=comparison, absent_metrics=absent
    )


def _evaluate(client: PrometheusClient, expr: str, near: int) -> Evaluation:
    split = split_comparison(expr)
    comparison = split if isinstance(split, Comparison) else None
    found = _instant(client, expr)
    selection = _instant(client, comparison.lhs) if comparison is not None else found
    if not selection and not found:
        if (
            comparison is None
            and metric_names(expr)
            and not absent_metrics(client, metric_names(expr))
        ):
            return Evaluation(
                state="all_below",
                summary="nothing would fire now",
                near_misses_note=f"near misses are not available: {split}",
            )
        return _no_data(client, expr, comparison)
    misses = _near(comparison, selection, near) if comparison is not None else []
    note = None if comparison is not None else f"near misses are not available: {split}"
    count = len(selection) if comparison is not None else len(found)
    state: EvaluationState
    if found:
        summary = f"{len(found)} series would fire now"
        state = "firing"
    else:
        summary = f"all {count} series are below the threshold"
        state = "all_below"
    return Evaluation(
        state=state,
        summary=summary,
        series_count=count,
        firing_count=len(found),
        firing=_firing(comparison, found),
        near_misses=misses,
        comparison=comparison,
        near_misses_note=note,
    )


def evaluate(client: PrometheusClient, expr: str, *, near: int = NEAR_MISSES) -> Evaluation:
    """Ask Prometheus now: which series of the rendered ``expr`` would fire, and which of
    the series its comparison's left-hand side selects are nearest to the threshold.
    Never raises for Prometheus: an unreachable one or a failed query is a state."""
    try:
        return _evaluate(client, expr, max(0, min(near, MAX_NEAR_MISSES)))
    except PrometheusUnreachable as exc:
        return Evaluation(state="unreachable", summary=f"Prometheus unreachable: {exc}")
    except PrometheusError as exc:
        return Evaluation(state="query_error", summary=f"Prometheus refused the query: {exc}")


# ---- a rule, saved or being edited -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleDraft:
    """A rule as it would be saved: its template, group and config, checked against the
    template's parameters. ``saved`` is the rule of that template and group, if any."""

    template: AlertTemplate
    group: GroupRef | None  # None: global
    config: dict[str, Any]
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    saved: AlertRule | None = None


def check_config(template: AlertTemplate, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as a rule of ``template`` takes it: every key known to the template and
    every value of its parameter's type; Invalid otherwise."""
    texts = [template.query_template, *template.labels.values(), *template.annotations.values()]
    known = {FOR_KEY, SEVERITY_KEY, *template.parameters, *template.default_config}
    for text in texts:
        known.update(placeholders(text))
    unknown = sorted(set(config) - known)
    if unknown:
        takes = ", ".join(sorted(known - set(_BUILTIN_KEYS)))
        raise Invalid(
            f"config.{unknown[0]}: template {template.name} has no parameter {unknown[0]!r} "
            f"(it takes: {takes})"
        )
    try:
        parameters.check_config(template.name, template.parameters, config)
    except parameters.ParameterError as exc:
        raise Invalid(str(exc)) from None
    return dict(config)


def saved_rule(session: Session, template: AlertTemplate, group: str | None) -> AlertRule | None:
    """The rule of ``template`` in ``group`` (id; None: global), if there is one."""
    scope = group or GLOBAL_SCOPE
    rules = AlertRuleRepository(session).for_template(template.id)
    return next((rule for rule in rules if rule.scope_key == scope), None)


def draft_of(
    session: Session,
    *,
    template: str,
    group: str | None,
    config: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> RuleDraft:
    """A rule being edited: template (id or name) and group (id or name; None: global)
    must exist (NotFound), the config must fit the template (Invalid)."""
    found = alerts.get_template_or_raise(session, ref=template)
    row = groups.get_or_raise(session, ref=group) if group else None
    ref = GroupRef(row.id, row.name) if row is not None else None
    return RuleDraft(
        found,
        ref,
        check_config(found, config),
        dict(labels or {}),
        dict(annotations or {}),
        saved=saved_rule(session, found, ref.id if ref else None),
    )


def draft_of_rule(
    session: Session, *, rule_id: str, config: Mapping[str, Any] | None = None
) -> RuleDraft:
    """A saved rule as a draft of itself; ``config`` (a JSON merge patch: ``null`` removes
    a key) changes its config, checked as a saved one would be."""
    rule = alerts.get_rule_or_raise(session, rule_id=rule_id)
    merged = merge_patch(rule.config, config) if config else dict(rule.config)
    return RuleDraft(
        rule.template,
        alerts.group_ref(rule.group),
        check_config(rule.template, merged),
        dict(rule.labels),
        dict(rule.annotations),
        saved=rule,
    )


def _render_draft(draft: RuleDraft, config: Mapping[str, Any]) -> dict[str, Any]:
    """The rule as the publisher renders it (the same core); raises RenderError."""
    return render_rule(
        alerts.spec_of(draft.template),
        config,
        draft.group,
        labels=draft.labels,
        annotations=draft.annotations,
    )


def _with_evaluation(
    result: RulePreview, client: PrometheusClient | None, near: int
) -> RulePreview:
    if client is None or result.rule is None or result.sampled is not None:
        return result
    return dataclasses.replace(result, evaluation=evaluate(client, result.rule["expr"], near=near))


def preview_draft(
    draft: RuleDraft, *, client: PrometheusClient | None, near: int = NEAR_MISSES
) -> RulePreview:
    """``preview`` of a rule as it would be published, with what Prometheus says now."""
    spec = alerts.spec_of(draft.template)
    result = _rule(spec, draft.config, draft.group, draft.labels, draft.annotations)
    return _with_evaluation(result, client, near)


# ---- the backtest ----------------------------------------------------------------------

MAX_HOURS = 168
MIN_STEP = 1.0  # seconds
MAX_STEP = 3600.0
DEFAULT_STEP = 15.0  # a usual evaluation interval; raised for long ranges


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """One config over the backtest's range: the rule it renders and what it would have
    done, or why it could not be run (``error``)."""

    config: dict[str, Any]
    expr: str | None = None
    for_: str | None = None
    result: Episodes | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Backtest:
    """The current config (the saved rule's, or the template's defaults when there is no
    rule) and the proposed one, over the same grid."""

    start: float
    end: float
    step: float
    hours: float
    current: BacktestRun
    proposed: BacktestRun
    current_source: str  # "saved rule <id>" or "template defaults"


def backtest_grid(hours: float, step: float | None, *, now: float) -> tuple[float, float, float]:
    """``start, end, step`` of a backtest over the last ``hours`` (1 to ``MAX_HOURS``) with
    ``step`` seconds (None: derived), ``end`` on the step grid; Invalid out of bounds."""
    if not 1 <= hours <= MAX_HOURS:
        raise Invalid(f"hours: {hours:g} is outside 1\u2013{MAX_HOURS}")
    seconds = hours * 3600
    least = grid_step(seconds, None, minimum=MIN_STEP)
    if step is not None and not MIN_STEP <= step <= MAX_STEP:
        raise Invalid(f"step: {step:g} s is outside {MIN_STEP:g}\u2013{MAX_STEP:g} s")
    if step is not None and step < least:
        raise Invalid(
            f"step: {step:g} s makes more than {MAX_POINTS} points over {hours:g} h "
            f"(Prometheus's limit); use at least {least:g} s"
        )
    chosen = grid_step(seconds, step, minimum=DEFAULT_STEP)
    end = math.floor(now / chosen) * chosen
    return end - seconds, end, chosen


def _run(
    client: PrometheusClient,
    draft: RuleDraft,
    config: dict[str, Any],
    grid: tuple[float, float, float],
) -> BacktestRun:
    try:
        rule = _render_draft(draft, config)
    except RenderError as exc:
        return BacktestRun(config, error=f"does not render: {exc}")
    expr, for_ = rule["expr"], rule["for"]
    start, end, step = grid
    try:
        matrix = client.query_range(expr, start=start, end=end, step=step)
    except PrometheusUnreachable as exc:
        return BacktestRun(config, expr, for_, error=f"Prometheus unreachable: {exc}")
    except (PrometheusError, ValueError, KeyError, TypeError) as exc:
        return BacktestRun(config, expr, for_, error=f"the range query failed: {exc}")
    for_seconds = parse_duration(for_).total_seconds()
    result = count_episodes(matrix, start=start, end=end, step=step, for_seconds=for_seconds)
    return BacktestRun(config, expr, for_, result)


def backtest(
    draft: RuleDraft,
    *,
    client: PrometheusClient,
    hours: float,
    step: float | None = None,
    now: float,
) -> Backtest:
    """What ``draft`` would have done over the last ``hours`` at ``step`` (see
    ``aami.prometheus.backtest`` for the model of ``for``), beside the current config:
    the saved rule's, or the template's defaults when the rule is not saved yet."""
    grid = backtest_grid(hours, step, now=now)
    current = dict(draft.saved.config) if draft.saved is not None else {}
    source = f"saved rule {draft.saved.id}" if draft.saved is not None else "template defaults"
    return Backtest(
        start=grid[0],
        end=grid[1],
        step=grid[2],
        hours=hours,
        current=_run(client, draft, current, grid),
        proposed=_run(client, draft, draft.config, grid),
        current_source=source,
    )


# ---- what a template change does to its rules ------------------------------------------

_SPEC_FIELDS = (
    "name",
    "query_template",
    "default_config",
    "severity",
    "for_duration",
    "labels",
    "annotations",
)


@dataclass(frozen=True, slots=True)
class RuleImpact:
    """One rule of a template, rendered before and after a change (None: it does not
    render, ``*_error`` says why) and what of it changes: ``alert``, ``expr``, ``for``,
    ``severity``, ``labels``, ``annotations``."""

    rule: AlertRule
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    before_error: str | None
    after_error: str | None
    changed: list[str]


@dataclass(frozen=True, slots=True)
class TemplateImpact:
    """What saving a change to a template would do: ``valid`` when the save would be
    accepted by rendering (``problem`` says why not), and every rule's before and after."""

    template: AlertTemplate
    valid: bool
    problem: str | None
    rules: list[RuleImpact]


def _rendered(draft: RuleDraft) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return _render_draft(draft, draft.config), None
    except RenderError as exc:
        return None, str(exc)


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    if before is None or after is None:
        return [] if before is after else ["renders" if after is not None else "breaks"]
    changed = [key for key in ("alert", "expr", "for") if before.get(key) != after.get(key)]
    old_labels, new_labels = dict(before["labels"]), dict(after["labels"])
    if old_labels.pop("severity", None) != new_labels.pop("severity", None):
        changed.append("severity")
    if old_labels != new_labels:
        changed.append("labels")
    if before.get("annotations", {}) != after.get("annotations", {}):
        changed.append("annotations")
    return changed


def _impact_of(rule: AlertRule, spec: TemplateSpec, params: Mapping[str, Any]) -> RuleImpact:
    draft = RuleDraft(
        rule.template,
        alerts.group_ref(rule.group),
        dict(rule.config),
        dict(rule.labels),
        dict(rule.annotations),
        saved=rule,
    )
    before, before_error = _rendered(draft)
    try:
        parameters.check_config(spec.name, params, rule.config)
        after: dict[str, Any] | None = render_rule(
            spec,
            rule.config,
            draft.group,
            labels=draft.labels,
            annotations=draft.annotations,
        )
        after_error = None
    except (parameters.ParameterError, RenderError) as exc:
        after, after_error = None, str(exc)
    return RuleImpact(rule, before, after, before_error, after_error, _changed(before, after))


def template_impact(
    session: Session, *, template: AlertTemplate, changes: Mapping[str, Any]
) -> TemplateImpact:
    """Every rule of ``template`` rendered now and with ``changes`` (the fields an update
    would set), saving nothing."""
    spec = dataclasses.replace(
        alerts.spec_of(template), **{k: v for k, v in changes.items() if k in _SPEC_FIELDS}
    )
    params: Mapping[str, Any] = template.parameters
    if "parameters" in changes or "default_config" in changes:
        params = parameters.infer_parameters(
            changes.get("default_config", template.default_config),
            changes.get("parameters", template.parameters),
        )
    problem = None
    try:
        parameters.check_parameters(spec.name, params, spec.default_config)
        validate_template(spec)
    except (parameters.ParameterError, RenderError) as exc:
        problem = str(exc)
    rules = [
        _impact_of(rule, spec, params)
        for rule in AlertRuleRepository(session).for_template(template.id)
    ]
    broken = next((r for r in rules if r.after_error is not None), None)
    if problem is None and broken is not None:
        where = f"group {broken.rule.group_id}" if broken.rule.group_id else "the global rule"
        problem = f"the change breaks the rule {broken.rule.id} ({where}): {broken.after_error}"
    return TemplateImpact(template, problem is None, problem, rules)
