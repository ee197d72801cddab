"""Compact threshold mode (pure): one rule per template, thresholds served as metrics.

A template in compact mode is published as one rule whose query compares against the
``aami_threshold`` series AAMI serves (``/api/v1/prometheus/thresholds``) instead of a
number, joined on ``group_id``::

    node_cpu_usage{group_id="{{.group_id}}"} > {{.threshold}}
    node_cpu_usage{group_id!=""} > on (group_id) group_left (group)
        aami_threshold{template="HighCPUUsage",param="threshold"}

The ``group_id="{{.group_id}}"`` matchers become ``group_id!=""``; only the groups with
an enabled rule have a threshold series, so only they can fire. ``group_left (group)``
takes the group's name from the threshold series, so an alert carries the labels a
per-group rule gives it (``group_id``, ``group``, ``severity``, ``aami_template``,
``aami_scope``, the template's labels); its name is the template's name.

The rewrite is checked on the parsed tree: the result's left-hand side is the template's
own tree with only the ``group_id`` matchers changed, the right-hand side is exactly the
threshold selector. A template is refused (``CompactRefused``, saying why) when its
threshold is not the right-hand side of the top-level comparison, is used anywhere else,
or when ``group_id`` is used other than as a selector matcher or dropped on the way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import promql_parser
from promql_parser import AggregateExpr, BinaryExpr, Call, ParenExpr, StringLiteral

from aami.alerts.rendering import (
    FOR_KEY,
    RESERVED_LABELS,
    SEVERITY_KEY,
    RenderError,
    TemplateSpec,
    _fill,
    _flatten,
    _lookup,
    _parse,
    _query_segments,
    placeholders,
    render_text,
)

__all__ = [
    "COMPACT",
    "PER_GROUP",
    "THRESHOLD_METRIC",
    "THRESHOLD_MODES",
    "CompactPlan",
    "CompactRefused",
    "ThresholdSample",
    "check_compact_rule",
    "exposition",
    "plan_compact",
    "render_compact_rule",
    "threshold_value",
]

PER_GROUP = "per_group"
COMPACT = "compact"
THRESHOLD_MODES = (PER_GROUP, COMPACT)
THRESHOLD_METRIC = "aami_threshold"
_GROUP_SENTINEL = "aamiCompactGroup7f3a"
_NAME_SENTINEL = "aamiCompactName7f3a"
_NUMBER_SENTINEL = "7654321.125"
_COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})
_GROUP_MATCHER = re.compile(r"\bgroup_id\s*=\s*([\"'`])" + _GROUP_SENTINEL + r"\1")
# Aggregations that keep every label of the series they keep.
_LABEL_KEEPING = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})
_LABEL_LOSING_CALLS = frozenset({"absent", "absent_over_time", "vector", "scalar", "time"})
_BUILTINS = ("group_id", "group")


class CompactRefused(RenderError):
    """A template or rule that compact mode cannot publish; the message says why."""


@dataclass(frozen=True, slots=True)
class CompactPlan:
    """How a template is published in compact mode: its one query, and the config key
    whose per-group value the ``aami_threshold`` series carries."""

    expr: str
    threshold_key: str


def _strip(node: Any) -> Any:
    while isinstance(node, ParenExpr):
        node = node.expr
    return node


def _threshold_selector(template: str, key: str) -> str:
    # Template names are alert names ([a-zA-Z_][a-zA-Z0-9_]*), keys are identifiers:
    # neither needs escaping inside a PromQL string.
    return (
        f'on (group_id) group_left (group) {THRESHOLD_METRIC}{{template="{template}",'
        f'param="{key}"}}'
    )


def _refuse(spec: TemplateSpec, why: str) -> CompactRefused:
    return CompactRefused(f"template {spec.name} cannot use compact threshold mode: {why}")


def _fill_with(spec: TemplateSpec, threshold: str | None, threshold_value: str) -> str:
    """The template's query with the group sentinels, its defaults, and ``threshold_value``
    in place of the placeholder ``threshold`` (the last one)."""
    segments = _query_segments(spec.query_template)
    context = {**spec.default_config, "group_id": _GROUP_SENTINEL, "group": _NAME_SENTINEL}
    value_for = _lookup(context, sample=False)
    values = []
    for text, quote, is_placeholder in segments:
        if not is_placeholder:
            continue
        if text == threshold and quote is None:
            values.append(threshold_value)
            continue
        try:
            values.append(value_for(text, quote)[0])
        except RenderError as exc:
            raise _refuse(spec, f"{{{{.{text}}}}} is the same for every group: {exc}") from None
    return _fill(segments, values)


def _threshold_key(spec: TemplateSpec) -> str:
    """The key of the placeholder that is the top-level comparison's right-hand side."""
    segments = _query_segments(spec.query_template)
    keys = [text for text, _, is_ph in segments if is_ph and text not in _BUILTINS]
    if not keys:
        raise _refuse(spec, "its query has no threshold placeholder such as {{.threshold}}")
    key = keys[-1]
    if keys.count(key) > 1:
        raise _refuse(spec, f"{{{{.{key}}}}} is used more than once in the query")
    tree = _strip(_parse(_fill_with(spec, key, _NUMBER_SENTINEL)))
    if not isinstance(tree, BinaryExpr) or str(tree.op) not in _COMPARISONS:
        raise _refuse(
            spec,
            "the query is not a comparison at its top level (such as 'expr > {{.threshold}}'), "
            "so there is no threshold to compare against a series",
        )
    if tree.modifier is not None and tree.modifier.return_bool:
        raise _refuse(spec, "the top-level comparison uses 'bool'")
    rhs = _strip(tree.rhs)
    if type(rhs).__name__ != "NumberLiteral" or rhs.val != float(_NUMBER_SENTINEL):
        raise _refuse(
            spec,
            f"{{{{.{key}}}}} is not the whole right-hand side of the top-level comparison "
            "(such as 'expr > {{.threshold}}')",
        )
    return key


