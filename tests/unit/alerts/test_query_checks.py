"""What stands between a query template and the parser: no comments, bounded nesting,
operators and length; and the rendered tree must be the template's tree with only the
placeholders' leaves changed."""

from __future__ import annotations

from typing import Any

import promql_parser
import pytest

from aami.alerts import rendering
from aami.alerts.rendering import (
    MAX_EXPR_LENGTH,
    MAX_NESTING,
    MAX_OPERATORS,
    MAX_QUERY_LENGTH,
    RenderError,
    TemplateSpec,
    UnsafeQuery,
    check_query,
    render_expr,
    render_rule,
    validate_template,
)

COMMENTED = "# don't page on weekends\nnode_load1 > {{.threshold}}"


# ---- comments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        COMMENTED,
        "node_load1 > {{.threshold}} # don't page",
        "node_load1 # plain note\n > {{.threshold}}",
        'up{job="a"} # a "quoted" note\n> {{.threshold}}',
        "node_load1 > {{.threshold}}\n#",
    ],
)
def test_comments_are_refused_naming_query_template(template: str) -> None:
    spec = TemplateSpec(name="T", query_template=template, default_config={"threshold": 1})
    with pytest.raises(UnsafeQuery, match=r"^query_template: '#' on line \d starts a PromQL"):
        validate_template(spec)
    with pytest.raises(UnsafeQuery, match="query_template"):
        render_rule(spec, {"threshold": "1 or vector(1)"}, None)


def test_the_comment_line_is_named() -> None:
    with pytest.raises(UnsafeQuery, match="on line 3"):
        render_expr('up{a="#1"}\n  and on() vector(1)\n  # note\n', {})


@pytest.mark.parametrize(
    ("template", "config", "expr"),
    [
        ('mount_status{path="/data#1"} == 0', {}, 'mount_status{path="/data#1"} == 0'),
        ("mount_status{path='/data#1'} == 0", {}, "mount_status{path='/data#1'} == 0"),
        ("mount_status{path=`/data#1`} == 0", {}, "mount_status{path=`/data#1`} == 0"),
        ('x{a="it\\"s # not a comment"} > 1', {}, 'x{a="it\\"s # not a comment"} > 1'),
        (
            'mount_status{path="{{.path}}"} > {{.t}}',
            {"path": "/a#b'c", "t": 0},
            'mount_status{path="/a#b\'c"} > 0',
        ),
    ],
)
def test_a_hash_inside_a_quoted_string_is_fine(
    template: str, config: dict[str, Any], expr: str
) -> None:
    assert render_expr(template, config) == expr


def _old_segments(template: str) -> tuple[tuple[str, str | None, bool], ...]:
    """The scanner before the fix (commit c2b71c7), which did not know comments."""
    segments: list[tuple[str, str | None, bool]] = []
    literal: list[str] = []
    quote: str | None = None
    i, n = 0, len(template)
    while i < n:
        if template.startswith("{{", i):
            end = template.find("}}", i + 2)
            segments.append(("".join(literal), None, False))
            literal = []
            segments.append((template[i + 2 : end].strip().lstrip("."), quote, True))
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


