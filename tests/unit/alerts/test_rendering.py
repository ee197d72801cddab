"""The pure rendering core: golden files for the spec's examples, and each trap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aami.alerts.rendering import (
    GroupRef,
    RenderError,
    TemplateSpec,
    alert_name,
    camel_case,
    dump_rule_file,
    escape_promql_string,
    format_number,
    placeholders,
    render_rule,
    render_rule_file,
    validate_template,
)

GOLDEN = Path(__file__).with_name("golden")

CPU = TemplateSpec(
    name="HighCPUUsage",
    query_template=(
        '(100 - avg(rate(node_cpu_seconds_total{\n  mode="idle",\n  group_id="{{.group_id}}"\n'
        "}[5m])) * 100) > {{.threshold}}"
    ),
    default_config={"threshold": 80},
    severity="warning",
    for_duration="5m",
    annotations={"summary": "High CPU usage on {{ $labels.instance }}"},
)
DISK = TemplateSpec(
    name="HighDiskUsage",
    query_template=(
        '((node_filesystem_avail_bytes{group_id="{{.group_id}}"} / node_filesystem_size_bytes)'
        " * 100) < {{.threshold}}"
    ),
    default_config={"threshold": 20},
)
PRODUCTION = GroupRef("grp-123", "production")
DEVELOPMENT = GroupRef("grp-456", "development")


def _golden(name: str, text: str) -> None:
    expected = (GOLDEN / name).read_text()
    assert text == expected


def test_seed_group_customization_golden() -> None:
    production = render_rule(CPU, {"threshold": 80, "for_duration": "5m"}, PRODUCTION)
    development = render_rule(
        CPU, {"threshold": 95, "for_duration": "10m", "severity": "info"}, DEVELOPMENT
    )
    _golden("cpu-production.yml", dump_rule_file(render_rule_file("grp-123", [production])))
    _golden("cpu-development.yml", dump_rule_file(render_rule_file("grp-456", [development])))


def test_seed_example_2_golden() -> None:
    rules = [
        render_rule(
            DISK,
            {"threshold": 20, "for_duration": "5m"},
            GroupRef("production-grp-123", "production"),
        ),
        render_rule(
            DISK,
            {"threshold": 10, "for_duration": "10m"},
            GroupRef("development-grp-456", "development"),
        ),
    ]
    assert [r["alert"] for r in rules] == ["HighDiskUsage_Production", "HighDiskUsage_Development"]
    assert rules[0]["expr"] == (
        '((node_filesystem_avail_bytes{group_id="production-grp-123"} / '
        "node_filesystem_size_bytes) * 100) < 20"
    )
    assert rules[0]["for"] == "5m"
    assert rules[1]["expr"] == (
        '((node_filesystem_avail_bytes{group_id="development-grp-456"} / '
        "node_filesystem_size_bytes) * 100) < 10"
    )
    assert rules[1]["for"] == "10m"
    _golden("disk-example-2.yml", dump_rule_file(render_rule_file("x", rules), header="golden"))


def test_labels_and_scope() -> None:
    rule = render_rule(CPU, {}, PRODUCTION, labels={"team": "ml"})
    assert rule["labels"] == {
        "severity": "warning",
        "group_id": "grp-123",
        "group": "production",
        "aami_template": "HighCPUUsage",
        "aami_scope": "group",
        "team": "ml",
    }
    global_rule = render_rule(
        TemplateSpec(name="NodeDown", query_template='up{job="node-exporter"} == 0'), {}, None
    )
    assert global_rule["alert"] == "NodeDown"
    assert global_rule["labels"] == {
        "severity": "warning",
        "aami_template": "NodeDown",
        "aami_scope": "global",
    }


def test_prometheus_templating_passes_through() -> None:
    rule = render_rule(
        CPU,
        {},
        PRODUCTION,
        annotations={
            "description": (
                "{{ $labels.instance }} at {{ $value | humanize }} (limit {{.threshold}})"
            )
        },
    )
    assert rule["annotations"]["summary"] == "High CPU usage on {{ $labels.instance }}"
    assert rule["annotations"]["description"] == (
        "{{ $labels.instance }} at {{ $value | humanize }} (limit 80)"
    )


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (80, "80"),
        (80.0, "80"),
        (1000000, "1000000"),
        (1e6, "1000000"),
        (0.5, "0.5"),
        (1e-7, "0.0000001"),
        (-3, "-3"),
        ("80", "80"),
        ("1e+06", "1000000"),
        ("0.25", "0.25"),
        (12345678901234567890, "12345678901234567890"),
        (2.5e20, "250000000000000000000"),
    ],
)
def test_number_formatting(value: Any, rendered: str) -> None:
    rule = render_rule(CPU, {"threshold": value}, PRODUCTION)
    assert rule["expr"].endswith(f"> {rendered}")
    assert "e+" not in rule["expr"]


def test_format_number_refuses_non_numbers() -> None:
    for bad in (True, float("nan"), float("inf")):
        with pytest.raises(RenderError):
            format_number(bad)


@pytest.mark.parametrize(
    "value",
    ['80"} or vector(1) #', "80 or vector(1)", "1; drop", "}", '"', "80)", True, [1], {"a": 1}],
)
def test_values_outside_strings_cannot_inject(value: Any) -> None:
    with pytest.raises(RenderError, match="threshold"):
        render_rule(CPU, {"threshold": value}, PRODUCTION)


def test_values_inside_strings_are_escaped() -> None:
    spec = TemplateSpec(name="Mount", query_template='mount_status{path="{{.path}}"} == 0')
    rule = render_rule(spec, {"path": '/data"} or vector(1) #\\'}, None)
    assert rule["expr"] == 'mount_status{path="/data\\"} or vector(1) #\\\\"} == 0'
    single = TemplateSpec(name="S", query_template="mount_status{path='{{.path}}'} == 0")
    assert render_rule(single, {"path": "it's"}, None)["expr"] == (
        "mount_status{path='it\\'s'} == 0"
    )
    assert escape_promql_string("a\nb", '"') == "a\\nb"
    raw = TemplateSpec(name="R", query_template="mount_status{path=`{{.path}}`} == 0")
    with pytest.raises(RenderError, match="backtick"):
        render_rule(raw, {"path": "a`b"}, None)


def test_group_id_is_filled_in_and_cannot_be_contradicted() -> None:
    rule = render_rule(DISK, {"threshold": 20}, PRODUCTION)
    assert 'group_id="grp-123"' in rule["expr"]
    same = render_rule(DISK, {"threshold": 20, "group_id": "grp-123"}, PRODUCTION)
    assert same["expr"] == rule["expr"]
    with pytest.raises(RenderError, match="group_id"):
        render_rule(DISK, {"group_id": "grp-999"}, PRODUCTION)
    with pytest.raises(RenderError, match="global rule"):
        render_rule(DISK, {}, None)


def test_missing_key_is_an_error_naming_it() -> None:
    spec = TemplateSpec(name="T", query_template="node_load1 > {{.load_limit}}")
    with pytest.raises(RenderError, match="missing config key 'load_limit'"):
        render_rule(spec, {}, None)
    annotated = TemplateSpec(
        name="T", query_template="up == 0", annotations={"summary": "see {{.runbook}}"}
    )
    with pytest.raises(RenderError, match="runbook"):
        render_rule(annotated, {}, None)


def test_durations() -> None:
    assert render_rule(CPU, {"for_duration": "1h30m"}, PRODUCTION)["for"] == "1h30m"
    for bad in ("5 minutes", "5", "", "5M", "-5m", 5):
        with pytest.raises(RenderError, match="duration"):
            render_rule(CPU, {"for_duration": bad}, PRODUCTION)
    window = TemplateSpec(
        name="W", query_template="rate(x[{{.window}}]) > 1", default_config={"window": "5m"}
    )
    assert render_rule(window, {}, None)["expr"] == "rate(x[5m]) > 1"


def test_severity_override() -> None:
    assert render_rule(CPU, {"severity": "critical"}, PRODUCTION)["labels"]["severity"] == (
        "critical"
    )
    with pytest.raises(RenderError, match="severity"):
        render_rule(CPU, {"severity": "page-everyone"}, PRODUCTION)


def test_reserved_labels_cannot_be_overridden() -> None:
    with pytest.raises(RenderError, match="group_id"):
        render_rule(CPU, {}, PRODUCTION, labels={"group_id": "other"})


def test_invalid_promql_is_refused() -> None:
    spec = TemplateSpec(
        name="Bad",
        query_template="sum(rate(x[5m]) > {{.threshold}}",
        default_config={"threshold": 1},
    )
    with pytest.raises(RenderError, match="not valid PromQL"):
        render_rule(spec, {}, None)
    with pytest.raises(RenderError, match="not a placeholder"):
        render_rule(TemplateSpec(name="X", query_template="up > {{ threshold }}"), {}, None)
    with pytest.raises(RenderError, match="not supported"):
        render_rule(CPU, {}, PRODUCTION, annotations={"a": "{{ .threshold | printf }}"})
    with pytest.raises(RenderError, match="may not contain"):
        render_rule(CPU, {"note": '{{ query "up" }}'}, PRODUCTION, annotations={"a": "{{.note}}"})


def test_validate_template_uses_samples() -> None:
    rule = validate_template(DISK)
    assert 'group_id="sample-group"' in rule["expr"]
    no_default = TemplateSpec(name="T", query_template="node_load1 > {{.limit}}")
    assert validate_template(no_default)["expr"] == "node_load1 > 1"
    with pytest.raises(RenderError, match="alert name"):
        validate_template(TemplateSpec(name="High CPU", query_template="up == 0"))


def test_names() -> None:
    assert camel_case("production") == "Production"
    assert camel_case("gpu-cluster a") == "GpuClusterA"
    assert camel_case("ML training") == "MLTraining"
    assert alert_name("HighCPUUsage", PRODUCTION) == "HighCPUUsage_Production"
    assert alert_name("HighCPUUsage", GroupRef("grp-1", "---")) == "HighCPUUsage_Grp1"
    assert alert_name("HighCPUUsage", None) == "HighCPUUsage"
    assert placeholders(CPU.query_template) == ["group_id", "threshold"]


def test_promtool_accepts_the_golden_files() -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/setup"
    files = sorted(str(p) for p in GOLDEN.glob("*.yml"))
    result = subprocess.run(
        [promtool, "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(_text, min_size=1, max_size=3),
    exprs=st.lists(_text, min_size=1, max_size=3),
    labels=st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), _text, max_size=4
    ),
)
def test_rule_file_yaml_round_trips(
    names: list[str], exprs: list[str], labels: dict[str, str]
) -> None:
    """Whatever the strings, the emitted YAML reads back as the same document."""
    rules = [
        {"alert": n, "expr": e, "for": "5m", "labels": labels, "annotations": labels}
        for n, e in zip(names, exprs, strict=False)
    ]
    document = {"groups": [{"name": "aami-x", "rules": rules}]}
    text = dump_rule_file(document, header="any\nheader")  # type: ignore[arg-type]
    assert yaml.safe_load(text) == document
