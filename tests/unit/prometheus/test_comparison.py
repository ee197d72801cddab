"""Splitting an alert expression's top-level comparison, and the metrics it names."""

from __future__ import annotations

import math

import pytest

from aami.prometheus.comparison import Comparison, metric_names, split_comparison


@pytest.mark.parametrize(
    ("expr", "lhs", "op", "threshold"),
    [
        (
            'max by (instance) (temp{group_id="g"}) > 80',
            'max by (instance)(temp{group_id="g"})',
            ">",
            80,
        ),
        ("(foo <= 0.5)", "foo{}", "<=", 0.5),
        ("80 < foo", "foo{}", ">", 80),
        ("rate(x[5m]) * 100 >= (90)", "rate(x{}[5m]) * 100", ">=", 90),
    ],
)
def test_a_top_level_comparison_with_a_number_splits(
    expr: str, lhs: str, op: str, threshold: float
) -> None:
    assert split_comparison(expr) == Comparison(lhs, op, threshold)


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("rate(x[5m])", "no top-level comparison"),
        ("a > b", "between two series"),
        ("a > bool 3", "bool modifier"),
        ("a > 3 and on() b", "no top-level comparison"),
        ("a >", "does not parse"),
    ],
)
def test_other_expressions_say_why_there_are_no_near_misses(expr: str, why: str) -> None:
    found = split_comparison(expr)
    assert isinstance(found, str)
    assert why in found


def test_the_left_hand_side_is_printed_by_the_parser_and_parses_again() -> None:
    found = split_comparison('sum by (gpu) (x{a="1", b=~"2|3"}) > 1')
    assert isinstance(found, Comparison)
    again = split_comparison(f"{found.lhs} > 1")
    assert again == found


def test_holds_and_distance() -> None:
    above = Comparison("x", ">", 80)
    assert above.holds(81)
    assert not above.holds(80)
    assert above.distance(70) == 10
    below = Comparison("x", "<", 20)
    assert below.holds(10)
    assert below.distance(25) == 5
    assert Comparison("x", "==", 1).distance(3) == 2
    assert Comparison("x", "!=", 1).distance(1) is None
    assert not above.holds(math.nan)
    assert above.distance(math.nan) is None


def test_metric_names_in_order_without_functions() -> None:
    expr = "100 * (1 - avail{a='1'} / size) > 90 or absent(up{job='x'}) or rate(up[5m]) > 1"
    assert metric_names(expr) == ["avail", "size", "up"]
    assert metric_names('{__name__="x"}') == []
    assert metric_names("sum(") == []
