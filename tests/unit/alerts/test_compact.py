"""Compact threshold mode: the query rewrite, its refusals, and the thresholds document."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aami.alerts.compact import (
    CompactRefused,
    ThresholdSample,
    check_compact_rule,
    exposition,
    plan_compact,
    render_compact_rule,
    threshold_value,
)
from aami.alerts.defaults import DEFAULT_ALERT_TEMPLATES
from aami.alerts.rendering import GroupRef, TemplateSpec, render_rule

G = 'group_id="{{.group_id}}"'
JOIN = "on (group_id) group_left (group) aami_threshold"


def spec(query: str, **fields: object) -> TemplateSpec:
    return TemplateSpec(name="T", query_template=query, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expr"),
    [
        (
            f"node_cpu_usage{{{G}}} > {{{{.threshold}}}}",
            f'node_cpu_usage{{group_id!=""}} > {JOIN}{{template="T",param="threshold"}}',
        ),
        (
            f'rate(x{{mode="idle", {G}}}[{{{{.window}}}}]) <= {{{{.limit}}}}',
            f'rate(x{{mode="idle", group_id!=""}}[5m]) <= {JOIN}{{template="T",param="limit"}}',
        ),
        (
            f"max by (instance, group_id) (x{{{G}}}) == {{{{.threshold}}}}",
            f'max by (instance, group_id) (x{{group_id!=""}}) == '
            f'{JOIN}{{template="T",param="threshold"}}',
        ),
        (  # a quote and a backslash in a matcher stay as the template wrote them
            f'x{{path="a\\"b\\\\c", {G}}} < {{{{.threshold}}}}',
            f'x{{path="a\\"b\\\\c", group_id!=""}} < {JOIN}{{template="T",param="threshold"}}',
        ),
        (
            f"(x{{{G}}} / on (instance, group_id) y{{ {G} }}) > {{{{.threshold}}}}",
            f'(x{{group_id!=""}} / on (instance, group_id) y{{ group_id!="" }}) > '
            f'{JOIN}{{template="T",param="threshold"}}',
        ),
    ],
)
def test_rewrite(query: str, expr: str) -> None:
    plan = plan_compact(spec(query, default_config={"window": "5m", "threshold": 1, "limit": 2}))
    assert plan.expr == expr
    assert plan.threshold_key in ("threshold", "limit")


@pytest.mark.parametrize(
    ("query", "why"),
    [
        (f"x{{{G}}} > bool {{{{.t}}}}", "uses 'bool'"),
        (f"x{{{G}}} > {{{{.t}}}} * 2", "not the whole right-hand side"),
        (f"x{{{G}}} > {{{{.t}}}} and y{{{G}}} == 0", "not a comparison at its top level"),
        (f'x{{{G}, a="{{{{.t}}}}"}} > {{{{.t}}}}', "used more than once"),
        ('x{group_id=~"{{.group_id}}"} > {{.t}}', "does not select series"),
        ("x > {{.t}}", "does not select series"),
        (f'x{{{G}, g="{{{{.group}}}}"}} > {{{{.t}}}}', "uses {{.group}}"),
        (f"sum(x{{{G}}}) > {{{{.t}}}}", "does not keep group_id"),
        (f"sum by (instance) (x{{{G}}}) > {{{{.t}}}}", "does not keep group_id"),
        (f"sum without (group_id) (x{{{G}}}) > {{{{.t}}}}", "drops group_id"),
        (f"x{{{G}}} / on (instance) y{{{G}}} > {{{{.t}}}}", "matches without group_id"),
        (
            f'label_replace(x{{{G}}}, "group_id", "z", "", "") > {{{{.t}}}}',
            "named in a function argument",
        ),
        (f"absent(x{{{G}}}) > {{{{.t}}}}", "absent() does not keep"),
        (f"up{{{G}}} == 0", "no threshold placeholder"),
    ],
)
def test_refusals_say_why(query: str, why: str) -> None:
    with pytest.raises(CompactRefused, match="cannot use compact threshold mode") as caught:
        plan_compact(spec(query))
    assert why in str(caught.value)


def test_group_id_other_than_a_matcher_is_refused() -> None:
    with pytest.raises(CompactRefused, match="other than as a selector matcher"):
        plan_compact(
            spec(f'x{{{G}}} * on (group_id) group_left y{{a="{{{{.group_id}}}}"}} > {{{{.t}}}}')
        )


@pytest.mark.parametrize("name", ["HighCPUUsage", "HighMemoryUsage", "NetworkErrors"])
def test_default_templates_that_rewrite_keep_per_group_labels(name: str) -> None:
    item = next(t for t in DEFAULT_ALERT_TEMPLATES if t["name"] == name)
    template = TemplateSpec(
        name=item["name"],
        query_template=item["query_template"],
        default_config=item["default_config"],
        severity=item["severity"],
        for_duration=item["for_duration"],
        annotations=item["annotations"],
    )
    compact = render_compact_rule(template)
    per_group = render_rule(template, {}, GroupRef("grp-1", "production"))
    assert compact["alert"] == name
    assert compact["for"] == per_group["for"]
    assert compact["annotations"] == per_group["annotations"]
    # group_id comes from the series, group from the threshold series: the rest is static
    static = {k: v for k, v in per_group["labels"].items() if k not in ("group_id", "group")}
    assert compact["labels"] == static
    assert compact["expr"].endswith(f'aami_threshold{{template="{name}",param="threshold"}}')


def test_labels_and_annotations_that_vary_per_group() -> None:
    query = f"x{{{G}}} > {{{{.threshold}}}}"
    rule = render_compact_rule(spec(query, annotations={"where": "in {{.group}} ({{.group_id}})"}))
    assert rule["annotations"]["where"] == "in {{ $labels.group }} ({{ $labels.group_id }})"
    with pytest.raises(CompactRefused, match=r"annotation said uses \{\{\.threshold\}\}"):
        render_compact_rule(spec(query, annotations={"said": "above {{.threshold}}"}))


def test_rules_may_differ_in_the_threshold_alone() -> None:
    template = spec(
        f"rate(x{{{G}}}[{{{{.window}}}}]) > {{{{.threshold}}}}",
        default_config={"threshold": 80, "window": "5m"},
    )

    def check(config: dict[str, object]) -> float:
        return check_compact_rule(
            template, "threshold", group_id="g", config=config, labels={}, annotations={}
        )

    assert check({"threshold": 90}) == 90
    assert check({}) == 80
    # a key set to the template's own value is no difference
    assert check({"window": "5m"}) == 80
    assert check({"for_duration": "5m"}) == 80
    cases: list[tuple[dict[str, object], str]] = [
        ({"window": "10m"}, "config.window is '10m', not the template's"),
        ({"for_duration": "10m"}, "config.for_duration"),
        ({"severity": "critical"}, "config.severity"),
        ({"threshold": "high"}, "not a finite number"),
        ({"threshold": float("inf")}, "not a finite number"),
        ({"threshold": True}, "not a finite number"),
    ]
    for config, why in cases:
        with pytest.raises(CompactRefused, match="the rule of group g") as caught:
            check(config)
        assert why in str(caught.value)
    with pytest.raises(CompactRefused, match="sets its own labels"):
        check_compact_rule(
            template, "threshold", group_id="g", config={}, labels={"a": "b"}, annotations={}
        )
    with pytest.raises(CompactRefused, match="a global rule has no group"):
        check_compact_rule(
            template, "threshold", group_id=None, config={}, labels={}, annotations={}
        )
    assert threshold_value(template, "threshold", {"threshold": "12.5"}) == 12.5


def test_exposition_escapes_hostile_label_values() -> None:
    hostile = 'prod "east"\\ \nline2'
    body = exposition(
        [
            ThresholdSample("HighCPUUsage", "grp-b", hostile, "threshold", 80),
            ThresholdSample("HighCPUUsage", "grp-a", "plain", "threshold", 0.25),
        ]
    ).decode()
    assert body.count("\n") == 4  # HELP, TYPE, two samples: the newline is escaped
    assert 'group="prod \\"east\\"\\\\ \\nline2"' in body
    families = list(text_string_to_metric_families(body))
    assert [f.name for f in families] == ["aami_threshold"]
    samples = families[0].samples
    assert [s.labels for s in samples] == [
        {"template": "HighCPUUsage", "param": "threshold", "group_id": "grp-a", "group": "plain"},
        {"template": "HighCPUUsage", "param": "threshold", "group_id": "grp-b", "group": hostile},
    ]
    assert [s.value for s in samples] == [0.25, 80.0]


def test_exposition_of_nothing_is_a_valid_empty_document() -> None:
    body = exposition([]).decode()
    assert body.startswith("# HELP aami_threshold ")
    families = list(text_string_to_metric_families(body))
    assert [len(f.samples) for f in families] == [0]


def test_for_and_severity_from_default_config_as_per_group_rules_have_them() -> None:
    template = spec(
        f"x{{{G}}} > {{{{.threshold}}}}",
        default_config={"threshold": 1, "severity": "critical", "for_duration": "2m"},
    )
    compact = render_compact_rule(template)
    per_group = render_rule(template, {}, GroupRef("g", "name"))
    assert (compact["for"], compact["labels"]["severity"]) == ("2m", "critical")
    assert (per_group["for"], per_group["labels"]["severity"]) == ("2m", "critical")
    assert (
        check_compact_rule(
            template,
            "threshold",
            group_id="g",
            config={"severity": "critical"},
            labels={},
            annotations={},
        )
        == 1
    )
