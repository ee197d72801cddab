"""Rendering alert templates into Prometheus rules (pure: plain data in, plain data out).

Placeholders are Go-template fields, exactly ``{{.key}}`` or ``{{ .key }}``. Anything
else between ``{{ }}`` in annotations and labels (``{{ $labels.instance }}``,
``{{ $value }}``, ``{{ humanize $value }}``) is Prometheus templating and passes through.

In a query, a value is placed according to where its placeholder stands:

- inside a quoted PromQL string (``group_id="{{.group_id}}"``): escaped for that string;
- outside a string (``> {{.threshold}}``, ``[{{.window}}]``): it must be a number
  (rendered as a PromQL literal: ``80``, ``0.5``, ``1000000``), a duration (``5m``) or a
  bare metric/label name, so a value can never add operators or selectors to the query.

A key that no layer sets is an error naming it. Every rendered expression is parsed, and
its tree must be the template's own tree with only the placeholders' leaves changed: the
template is rendered with stand-in values (cached per template) and the two trees compared.

A query never reaches the parser past these limits (its recursion crashes the process on
deep input): ``#`` comments are refused (a comment hid the rest of its line from the quote
tracking), brackets nest at most ``MAX_NESTING`` deep, at most ``MAX_OPERATORS`` operators
(each one a level of the tree; parsing time grows with their square), bounded length.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple, TypedDict

import promql_parser
from promql_parser import (
    AggregateExpr,
    BinaryExpr,
    Call,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
)

from aami.common.durations import DURATION, is_duration

__all__ = [
    "ALERT_NAME",
    "DURATION",
    "MAX_EXPR_LENGTH",
    "MAX_NESTING",
    "MAX_OPERATORS",
    "MAX_QUERY_LENGTH",
    "RESERVED_LABELS",
    "SEVERITIES",
    "GroupRef",
    "RenderError",
    "RuleFile",
    "TemplateSpec",
    "UnsafeQuery",
    "alert_name",
    "camel_case",
    "check_duration",
    "check_query",
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
# Bounds on what reaches promql_parser.parse, whose recursion overflows the C stack (a
# segfault, not an exception) on about 10,000 nested brackets or 5,000 chained operators.
# Real rule expressions stay far below; parsing 64 brackets and 128 operators takes ~3 ms.
MAX_QUERY_LENGTH = 20_000  # characters in a query template (the API's limit too)
MAX_EXPR_LENGTH = 65_536  # characters in a rendered expression
MAX_NESTING = 64  # brackets ( [ { open at once, outside strings
MAX_OPERATORS = 128  # binary operators (comparisons, arithmetic, and/or/unless)


class RenderError(ValueError):
    """A template and config that cannot make a valid rule; the message says why."""


class UnsafeQuery(RenderError):
    """A query the parser is not given: a ``#`` comment, or past the length, nesting or
    operator limits. The message starts with the field (``query_template: ...``)."""


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
    if not is_duration(value):
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


_NUMBER_NAMES = frozenset({"inf", "nan"})  # PromQL reads these as numbers, not names


def _number_kind(text: str) -> str:
    return "negative" if text.startswith("-") else "number"


def _bare_value(key: str, value: Any) -> tuple[str, str]:
    """A value placed outside any string in a query, and its kind (for its stand-in)."""
    if isinstance(value, bool):
        raise RenderError(f"config key '{key}': {value!r} is not a number")
    if isinstance(value, int | float):
        text = _scalar_text(key, value)
        return text, _number_kind(text)
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_TEXT.match(text):
            try:
                text = (
                    format_number(float(text))
                    if "." in text or "e" in text.lower()
                    else str(int(text))
                )
            except RenderError as exc:
                raise RenderError(f"config key '{key}': {exc}") from None
            return text, _number_kind(text)
        if text and DURATION.match(text):
            return text, "duration"
        if _BARE_NAME.match(text):
            return text, "number" if text.lower() in _NUMBER_NAMES else "name"
        raise RenderError(
            f"config key '{key}': {value!r} stands outside a quoted string in the query, so it "
            "must be a number, a duration such as '5m' or a metric or label name"
        )
    raise RenderError(f"config key '{key}' is a {type(value).__name__}, not a number")


# (key, the quote it stands in or None) -> (the text to place, its kind)
Lookup = Callable[[str, str | None], tuple[str, str]]


def _lookup(context: Mapping[str, Any], *, sample: bool) -> Lookup:
    def value_for(key: str, quote: str | None) -> tuple[str, str]:
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
        return escape_promql_string(_scalar_text(key, value), quote), "string"

    return value_for


# A whole string as the PromQL lexer reads one: "..." and '...' end at their line (or the
# lexer fails), `...` does not; scanning left to right, a '#' left outside is a comment.
_STRING = r""""[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'|`[^`]*`"""
_STRINGS = re.compile(_STRING)
_STRING_OR_COMMENT = re.compile(_STRING + "|#")
_BRACKET = re.compile(r"[()\[\]{}]")
# Counting the '-' of '1e-5' or the '!=' of a matcher as operators only errs on the safe side.
_OPERATOR_SIGN = re.compile(r"[=!<>]=|[-+*/%^<>]")
_OPERATOR = re.compile(r"[=!<>]=|[-+*/%^<>]|\b(?:and|or|unless|atan2)\b")


