"""The top-level comparison of an alert expression (pure: text in, plain data out).

``max by (instance) (node_hwmon_temp_celsius{group_id="g"}) > 80`` is ``lhs > 80``: the
left-hand side selects the series, the number is the threshold. Evaluating the left-hand
side alone gives every series the rule looks at, firing or not, so the ones nearest the
threshold can be shown. The parts are printed back by the parser from its tree, never
pasted from the request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import promql_parser
from promql_parser import AggregateExpr, BinaryExpr, Call, NumberLiteral, ParenExpr

__all__ = ["COMPARISONS", "Comparison", "metric_names", "split_comparison"]

COMPARISONS = frozenset({">", ">=", "<", "<=", "==", "!="})
_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True, slots=True)
class Comparison:
    """``lhs op threshold``: ``lhs`` as PromQL, ``op`` one of ``COMPARISONS``."""

    lhs: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        """Whether a series of value ``value`` passes the comparison (fires)."""
        if math.isnan(value):
            return False
        return {
            ">": value > self.threshold,
            ">=": value >= self.threshold,
            "<": value < self.threshold,
            "<=": value <= self.threshold,
            "==": value == self.threshold,
            "!=": value != self.threshold,
        }[self.op]

    def distance(self, value: float) -> float | None:
        """How far a value that does not fire is from firing (0 or more); None for ``!=``
        and NaN, which have no such distance."""
        if math.isnan(value) or self.op == "!=":
            return None
        if self.op in (">", ">="):
            return self.threshold - value
        if self.op in ("<", "<="):
            return value - self.threshold
        return abs(value - self.threshold)


def _unwrap(node: object) -> object:
    while isinstance(node, ParenExpr):
        node = node.expr
    return node


def _number(node: object) -> float | None:
    node = _unwrap(node)
    return float(node.val) if isinstance(node, NumberLiteral) else None


def split_comparison(expr: str) -> Comparison | str:
    """The top-level ``lhs OP number`` of ``expr`` (``number OP rhs`` is turned round), or
    why near misses cannot be had for it."""
    try:
        tree = _unwrap(promql_parser.parse(expr))
    except (ValueError, RecursionError) as exc:
        return f"the expression does not parse ({exc})"
    if not isinstance(tree, BinaryExpr) or str(tree.op) not in COMPARISONS:
        return "the expression has no top-level comparison (such as `... > 80`)"
    if tree.modifier is not None and tree.modifier.return_bool:
        return "the comparison has the bool modifier: every series is returned, as 0 or 1"
    op = str(tree.op)
    threshold = _number(tree.rhs)
    if threshold is not None:
        return Comparison(str(_unwrap(tree.lhs)), op, threshold)
    threshold = _number(tree.lhs)
    if threshold is not None:
        return Comparison(str(_unwrap(tree.rhs)), _FLIPPED[op], threshold)
    return "the comparison is between two series, not against a number"


def _walk(node: object, names: list[str]) -> None:
    name = getattr(node, "name", None)
    if isinstance(name, str) and _METRIC_NAME.match(name) and not isinstance(node, Call):
        if name not in names:
            names.append(name)
    for child in ("expr", "lhs", "rhs", "vector_selector", "param"):
        inner = getattr(node, child, None)
        if inner is not None and not isinstance(inner, str | int | float):
            _walk(inner, names)
    if isinstance(node, Call):
        for arg in node.args:
            _walk(arg, names)
    if isinstance(node, AggregateExpr) and node.param is not None:
        _walk(node.param, names)


def metric_names(expr: str) -> list[str]:
    """The metric names the expression's selectors name, in order (none for a selector
    by labels alone)."""
    try:
        tree = promql_parser.parse(expr)
    except (ValueError, RecursionError):
        return []
    names: list[str] = []
    _walk(tree, names)
    return names
