"""Check output: Prometheus text and JSON in, canonical text out; anything invalid refused."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aami.agent.output import (
    MetricFamily,
    OutputError,
    Sample,
    canonicalise,
    escape_label_value,
    format_value,
    parse_output,
    serialise,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            'mount_status{path="/data"} 1\nmount_status{path="/mnt/models"} 0\n',
            'mount_status{path="/data"} 1\nmount_status{path="/mnt/models"} 0\n',
            id="seed-output",
        ),
        pytest.param(
            '# HELP temp Temperature.\n# TYPE temp gauge\ntemp{gpu="0"} 41.50\n',
            '# TYPE temp gauge\ntemp{gpu="0"} 41.5\n',
            id="help-dropped-type-kept",
        ),
        pytest.param("up 1 1700000000000\n", "up 1\n", id="timestamp-dropped"),
        pytest.param(
            "# TYPE errors counter\nerrors 3\n",
            "# TYPE errors counter\nerrors 3\n",
            id="counter-name-kept",
        ),
        pytest.param(
            "# TYPE errors_total counter\nerrors_total 3\n",
            "# TYPE errors_total counter\nerrors_total 3\n",
            id="counter-total-kept",
        ),
        pytest.param(
            '# TYPE lat histogram\nlat_bucket{le="0.5"} 1\nlat_bucket{le="+Inf"} 2\n'
            "lat_sum 1.25\nlat_count 2\n",
            '# TYPE lat histogram\nlat_bucket{le="0.5"} 1\nlat_bucket{le="+Inf"} 2\n'
            "lat_sum 1.25\nlat_count 2\n",
            id="histogram",
        ),
        pytest.param(
            '# TYPE rpc summary\nrpc{quantile="0.9"} 2\nrpc_sum 5\nrpc_count 3\n',
            '# TYPE rpc summary\nrpc{quantile="0.9"} 2\nrpc_sum 5\nrpc_count 3\n',
            id="summary",
        ),
        pytest.param(
            "# TYPE x untyped\nx 1\n# a comment\n\n  y  2  \n",
            "x 1\ny 2\n",
            id="untyped-comments-blank-lines",
        ),
        pytest.param(
            "a NaN\nb +Inf\nc -Inf\nd 1e3\ne 1.5e-7\nf 1e400\n",
            "a NaN\nb +Inf\nc -Inf\nd 1000\ne 1.5e-07\nf +Inf\n",
            id="special-values",
        ),
        pytest.param(
            'm{v="a\\"b\\\\c\\nd"} 1\n', 'm{v="a\\"b\\\\c\\nd"} 1\n', id="escapes-round-trip"
        ),
        pytest.param('{__name__="named"} 7\n', "named 7\n", id="name-in-braces"),
        pytest.param("", "", id="empty"),
        pytest.param("\n\n# only comments\n", "", id="no-samples"),
    ],
)
def test_text_is_canonicalised(raw: str, expected: str) -> None:
    assert canonicalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            '[{"name": "mount_status", "labels": {"path": "/data"}, "value": 1},'
            ' {"name": "mount_status", "labels": {"path": "/mnt"}, "value": 0}]',
            'mount_status{path="/data"} 1\nmount_status{path="/mnt"} 0\n',
            id="list",
        ),
        pytest.param(
            '{"metrics": [{"name": "gpu_temp", "labels": {"gpu": 0}, "value": 71.5}]}',
            'gpu_temp{gpu="0"} 71.5\n',
            id="metrics-object-number-label",
        ),
        pytest.param('[{"name": "free", "value": 3}]', "free 3\n", id="no-labels"),
        pytest.param(
            '[{"name": "a", "value": "NaN"}, {"name": "b", "value": "+Inf"},'
            ' {"name": "c", "value": "-Inf"}, {"name": "d", "value": NaN}]',
            "a NaN\nb +Inf\nc -Inf\nd NaN\n",
            id="special-values",
        ),
        pytest.param(
            '[{"name": "m", "labels": {"v": "say \\"hi\\"\\n\\\\"}, "value": 1}]',
            'm{v="say \\"hi\\"\\n\\\\"} 1\n',
            id="label-escaping",
        ),
        pytest.param("[]", "", id="empty-list"),
    ],
)
def test_json_is_converted(raw: str, expected: str) -> None:
    assert canonicalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("this is not a metric\n", "not a valid sample", id="garbage"),
        pytest.param("ok 1\nError: disk on fire\n", "line 2", id="garbage-after-good-line"),
        pytest.param("1bad_name 1\n", "not a valid sample", id="metric-name-digit"),
        pytest.param('{"bad.name"} 1\n', "invalid metric name", id="metric-name-dot"),
        pytest.param('m{"bad.label"="x"} 1\n', "invalid label name", id="label-name-dot"),
        pytest.param('m{__secret="x"} 1\n', "not a valid sample", id="label-name-reserved"),
        pytest.param('m{a="1",a="2"} 1\n', "Invalid labels", id="duplicate-labels"),
        pytest.param('m{a="1"} 1\nm{a="1"} 2\n', "duplicate series", id="duplicate-series"),
        pytest.param("m one\n", "not a valid sample", id="non-numeric-value"),
        pytest.param("m 0x10\n", "not a valid sample", id="hex-value"),
        pytest.param("m{a=unquoted} 1\n", "not a valid sample", id="unquoted-label"),
        pytest.param("# TYPE m info\nm 1\n", "unsupported metric type", id="openmetrics-type"),
        pytest.param("# TYPE m gauge\n# TYPE m gauge\nm 1\n", "second time", id="type-twice"),
        pytest.param("m 1\n# TYPE m gauge\nm 2\n", "after its samples", id="type-after"),
        pytest.param("# TYPE h histogram\nh_bucket 1\n", "'le'", id="bucket-without-le"),
        pytest.param("# TYPE s summary\ns 1\n", "'quantile'", id="summary-without-quantile"),
        pytest.param("[{", "invalid JSON", id="broken-json"),
        pytest.param('{"metric": []}', "must be a list", id="json-wrong-object"),
        pytest.param('["x"]', "must be an object", id="json-item-not-object"),
        pytest.param('[{"name": "a b", "value": 1}]', "invalid metric name", id="json-bad-name"),
        pytest.param('[{"name": "m", "value": 1, "lables": {}}]', "unknown keys", id="json-typo"),
        pytest.param('[{"name": "m"}]', "'value' is missing", id="json-no-value"),
        pytest.param('[{"name": "m", "value": "high"}]', "must be a number", id="json-str-value"),
        pytest.param('[{"name": "m", "value": true}]', "must be a number", id="json-bool-value"),
        pytest.param(
            '[{"name": "m", "labels": {"x-y": "1"}, "value": 1}]',
            "invalid label name",
            id="json-bad-label",
        ),
        pytest.param(
            '[{"name": "m", "labels": {"__a": "1"}, "value": 1}]', "reserved", id="json-reserved"
        ),
        pytest.param(
            '[{"name": "m", "labels": {"a": "1", "a": "2"}, "value": 1}]',
            "duplicate key",
            id="json-duplicate-labels",
        ),
        pytest.param(
            '[{"name": "m", "value": 1}, {"name": "m", "value": 2}]',
            "duplicate series",
            id="json-duplicate-series",
        ),
        pytest.param(
            '[{"name": "m", "labels": {"a": null}, "value": 1}]',
            "string or a number",
            id="json-null-label",
        ),
    ],
)
def test_invalid_output_is_refused(raw: str, message: str) -> None:
    with pytest.raises(OutputError, match=message):
        canonicalise(raw)


def test_non_utf8_output_is_refused() -> None:
    with pytest.raises(OutputError, match="not UTF-8"):
        parse_output(b'm{a="\xff"} 1\n')


def test_reserved_prefixes_are_refused() -> None:
    assert canonicalise("aami_check_success 1\n") == "aami_check_success 1\n"
    with pytest.raises(OutputError, match="reserved"):
        canonicalise("aami_check_success 1\n", reserved_prefixes=("aami_check_",))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.0, "0"),
        (-3.0, "-3"),
        (2.5, "2.5"),
        (1e20, "1e+20"),
        (1e-9, "1e-09"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


def test_escape_label_value() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_serialise_round_trips_through_prometheus_parser() -> None:
    families = [
        MetricFamily("up", "gauge", "Is it up.\nSecond line \\ here.", [Sample("up", (), 1.0)]),
        MetricFamily(
            "odd",
            samples=[Sample("odd", (("v", 'q"\\\n'), ("w", "")), -0.5)],
        ),
        MetricFamily("empty", "gauge"),
    ]
    text = serialise(families)
    assert "empty" not in text
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert parsed["up"].documentation == "Is it up.\nSecond line \\ here."
    assert parsed["up"].type == "gauge"
    assert parsed["odd"].samples[0].labels == {"v": 'q"\\\n', "w": ""}
    assert parsed["odd"].samples[0].value == -0.5


def test_canonical_output_is_stable() -> None:
    raw = '# TYPE t gauge\nt{a="1",b="x\\\\y"} 3.25 123\nu NaN\n'
    once = canonicalise(raw)
    assert canonicalise(once) == once