def check_query(text: str, what: str, *, max_length: int = MAX_EXPR_LENGTH) -> None:
    """Refuse (``UnsafeQuery``) a query the parser must not be given: longer than
    ``max_length``, a ``#`` comment, brackets nested deeper than ``MAX_NESTING``, more than
    ``MAX_OPERATORS`` operators. ``what`` names the field in the message."""
    if len(text) > max_length:
        raise UnsafeQuery(
            f"{what}: {len(text):,} characters, more than the limit of {max_length:,}"
        )
    code = _STRINGS.sub('""', text) if ('"' in text or "'" in text or "`" in text) else text
    if "#" in code:
        line = next(
            text.count("\n", 0, m.start()) + 1
            for m in _STRING_OR_COMMENT.finditer(text)
            if m.group() == "#"
        )
        raise UnsafeQuery(
            f"{what}: '#' on line {line} starts a PromQL comment, and a query template may not "
            "hold comments (a comment hides the rest of its line, quotes included, from the "
            "check that keeps each value in its place); describe the rule in the template's "
            "description instead. A '#' inside a quoted string is fine."
        )
    # Exact counts only when the quick upper bounds (str.count) pass a limit.
    if code.count("(") + code.count("[") + code.count("{") > MAX_NESTING:
        depth = 0
        for bracket in _BRACKET.findall(code):
            depth += 1 if bracket in "([{" else -1
            if depth > MAX_NESTING:
                raise UnsafeQuery(
                    f"{what}: brackets ( [ {{ are nested more than {MAX_NESTING} deep; no "
                    "alert rule needs that many, and the parser must not be given them"
                )
    rough = len(_OPERATOR_SIGN.findall(code))
    rough += code.count("and") + code.count("or") + code.count("unless") + code.count("atan2")
    if rough > MAX_OPERATORS:
        operators = len(_OPERATOR.findall(code))
        if operators > MAX_OPERATORS:
            raise UnsafeQuery(
                f"{what}: {operators} operators, more than the limit of {MAX_OPERATORS}; each "
                "one deepens the parsed expression, so split the rule instead"
            )


Segment = tuple[str, str | None, bool]


@lru_cache(maxsize=1024)
def _query_segments(template: str) -> tuple[Segment, ...]:
    """Split a query template into (text, quote, is_placeholder) pieces, once per template,
    and refuse a template past the limits of ``check_query``.

    For a placeholder, ``text`` is its key and ``quote`` the string it stands in (or None).
    """
    if len(template) > MAX_QUERY_LENGTH:
        raise UnsafeQuery(
            f"query_template: {len(template):,} characters, more than the limit of "
            f"{MAX_QUERY_LENGTH:,}"
        )
    segments: list[Segment] = []
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
    # A placeholder holds no bracket, operator or comment: "0" stands in for it here.
    check_query(
        "".join("0" if is_placeholder else text for text, _, is_placeholder in segments),
        "query_template",
    )
    return tuple(segments)


def _fill(segments: Sequence[Segment], values: Iterable[str]) -> str:
    """The template's text with ``values`` in its placeholders, in order."""
    each = iter(values)
    return "".join(next(each) if is_placeholder else text for text, _, is_placeholder in segments)


def _parse(expr: str) -> Any:
    check_query(expr, "the rendered query")
    try:
        return promql_parser.parse(expr)
    except (ValueError, RecursionError) as exc:
        raise RenderError(f"the rendered query is not valid PromQL ({exc}): {expr}") from None


# ---- the placeholder check: the rendered tree is the template's tree ---------------------

_NAN = math.nan  # one object: NaN != NaN, but a tuple holding the same object twice is equal
_LEAVES = (str, float, timedelta, datetime)


def _labels(labels: Sequence[str], out: list[Any]) -> None:
    out.append(len(labels))
    out.extend(labels)


def _matchers(matchers: Sequence[Any], out: list[Any]) -> None:
    out.append(len(matchers))
    for matcher in matchers:
        out += (matcher.op, matcher.name, matcher.value)


def _at(at: Any) -> tuple[Any, ...]:
    return (None,) if at is None else (at.type, at.at)