def _check_labels_kept(spec: TemplateSpec, tree: Any) -> None:
    """Refuse a left-hand side that can lose ``group_id`` (the join needs it)."""
    problems: list[str] = []

    def visit(node: Any) -> bool:
        if isinstance(node, AggregateExpr) and str(node.op) not in _LABEL_KEEPING:
            modifier = node.modifier
            labels = list(modifier.labels) if modifier is not None else []
            by = modifier is not None and modifier.type == promql_parser.AggModifierType.By
            if modifier is None or (by and "group_id" not in labels):
                problems.append(f"{node.op}(...) does not keep group_id: add it to 'by (...)'")
            elif not by and "group_id" in labels:
                problems.append(f"{node.op}(...) drops group_id with 'without (...)'")
        elif isinstance(node, BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            if matching is not None:
                on = matching.type == promql_parser.LabelModifierType.Include
                if on != ("group_id" in matching.labels):
                    problems.append(f"a '{node.op}' matches without group_id")
        elif isinstance(node, Call) and node.func.name in _LABEL_LOSING_CALLS:
            problems.append(f"{node.func.name}() does not keep the series' group_id")
        elif isinstance(node, StringLiteral) and node.val == "group_id":
            problems.append("group_id is named in a function argument (label_replace?)")
        return True

    promql_parser.walk(tree, pre_visit=visit)
    if problems:
        raise _refuse(spec, problems[0])


def _expected_lhs(flat: list[Any]) -> list[Any]:
    """The flattened tree with each ``group_id="<sentinel>"`` matcher as ``group_id!=""``."""
    out = list(flat)
    for index in range(2, len(out)):
        if out[index] == _GROUP_SENTINEL and out[index - 1] == "group_id":
            out[index - 2] = promql_parser.MatchOp.NotEqual
            out[index] = ""
    return out


def plan_compact(spec: TemplateSpec) -> CompactPlan:
    """The one query of a template in compact mode; ``CompactRefused`` says why not."""
    try:
        return _plan(spec)
    except CompactRefused:
        raise
    except RenderError as exc:
        raise _refuse(spec, str(exc)) from None


def _plan(spec: TemplateSpec) -> CompactPlan:
    key = _threshold_key(spec)
    if _NAME_SENTINEL in _fill_with(spec, key, _NUMBER_SENTINEL):
        raise _refuse(spec, "the query uses {{.group}}; select series by group_id instead")
    reference = _strip(_parse(_fill_with(spec, key, _NUMBER_SENTINEL)))
    text, count = _GROUP_MATCHER.subn('group_id!=""', _fill_with(spec, key, _NUMBER_SENTINEL))
    if count == 0:
        raise _refuse(spec, 'its query does not select series with group_id="{{.group_id}}"')
    if _GROUP_SENTINEL in text:
        raise _refuse(spec, '{{.group_id}} is used other than as a selector matcher group_id="..."')
    _check_labels_kept(spec, reference.lhs)
    expr = _GROUP_MATCHER.sub(
        'group_id!=""', _fill_with(spec, key, _threshold_selector(spec.name, key))
    )
    tree = _strip(_parse(expr))
    if not (
        isinstance(tree, BinaryExpr)
        and str(tree.op) == str(reference.op)
        and _flatten(tree.lhs) == _expected_lhs(_flatten(reference.lhs))
        and _flatten(tree.rhs) == _flatten(promql_parser.parse(_threshold_rhs(spec.name, key)))
        and tree.modifier is not None
        and not tree.modifier.return_bool
        and tree.modifier.matching is not None
        and list(tree.modifier.matching.labels) == ["group_id"]
        and list(tree.modifier.group_labels or []) == ["group"]
    ):
        raise _refuse(spec, "the rewritten query is not the template's query with a join")
    return CompactPlan(expr=expr, threshold_key=key)


def _threshold_rhs(template: str, key: str) -> str:
    return f'{THRESHOLD_METRIC}{{template="{template}",param="{key}"}}'


def _text_context(spec: TemplateSpec, key: str, text: str, what: str) -> str:
    """A label or annotation of a compact rule: the same for every group, so ``{{.group}}``
    and ``{{.group_id}}`` become the alert's labels and the threshold is refused."""
    if key in placeholders(text):
        raise _refuse(
            spec,
            f"{what} uses {{{{.{key}}}}}, which differs per group; use {{{{ $value }}}} or "
            "leave it out",
        )
    for builtin in _BUILTINS:
        text = re.sub(r"\{\{-?\s*\." + builtin + r"\s*-?\}\}", f"{{{{ $labels.{builtin} }}}}", text)
    return render_text(text, spec.default_config, what=what)


def render_compact_rule(spec: TemplateSpec, plan: CompactPlan | None = None) -> dict[str, Any]:
    """The template's one rule in compact mode (``alert`` is the template's name)."""
    plan = plan or plan_compact(spec)
    clash = sorted(RESERVED_LABELS & set(spec.labels))
    if clash:
        raise RenderError(f"label '{clash[0]}' is set by AAMI and cannot be overridden")
    fixed = _fixed(spec)
    labels = {"severity": fixed[SEVERITY_KEY], "aami_template": spec.name, "aami_scope": "group"}
    for name, value in spec.labels.items():
        labels[name] = _text_context(spec, plan.threshold_key, value, f"label {name}")
    rule: dict[str, Any] = {
        "alert": spec.name,
        "expr": plan.expr,
        "for": fixed[FOR_KEY],
        "labels": labels,
    }
    annotations = {
        name: _text_context(spec, plan.threshold_key, value, f"annotation {name}")
        for name, value in spec.annotations.items()
    }
    if annotations:
        rule["annotations"] = annotations
    return rule


def _fixed(spec: TemplateSpec) -> dict[str, Any]:
    """``for`` and severity as every group's rule has them: the template's defaults."""
    return {
        FOR_KEY: spec.default_config.get(FOR_KEY, spec.for_duration),
        SEVERITY_KEY: spec.default_config.get(SEVERITY_KEY, spec.severity),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def threshold_value(spec: TemplateSpec, key: str, config: Mapping[str, Any]) -> float:
    """A rule's threshold: its config's value for ``key``, else the template's default."""
    value = config.get(key, spec.default_config.get(key))
    number = _number(value)
    if number is None:
        raise CompactRefused(
            f"config.{key}: {value!r} is not a finite number; in compact mode the threshold "
            "is served as a metric value"
        )
    return number


def check_compact_rule(
    spec: TemplateSpec,
    key: str,
    *,
    group_id: str | None,
    config: Mapping[str, Any],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> float:
    """A rule of a compact template may differ from the others in its threshold alone;
    returns the threshold, or raises ``CompactRefused`` naming what else differs."""
    where = f"the rule of group {group_id}" if group_id else "the global rule"
    if group_id is None:
        raise CompactRefused(
            f"{where}: template {spec.name} is in compact threshold mode, which joins on "
            "group_id; a global rule has no group"
        )
    if labels or annotations:
        what = "labels" if labels else "annotations"
        raise CompactRefused(
            f"{where} sets its own {what}: in compact threshold mode every group gets the "
            f"template's; switch template {spec.name} to per_group mode to vary them"
        )
    fixed = _fixed(spec)
    for name, value in sorted(config.items()):
        if name == key:
            continue
        if value != fixed.get(name, spec.default_config.get(name)):
            raise CompactRefused(
                f"{where}: config.{name} is {value!r}, not the template's; in compact "
                f"threshold mode only '{key}' may differ per group (switch template "
                f"{spec.name} to per_group mode to vary {name})"
            )
    try:
        return threshold_value(spec, key, config)
    except CompactRefused as exc:
        raise CompactRefused(f"{where}: {exc}") from None


# ---- the thresholds document (Prometheus text exposition format) -------------------------


@dataclass(frozen=True, slots=True)
class ThresholdSample:
    template: str
    group_id: str
    group: str
    param: str
    value: float


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def exposition(samples: Iterable[ThresholdSample]) -> bytes:
    """The ``aami_threshold`` series in Prometheus's text format, sorted, label values
    escaped (backslash, double quote, newline)."""
    lines = [
        f"# HELP {THRESHOLD_METRIC} An alert template's threshold for one group "
        "(compact threshold mode).",
        f"# TYPE {THRESHOLD_METRIC} gauge",
    ]
    for item in sorted(samples, key=lambda s: (s.template, s.param, s.group_id)):
        labels = ",".join(
            f'{name}="{_label_value(value)}"'
            for name, value in (
                ("template", item.template),
                ("param", item.param),
                ("group_id", item.group_id),
                ("group", item.group),
            )
        )
        lines.append(f"{THRESHOLD_METRIC}{{{labels}}} {_sample_value(item.value)}")
    return ("\n".join(lines) + "\n").encode("utf-8")