def test_the_old_scanner_with_a_comment_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old scanner took the apostrophe of `don't` for an opening quote, so the value
    went in unchecked; with it back, the check of the rendered text still refuses."""
    assert ("threshold", "'", True) in _old_segments(COMMENTED)  # the bug
    monkeypatch.setattr(rendering, "_query_segments", _old_segments)
    with pytest.raises(UnsafeQuery, match="the rendered query: '#' on line 1"):
        render_expr(COMMENTED, {"threshold": "1 or vector(1)"})


# ---- the rendered tree is the template's tree ---------------------------------------------


_SCANNER = rendering._query_segments


def _misclassifying(template: str) -> tuple[tuple[str, str | None, bool], ...]:
    """A scanner that takes every placeholder for one inside a '...' string."""
    segments = _SCANNER(template)
    return tuple((text, "'" if is_ph else quote, is_ph) for text, quote, is_ph in segments)


@pytest.mark.parametrize("value", ["1 or vector(1)", "0 * up", "node_load1 offset 1h"])
def test_a_value_that_changes_the_tree_is_refused_naming_its_key(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """With quote tracking wrong (as the comment made it), escaping does nothing and the
    value is not checked as a bare value: only the tree comparison stands in the way."""
    monkeypatch.setattr(rendering, "_query_segments", _misclassifying)
    rendering._reference.cache_clear()
    try:
        with pytest.raises(RenderError, match=r"config key 'threshold': .* changes the structure"):
            render_expr(
                "node_load1 > {{.threshold}} and up{job=~'{{.job}}'}",
                {
                    "threshold": value,
                    "job": "node",
                },
            )
    finally:
        rendering._reference.cache_clear()


def test_the_culprit_is_named_among_several_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rendering, "_query_segments", _misclassifying)
    rendering._reference.cache_clear()
    try:
        with pytest.raises(RenderError, match=r"config key 'b': '2 or up'"):
            render_expr("x > a{{.a}} and y < {{.b}}", {"a": "b", "b": "2 or up"})
    finally:
        rendering._reference.cache_clear()


@pytest.mark.parametrize(
    ("template", "config", "expr"),
    [
        ("x > {{.t}}", {"t": -3}, "x > -3"),
        ("x > {{.t}}", {"t": "NaN"}, "x > NaN"),
        ("x > {{.t}}", {"t": "Inf"}, "x > Inf"),
        ("x > {{.t}}", {"t": "node_load5"}, "x > node_load5"),
        ("x > {{.t}}", {"t": "1h"}, "x > 1h"),
        (
            "rate({{.m}}[{{.w}}]) > {{.t}}",
            {"m": "a:b", "w": "1h30m", "t": 0.5},
            "rate(a:b[1h30m]) > 0.5",
        ),
        ("rate(x[{{.n}}m])", {"n": 5}, "rate(x[5m])"),
        ("node_{{.kind}}_bytes > 1", {"kind": "memory"}, "node_memory_bytes > 1"),
        ("sum by ({{.l}}, job) (x) > 1", {"l": "instance"}, "sum by (instance, job) (x) > 1"),
        ('x{ {{.l}}="a" } > 1', {"l": "zone"}, 'x{ zone="a" } > 1'),
        ("topk({{.k}}, x)", {"k": 3}, "topk(3, x)"),
        ("quantile_over_time({{.q}}, x[5m])", {"q": 0.99}, "quantile_over_time(0.99, x[5m])"),
        ('x{a=~"[{{.c}}]+"}', {"c": "a-z"}, 'x{a=~"[a-z]+"}'),
        ('x{a="{{.a}}{{.b}}"}', {"a": 'q"', "b": "\\"}, 'x{a="q\\"\\\\"}'),
        ("x offset {{.o}} @ {{.ts}}", {"o": "1h", "ts": 1700000000}, "x offset 1h @ 1700000000"),
        ("max_over_time(x[{{.r}}:{{.s}}])", {"r": "1h", "s": "1m"}, "max_over_time(x[1h:1m])"),
        ("x > {{.t}} and y > {{.t}}", {"t": 5}, "x > 5 and y > 5"),
        (
            'label_replace(x, "dst", "{{.v}}", "src", "(.*)")',
            {"v": "$1"},
            'label_replace(x, "dst", "$1", "src", "(.*)")',
        ),
        (
            'x + on(a) group_left({{.l}}) fill(0) y{b="{{.b}}"}',
            {"l": "c", "b": "d"},
            'x + on(a) group_left(c) fill(0) y{b="d"}',
        ),
    ],
)
def test_values_in_their_places_pass(template: str, config: dict[str, Any], expr: str) -> None:
    assert render_expr(template, config) == expr


@pytest.mark.parametrize(
    ("template", "config", "key"),
    [
        ("x {{.op}} y", {"op": "and"}, "op"),
        ("{{.fn}}(x[5m]) > 1", {"fn": "rate"}, "fn"),
        ("{{.agg}} by (a) (x)", {"agg": "sum"}, "agg"),
        ("x > {{.b}} 1", {"b": "bool"}, "b"),
    ],
)
def test_a_placeholder_cannot_stand_for_an_operator_function_or_keyword(
    template: str, config: dict[str, Any], key: str
) -> None:
    with pytest.raises(
        RenderError, match=rf"query_template: \{{\{{\.{key}\}}\}} cannot be checked"
    ):
        render_expr(template, config)


# Every field of every node kind, with a pair of queries that differ only there.
FIELD_PAIRS = {
    "BinaryExpr.op": ("x + y", "x - y"),
    "BinaryExpr.lhs/rhs": ("x + y", "y + x"),
    "BinModifier.card": ("x + on(a) group_left y", "x + on(a) group_right y"),
    "BinModifier.return_bool": ("x > 1", "x > bool 1"),
    "LabelModifier.type": ("x + on(a) y", "x + ignoring(a) y"),
    "LabelModifier.labels": ("x + on(a) y", "x + on(b) y"),
    "BinModifier.group_labels": ("x + on(a) group_left(b) y", "x + on(a) group_left(c) y"),
    "BinModifier.fill_values": ("x + fill(0) y", "x + fill(1) y"),
    "fill side": ("x + fill_left(1) y", "x + fill_right(1) y"),
    "VectorSelector.name": ("x", "y"),
    "Matcher.op": ('x{a="b"}', 'x{a!="b"}'),
    "Matcher.name": ('x{a="b"}', 'x{c="b"}'),
    "Matcher.value": ('x{a="b"}', 'x{a="c"}'),
    "Matchers.matchers": ('x{a="b"}', 'x{a="b",c="d"}'),
    "Matchers.or_matchers": ('x{a="b" or c="d"}', 'x{a="b" or c="e"}'),
    "VectorSelector.offset": ("x offset 1m", "x offset 2m"),
    "VectorSelector.at": ("x @ 100", "x @ 200"),
    "AtModifier.type": ("x @ start()", "x @ end()"),
    "MatrixSelector.range": ("rate(x[1m])", "rate(x[2m])"),
    "SubqueryExpr.range": ("x[1h:1m]", "x[2h:1m]"),
    "SubqueryExpr.step": ("x[1h:1m]", "x[1h:2m]"),
    "SubqueryExpr.offset": ("x[1h:1m] offset 1m", "x[1h:1m] offset 2m"),
    "SubqueryExpr.at": ("x[1h:1m] @ 100", "x[1h:1m] @ 200"),
    "Call.func": ("abs(x)", "ceil(x)"),
    "Call.args": ('label_join(x, "a", ",", "b")', 'label_join(x, "a", ",", "b", "c")'),
    "AggregateExpr.op": ("sum(x)", "max(x)"),
    "AggModifier.type": ("sum by (a) (x)", "sum without (a) (x)"),
    "AggModifier.labels": ("sum by (a) (x)", "sum by (a, b) (x)"),
    "AggregateExpr.param": ("topk(1, x)", "topk(2, x)"),
    "ParenExpr": ("(x)", "x"),
    "UnaryExpr": ("-x", "x"),
    "NumberLiteral.val": ("1", "2"),
    "StringLiteral.val": ('"a"', '"b"'),
    "nesting": ("(x + y) * z", "x + (y * z)"),
}
KNOWN_FIELDS = {
    "AggregateExpr": {"expr", "modifier", "op", "param"},
    "BinaryExpr": {"lhs", "modifier", "op", "rhs"},
    "Call": {"args", "func"},
    "MatrixSelector": {"range", "vector_selector"},
    "NumberLiteral": {"val"},
    "ParenExpr": {"expr"},
    "StringLiteral": {"val"},
    "SubqueryExpr": {"at", "expr", "offset", "range", "step"},
    "UnaryExpr": {"expr"},
    "VectorSelector": {"at", "matchers", "name", "offset"},
    "Matcher": {"name", "op", "value"},
    "Matchers": {"matchers", "or_matchers", "with_or_matchers"},
    "BinModifier": {"card", "fill_values", "group_labels", "matching", "return_bool"},
    "AggModifier": {"labels", "type"},
    "LabelModifier": {"labels", "type"},
    "AtModifier": {"at", "type"},
    "VectorMatchFillValues": {"lhs", "rhs"},
}


@pytest.mark.parametrize(("first", "second"), FIELD_PAIRS.values(), ids=FIELD_PAIRS.keys())
def test_the_tree_comparison_sees_every_field(first: str, second: str) -> None:
    one = rendering._flatten(promql_parser.parse(first))
    assert one == rendering._flatten(promql_parser.parse(first))
    assert one != rendering._flatten(promql_parser.parse(second))


@pytest.mark.parametrize("name", sorted(KNOWN_FIELDS))
def test_the_parser_has_no_field_the_comparison_does_not_know(name: str) -> None:
    """A promql-parser upgrade that adds a field fails here until _flatten reads it."""
    fields = {
        attribute
        for attribute in dir(getattr(promql_parser, name))
        if not attribute.startswith("_") and attribute not in ("parse", "prettify")
    }
    assert fields == KNOWN_FIELDS[name]


def test_a_node_kind_the_comparison_does_not_know_is_refused() -> None:
    with pytest.raises(RenderError, match="cannot check"):
        rendering._flatten(object())


# ---- limits before the parser ---------------------------------------------------------------


def test_nesting_up_to_the_limit_renders() -> None:
    deep = "(" * MAX_NESTING + "node_load1 > {{.t}}" + ")" * MAX_NESTING
    assert render_expr(deep, {"t": 1}).count("(") == MAX_NESTING
    brackets = 'sum(rate(x{a="b"}[5m]))'  # three deep: ( ( then { or [
    check_query("(" * (MAX_NESTING - 3) + brackets + ")" * (MAX_NESTING - 3), "q")
    with pytest.raises(UnsafeQuery, match=f"nested more than {MAX_NESTING} deep"):
        check_query("(" * (MAX_NESTING - 2) + brackets + ")" * (MAX_NESTING - 2), "q")


@pytest.mark.parametrize("opening", ["(", "[", "{"])
def test_each_bracket_counts(opening: str) -> None:
    closing = {"(": ")", "[": "]", "{": "}"}[opening]
    check_query(opening * MAX_NESTING + closing * MAX_NESTING, "q")
    with pytest.raises(UnsafeQuery, match="query_template: brackets"):
        check_query(opening * (MAX_NESTING + 1) + closing * (MAX_NESTING + 1), "query_template")


def test_brackets_and_operators_inside_strings_do_not_count() -> None:
    value = "(" * 500 + "+" * 500 + "#"
    assert render_expr('x{a="{{.v}}"} > 1', {"v": value}).startswith('x{a="(((')
    check_query('x{a="' + "((" * 100 + '\\"' + "))" * 100 + '"}', "q")
    check_query("x{a=`" + "(\n" * 100 + "`}", "q")


def test_operators_up_to_the_limit_render() -> None:
    chain = "node_load1" + " + node_load1" * MAX_OPERATORS
    assert render_expr(chain, {}) == chain
    with pytest.raises(UnsafeQuery, match=f"{MAX_OPERATORS + 1} operators"):
        render_expr(chain + " + {{.t}}", {"t": 1})
    words = "x" + " or x" * MAX_OPERATORS
    check_query(words, "q")
    with pytest.raises(UnsafeQuery, match="operators"):
        check_query(words + " unless x", "q")
    # Names holding operator words are names: 'node_memory_or' is no 'or'.
    check_query("node_memory_orange" + " + node_memory_orange" * MAX_OPERATORS, "q")


def test_length_limits() -> None:
    with pytest.raises(UnsafeQuery, match=f"more than the limit of {MAX_QUERY_LENGTH:,}"):
        render_expr("x" * (MAX_QUERY_LENGTH + 1), {})
    long_value = "a" * MAX_EXPR_LENGTH
    with pytest.raises(UnsafeQuery, match=r"the rendered query: .* characters"):
        render_expr('x{a="{{.v}}"}', {"v": long_value})


@pytest.mark.parametrize(
    "bomb",
    [
        "(" * 9990 + "1" + ")" * 9990,
        "1" + " + 1" * 5000,
        "abs(" * 5000 + "x" + ")" * 5000,
        "sum(x" + " or sum(x" * 4000,
    ],
    ids=["parentheses", "operators", "calls", "unclosed"],
)
def test_bombs_never_reach_the_parser(bomb: str) -> None:
    """Each of these overflows the parser's recursion (a segfault of the whole process) or
    takes seconds; refused first, the test process lives on to see the error."""
    with pytest.raises(UnsafeQuery, match="query_template"):
        validate_template(TemplateSpec(name="Bomb", query_template=bomb[:MAX_QUERY_LENGTH]))