# How each kind of node is written into the flat list: its fields are appended to
# ``out``, and its children returned in the order they are visited (so pushed reversed).
_NO_CHILDREN: tuple[Any, ...] = ()


def _vector_selector(node: Any, out: list[Any]) -> tuple[Any, ...]:
    out.append(node.name)
    matchers = node.matchers
    _matchers(matchers.matchers, out)
    alternatives = matchers.or_matchers
    out.append(len(alternatives))
    for group in alternatives:
        _matchers(group, out)
    out.append(node.offset)
    out += _at(node.at)
    return _NO_CHILDREN


def _binary_expr(node: Any, out: list[Any]) -> tuple[Any, ...]:
    out.append(str(node.op))
    modifier = node.modifier
    if modifier is None:
        out.append(None)
        return (node.rhs, node.lhs)
    out += (modifier.card, modifier.return_bool)
    matching = modifier.matching
    if matching is None:
        out.append(None)
    else:
        out.append(matching.type)
        _labels(matching.labels, out)
    group = modifier.group_labels
    if group is None:
        out.append(None)
    else:
        _labels(group, out)
    fill = modifier.fill_values
    out += (fill.lhs, fill.rhs)
    return (node.rhs, node.lhs)


def _number(node: Any, out: list[Any]) -> tuple[Any, ...]:
    value = node.val
    out.append(value if value == value else _NAN)
    return _NO_CHILDREN


def _call(node: Any, out: list[Any]) -> tuple[Any, ...]:
    args = node.args
    out += (node.func.name, len(args))
    return tuple(reversed(args))


def _matrix_selector(node: Any, out: list[Any]) -> tuple[Any, ...]:
    out.append(node.range)
    return (node.vector_selector,)


def _aggregate(node: Any, out: list[Any]) -> tuple[Any, ...]:
    out.append(str(node.op))
    modifier = node.modifier
    if modifier is None:
        out.append(None)
    else:
        out.append(modifier.type)
        _labels(modifier.labels, out)
    param = node.param
    out.append(param is None)
    return (node.expr,) if param is None else (node.expr, param)


def _inner(node: Any, out: list[Any]) -> tuple[Any, ...]:
    return (node.expr,)


def _string(node: Any, out: list[Any]) -> tuple[Any, ...]:
    out.append(node.val)
    return _NO_CHILDREN


def _subquery(node: Any, out: list[Any]) -> tuple[Any, ...]:
    out += (node.range, node.step, node.offset, *_at(node.at))
    return (node.expr,)


_FLATTEN: dict[type, Callable[[Any, list[Any]], tuple[Any, ...]]] = {
    VectorSelector: _vector_selector,
    BinaryExpr: _binary_expr,
    NumberLiteral: _number,
    Call: _call,
    MatrixSelector: _matrix_selector,
    AggregateExpr: _aggregate,
    ParenExpr: _inner,
    UnaryExpr: _inner,
    StringLiteral: _string,
    SubqueryExpr: _subquery,
}


def _flatten(tree: Any) -> list[Any]:
    """The parsed tree as one flat list: each node's type, then its fields in a fixed
    order, every list led by its length, children depth-first, so that one list is one
    tree. Leaf values (numbers, strings, names, durations, times) are items of their own."""
    out: list[Any] = []
    stack = [tree]
    pop, extend, append, handlers = stack.pop, stack.extend, out.append, _FLATTEN
    while stack:
        node = pop()
        kind = type(node)
        handler = handlers.get(kind)
        if handler is None:
            raise RenderError(f"the query holds a {kind.__name__}, which AAMI cannot check")
        append(kind)
        extend(handler(node, out))
    return out


Picker = Callable[[Sequence[Any]], tuple[Any, ...]]


def _picker(indices: Sequence[int]) -> Picker:
    """A function taking the items at ``indices`` of a list, as a tuple."""
    if len(indices) >= 2:
        pick: Picker = itemgetter(*indices)
        return pick
    if len(indices) == 1:
        index = indices[0]
        return lambda items: (items[index],)
    return lambda items: ()


class _Reference(NamedTuple):
    """The template's tree: its size, the items no placeholder changes (and how to pick
    them out of a tree), how to pick the placeholders' leaves and the types they have."""

    size: int
    pick_fixed: Picker
    fixed: tuple[Any, ...]
    pick_leaves: Picker
    leaf_types: tuple[type, ...]

    def matches(self, items: list[Any]) -> bool:
        return (
            len(items) == self.size
            and self.pick_fixed(items) == self.fixed
            and tuple(map(type, self.pick_leaves(items))) == self.leaf_types
        )


