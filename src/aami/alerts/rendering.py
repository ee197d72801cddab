"""Rendering alert templates into Prometheus rules (pure: plain data in, plain data out).

Placeholders are Go-template fields, exactly ``{{.key}}`` or ``{{ .key }}``. Anything
else between ``{{ }}`` in annotations and labels (``{{ $labels.instance }}``,
``{{ $value }}``, ``{{ humanize $value }}``) is Prometheus templating and passes through.

In a query, a value is placed according to where its placeholder stands:

- inside a quoted PromQL string (``group_id="{{.group_id}}"``): escaped for that string;
- outside a string (``> {{.threshold}}``, ``[{{.window}}]``): it must be a number
  (rendered as a PromQL literal: ``80``, ``0.5``, ``1000000``), a duration (``5m``) or a
  bare metric/label name, so a value can never add operators or selectors to the query.

A key that no layer sets is an error naming it. Every rendered expression is parsed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypedDict

import promql_parser

__all__ = [
    "ALERT_NAME",
    "DURATION",
    "RESERVED_LABELS",
    "SEVERITIES",
    "GroupRef",
    "RenderError",
    "RuleFile",
    "TemplateSpec",
    "alert_name",
    "camel_case",
    "check_duration",
    "dump_rule_file",
    "escape_promql_string",
    "format_number",
    "placeholders",
    "render_expr",
    "render_rule",
    "render_rule_file",
    "render_text",
    "validate_template",
]

ALERT_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_NUMBER_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_BARE_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.DOTALL)
_FIELD = re.compile(r"^\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*$")
SEVERITIES = ("critical", "warning", "info")
RESERVED_LABELS = frozenset(
    {"alertname", "severity", "group_id", "group", "aami_template", "aami_scope"}
)
# Keys with a meaning of their own besides being placeholders.
FOR_KEY = "for_duration"
SEVERITY_KEY = "severity"
SAMPLE_GROUP_ID = "sample-group"
SAMPLE_GROUP_NAME = "sample"


class RenderError(ValueError):
    """A template and config that cannot make a valid rule; the message says why."""


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    name: str
    query_template: str
    default_config: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    for_duration: str = "5m"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


class RuleGroup(TypedDict):
    name: str
    rules: list[dict[str, Any]]


class RuleFile(TypedDict):
    groups: list[RuleGroup]


def format_number(value: int | float) -> str:
    """Render a number as a PromQL literal: ``80`` not ``80.0``, ``1000000`` not ``1e+06``."""
    if isinstance(value, bool):
        raise RenderError("a boolean is not a number")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise RenderError(f"{value!r} is not a finite number")
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def escape_promql_string(value: str, quote: str) -> str:
    """Escape ``value`` for a PromQL string literal delimited by ``quote``."""
    if quote == "`":
        if "`" in value:
            raise RenderError("a value inside a `raw string` cannot contain a backtick")
        return value
    escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def check_duration(value: object, what: str = "duration") -> str:
    """Return ``value`` if it is a Prometheus duration (``5m``, ``1h30m``), else raise."""
    if not isinstance(value, str) or not value or not DURATION.match(value):
        raise RenderError(
            f"{what} {value!r} is not a Prometheus duration such as '30s', '5m' or '1h30m'"
        )
    return value


def camel_case(name: str) -> str:
    """``production`` -> ``Production``, ``gpu-cluster a`` -> ``GpuClusterA``."""
    words = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def alert_name(template_name: str, group: GroupRef | None) -> str:
    """``HighCPUUsage`` + group ``production`` -> ``HighCPUUsage_Production``."""
    if group is None:
        return template_name
    suffix = camel_case(group.name) or camel_case(group.id)
    return f"{template_name}_{suffix}"


def placeholders(text: str) -> list[str]:
    """The keys of the ``{{.key}}`` fields in ``text``, in order of first use."""
    keys: list[str] = []
    for match in _ACTION.finditer(text):
        field_match = _FIELD.match(match.group(2))
        if field_match and field_match.group(1) not in keys:
            keys.append(field_match.group(1))
    return keys


def _scalar_text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        try:
            return format_number(value)
        except RenderError as exc:
            raise RenderError(f"config key '{key}': {exc}") from None
    if isinstance(value, str):
        return value
    raise RenderError(
        f"config key '{key}' is a {type(value).__name__}; only numbers and strings can be placed"
    )


def _bare_value(key: str, value: Any) -> str:
    """A value placed outside any string in a query."""
    if isinstance(value, bool):
        raise RenderError(f"config key '{key}': {value!r} is not a number")
    if isinstance(value, int | float):
        return _scalar_text(key, value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_TEXT.match(text):
            return (
                format_number(float(text)) if "." in text or "e" in text.lower() else str(int(text))
            )
        if text and (DURATION.match(text) or _BARE_NAME.match(text)):
            return text
        raise RenderError(
            f"config key '{key}': {value!r} stands outside a quoted string in the query, so it "
            "must be a number, a duration such as '5m' or a metric or label name"
        )
    raise RenderError(f"config key '{key}' is a {type(value).__name__}, not a number")


Lookup = Callable[[str, str | None], str]


def _lookup(context: Mapping[str, Any], *, sample: bool) -> Lookup:
    def value_for(key: str, quote: str | None) -> str:
        if key in context:
            value = context[key]
        elif sample:
            value = "sample" if quote else 1
        else:
            raise RenderError(
                f"missing config key '{key}': set it in the rule's config or the template's "
                "default_config"
            )
        if quote is None:
            return _bare_value(key, value)
        return escape_promql_string(_scalar_text(key, value), quote)

    return value_for


@lru_cache(maxsize=1024)
def _query_segments(template: str) -> tuple[tuple[str, str | None, bool], ...]:
    """Split a query template into (text, quote, is_placeholder) pieces, once per template.

    For a placeholder, ``text`` is its key and ``quote`` the string it stands in (or None).
    """
    segments: list[tuple[str, str | None, bool]] = []
    literal: list[str] = []
    quote: str | None = None
    i = 0
    n = len(template)
    while i < n:
        if template.startswith("{{", i):
            end = template.find("}}", i + 2)
            if end < 0:
                raise RenderError("query_template has '{{' without a closing '}}'")
            inner = template[i + 2 : end]
            field_match = _FIELD.match(inner)
            if field_match is None:
                raise RenderError(
                    f"query_template: '{{{{{inner}}}}}' is not a placeholder; use {{{{.key}}}}"
                )
            segments.append(("".join(literal), None, False))
            literal = []
            segments.append((field_match.group(1), quote, True))
            i = end + 2
            continue
        char = template[i]
        if quote is None:
            if char in "\"'`":
                quote = char
        elif char == "\\" and quote != "`" and i + 1 < n:
            literal.append(template[i : i + 2])
            i += 2
            continue
        elif char == quote:
            quote = None
        literal.append(char)
        i += 1
    segments.append(("".join(literal), None, False))
    return tuple(segments)


def _substitute_query(template: str, value_for: Lookup) -> str:
    return "".join(
        value_for(text, quote) if is_placeholder else text
        for text, quote, is_placeholder in _query_segments(template)
    )


def _check_expr(expr: str) -> str:
    try:
        promql_parser.parse(expr)
    except ValueError as exc:
        raise RenderError(f"the rendered query is not valid PromQL ({exc}): {expr}") from None
    return expr


def render_expr(template: str, context: Mapping[str, Any], *, sample: bool = False) -> str:
    """Fill a query template and parse the result."""
    return _check_expr(_substitute_query(template, _lookup(context, sample=sample)))


def render_text(text: str, context: Mapping[str, Any], *, what: str, sample: bool = False) -> str:
    """Fill ``{{.key}}`` fields in an annotation or label; leave Prometheus templating alone."""

    def replace(match: re.Match[str]) -> str:
        field_match = _FIELD.match(match.group(2))
        if field_match is None:
            if match.group(2).strip().startswith("."):
                raise RenderError(
                    f"{what}: '{match.group(0)}' is not supported; placeholders are {{{{.key}}}}"
                )
            return match.group(0)  # Prometheus templating, e.g. {{ $labels.instance }}
        key = field_match.group(1)
        if key in context:
            value = _scalar_text(key, context[key])
        elif sample:
            value = "sample"
        else:
            raise RenderError(
                f"{what}: missing config key '{key}': set it in the rule's config or the "
                "template's default_config"
            )
        if "{{" in value or "}}" in value:
            raise RenderError(f"config key '{key}': a value may not contain '{{{{' or '}}}}'")
        return value

    if text.count("{{") != text.count("}}"):
        raise RenderError(f"{what}: unbalanced '{{{{' and '}}}}'")
    return _ACTION.sub(replace, text)


def _context(
    spec: TemplateSpec, config: Mapping[str, Any], group: GroupRef | None
) -> dict[str, Any]:
    builtins: dict[str, Any] = {"group_id": group.id, "group": group.name} if group else {}
    for layer_name, layer in (("default_config", spec.default_config), ("config", config)):
        for key in ("group_id", "group"):
            if key in layer and group is not None and str(layer[key]) != builtins[key]:
                raise RenderError(
                    f"{layer_name}.{key} is {layer[key]!r} but the rule belongs to group "
                    f"{builtins[key]!r}; leave {key} out, it is filled in"
                )
    context = {**spec.default_config, **config, **builtins}
    if group is None:
        uses = set(placeholders(spec.query_template)) & {"group_id", "group"}
        missing = sorted(key for key in uses if key not in context)
        if missing:
            raise RenderError(
                f"template {spec.name} uses {{{{.{missing[0]}}}}}, which a global rule (no "
                "group) cannot fill; give the rule a group_id"
            )
    return context


def render_rule(
    spec: TemplateSpec,
    config: Mapping[str, Any] | None = None,
    group: GroupRef | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    sample: bool = False,
) -> dict[str, Any]:
    """Render one Prometheus rule (``alert, expr, for, labels, annotations``)."""
    config = dict(config or {})
    context = _context(spec, config, group)
    for_duration = check_duration(context.get(FOR_KEY, spec.for_duration), FOR_KEY)
    severity = context.get(SEVERITY_KEY, spec.severity)
    if severity not in SEVERITIES:
        raise RenderError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    expr = render_expr(spec.query_template, context, sample=sample)

    extra_labels = {**spec.labels, **(labels or {})}
    clash = sorted(RESERVED_LABELS & set(extra_labels))
    if clash:
        raise RenderError(f"label '{clash[0]}' is set by AAMI and cannot be overridden")
    rule_labels: dict[str, str] = {"severity": str(severity)}
    if group is not None:
        rule_labels["group_id"] = group.id
        rule_labels["group"] = group.name
    rule_labels["aami_template"] = spec.name
    rule_labels["aami_scope"] = "group" if group is not None else "global"
    for key, value in extra_labels.items():
        rule_labels[key] = render_text(value, context, what=f"label {key}", sample=sample)
    rule_annotations = {
        key: render_text(value, context, what=f"annotation {key}", sample=sample)
        for key, value in {**spec.annotations, **(annotations or {})}.items()
    }
    rule: dict[str, Any] = {
        "alert": alert_name(spec.name, group),
        "expr": expr,
        "for": for_duration,
        "labels": rule_labels,
    }
    if rule_annotations:
        rule["annotations"] = rule_annotations
    return rule


def validate_template(spec: TemplateSpec) -> dict[str, Any]:
    """Render a template with its defaults and a sample group; keys it lacks get samples."""
    if not ALERT_NAME.match(spec.name):
        raise RenderError(f"name {spec.name!r} is not a valid alert name ([a-zA-Z_][a-zA-Z0-9_]*)")
    check_duration(spec.for_duration, "for_duration")
    return render_rule(spec, {}, GroupRef(SAMPLE_GROUP_ID, SAMPLE_GROUP_NAME), sample=True)


def render_rule_file(scope: str, rules: Iterable[dict[str, Any]]) -> RuleFile:
    """One rule group per file: ``aami-<group_id>`` or ``aami-global``; rules sorted."""
    ordered = sorted(rules, key=lambda rule: (rule["alert"], rule["labels"]["aami_template"]))
    return {"groups": [{"name": f"aami-{scope}", "rules": ordered}]}


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$|^(\d+(ms|[smhdwy]))+$")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _double_quoted(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return (
        '"'
        + "".join(
            escapes.get(ch)
            or (f"\\u{ord(ch):04x}" if _CONTROL.match(ch) else None)
            or (f"\\U{ord(ch):08x}" if ord(ch) > 0xFFFF else ch)
            for ch in text
        )
        + '"'
    )


@lru_cache(maxsize=8192, typed=True)
def _scalar(value: Any, indent: str) -> str:
    """A YAML scalar: plain when unambiguous, a literal block for multi-line text, single
    quotes otherwise; double quotes with escapes for control characters."""
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if _CONTROL.search(text) or "\r" in text or "\t" in text:
        return _double_quoted(text)
    if "\n" in text:
        lines = text.split("\n")
        if (
            text.endswith("\n")
            or any(line != line.rstrip(" ") for line in lines)
            or (lines[0].startswith(" "))
        ):
            return _double_quoted(text)
        return "|-\n" + "\n".join(f"{indent}  {line}" if line else "" for line in lines)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return "'" + text.replace("'", "''") + "'"


def _emit(value: Any, indent: str, out: list[str]) -> None:
    # Rule files are maps, lists of maps and string maps; nothing else needs emitting.
    if isinstance(value, dict):
        for key, item in value.items():
            name = _scalar(key, indent)
            if isinstance(item, dict) and item:
                out.append(f"{indent}{name}:\n")
                _emit(item, indent + "  ", out)
            elif isinstance(item, list) and item:
                out.append(f"{indent}{name}:\n")
                _emit(item, indent, out)
            elif isinstance(item, dict | list):
                out.append(f"{indent}{name}: {'{}' if isinstance(item, dict) else '[]'}\n")
            else:
                out.append(f"{indent}{name}: {_scalar(item, indent)}\n")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                inner: list[str] = []
                _emit(item, indent + "  ", inner)
                first = inner[0]
                inner[0] = f"{indent}- {first[len(indent) + 2 :]}"
                out.extend(inner)
            else:
                out.append(f"{indent}- {_scalar(item, indent)}\n")


def dump_rule_file(document: RuleFile, *, header: str = "") -> str:
    """Serialise a rule file as YAML, with an optional comment header."""
    out: list[str] = []
    _emit(document, "", out)
    body = "".join(out)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + body