def _stand_in(kind: str, index: int, variant: int) -> str:
    """A value of ``kind`` for placeholder ``index``; variants 0 and 1 always differ."""
    if kind == "string":
        return f"aami{'AB'[variant]}{index}"  # letters and digits: any regex, any label
    if kind == "name":
        return f"aami_{'ab'[variant]}{index}"
    number = (11, 97)[variant] + index
    if kind == "duration":
        return f"{number}s"
    return f"-{number}" if kind == "negative" else str(number)


@lru_cache(maxsize=1024)
def _reference(template: str, kinds: tuple[str, ...]) -> _Reference | None:
    """The template's own tree: rendered twice with stand-ins of ``kinds``, the items that
    differ are the placeholders' leaves and all others are fixed. None if a stand-in does
    not parse (the placeholder stands for an operator, a function, a keyword)."""
    segments = _query_segments(template)
    trees = []
    for variant in (0, 1):
        values = [_stand_in(kind, index, variant) for index, kind in enumerate(kinds)]
        try:
            trees.append(_flatten(_parse(_fill(segments, values))))
        except RenderError:
            return None
    first, second = trees
    if len(first) != len(second):
        return None
    fixed = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a is b or a == b]
    fixed_set = set(fixed)
    leaves = [i for i in range(len(first)) if i not in fixed_set]
    if any(
        type(first[i]) is not type(second[i]) or not isinstance(first[i], _LEAVES) for i in leaves
    ):
        return None
    return _Reference(
        size=len(first),
        pick_fixed=_picker(fixed),
        fixed=tuple(first[i] for i in fixed),
        pick_leaves=_picker(leaves),
        leaf_types=tuple(type(first[i]) for i in leaves),
    )


def _unplaceable(
    segments: Sequence[Segment], keys: list[str], values: list[str], kinds: tuple[str, ...]
) -> RenderError:
    """Which placeholder cannot take a stand-in of its kind, and why."""
    for index, key in enumerate(keys):
        others = [v if i != index else _stand_in(kinds[i], i, 0) for i, v in enumerate(values)]
        text = _fill(segments, others)
        try:
            check_query(text, "the query")
            promql_parser.parse(text)
        except (ValueError, RecursionError) as exc:  # UnsafeQuery is a ValueError too
            reason = str(exc)
            return RenderError(
                f"query_template: {{{{.{key}}}}} cannot be checked: with another {kinds[index]} "
                f"in its place the query does not parse ({reason}); a placeholder may stand "
                "for a number, a duration, a metric or label name, or text inside a quoted "
                "string, not for an operator, a function or a keyword"
            )
    return RenderError(
        "query_template: the placeholders "
        + ", ".join(f"{{{{.{key}}}}}" for key in dict.fromkeys(keys))
        + " cannot be checked together; a placeholder may stand for a number, a duration, "
        "a metric or label name, or text inside a quoted string"
    )


def _misplaced(
    segments: Sequence[Segment],
    reference: _Reference,
    keys: list[str],
    values: list[str],
    kinds: tuple[str, ...],
) -> RenderError:
    """Which config key's value changes the tree instead of filling its leaf."""
    for key in dict.fromkeys(keys):
        mixed = _fill(
            segments,
            (
                value if keys[i] == key else _stand_in(kinds[i], i, 0)
                for i, value in enumerate(values)
            ),
        )
        try:
            fits = reference.matches(_flatten(_parse(mixed)))
        except RenderError:
            fits = False
        if not fits:
            value = values[keys.index(key)]
            return RenderError(
                f"config key '{key}': {value!r} does not stay in the place of {{{{.{key}}}}}; "
                "it changes the structure of the query"
            )
    return RenderError(
        "config keys "
        + ", ".join(f"'{key}'" for key in dict.fromkeys(keys))
        + " together change the structure of the query"
    )


def render_expr(template: str, context: Mapping[str, Any], *, sample: bool = False) -> str:
    """Fill a query template, parse the result, and check that its tree is the template's
    tree with only the placeholders' leaves changed."""
    segments = _query_segments(template)
    value_for = _lookup(context, sample=sample)
    parts: list[str] = []
    keys: list[str] = []
    values: list[str] = []
    kinds: list[str] = []
    for text, quote, is_placeholder in segments:
        if is_placeholder:
            value, kind = value_for(text, quote)
            keys.append(text)
            values.append(value)
            kinds.append(kind)
            parts.append(value)
        else:
            parts.append(text)
    expr = "".join(parts)
    tree = _parse(expr)
    if keys:
        kinds_key = tuple(kinds)
        reference = _reference(template, kinds_key)
        if reference is None:
            raise _unplaceable(segments, keys, values, kinds_key)
        if not reference.matches(_flatten(tree)):
            raise _misplaced(segments, reference, keys, values, kinds_key)
    return expr


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
