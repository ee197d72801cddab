"""Parse, validate and canonicalise check output (pure: text in, text out).

A check prints Prometheus text format, or JSON (``[{"name", "labels", "value"}]`` or
``{"metrics": [...]}``). Either is parsed into ``MetricFamily`` objects and re-serialised by
``serialise``, so what reaches the textfile directory is always text that node_exporter's
parser accepts: no HELP from scripts, ``# TYPE`` only for the four types of text format
0.0.4, no client-side timestamps (node_exporter refuses a whole file that has them).

Errors::

    OutputError (ValueError)   the output is not valid metrics; ``str()`` says why
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "LABEL_NAME_RE",
    "METRIC_NAME_RE",
    "MetricFamily",
    "OutputError",
    "Sample",
    "canonicalise",
    "escape_label_value",
    "format_value",
    "parse_json",
    "parse_output",
    "parse_text",
    "serialise",
]

METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# Types text format 0.0.4 knows; OpenMetrics-only types (info, stateset, ...) are refused
# because node_exporter's parser would refuse them.
_TYPED = ("counter", "gauge", "histogram", "summary")
_UNTYPED = ("untyped", "unknown")
_SPECIAL_VALUES = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
_JSON_KEYS = frozenset({"name", "labels", "value"})

Labels = tuple[tuple[str, str], ...]


class OutputError(ValueError):
    """Check output that is not valid metrics."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One series: a sample name, its labels in output order, and its value."""

    name: str
    labels: Labels
    value: float


@dataclass(slots=True)
class MetricFamily:
    """A metric family: name, type (one of counter/gauge/histogram/summary/untyped), samples."""

    name: str
    type: str = "untyped"
    help: str = ""
    samples: list[Sample] = field(default_factory=list)


def parse_output(data: bytes | str, *, reserved_prefixes: Sequence[str] = ()) -> list[MetricFamily]:
    """Parse check output, JSON or Prometheus text, into validated metric families."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OutputError(f"output is not UTF-8 (byte {exc.start})") from None
    else:
        text = data
    stripped = text.lstrip()
    if stripped.startswith("["):
        families = parse_json(stripped)
    elif stripped.startswith("{"):
        try:
            document = _load_json(stripped)
        except json.JSONDecodeError:
            # Not JSON after all: `{__name__="x"} 1` is a text-format sample.
            families = parse_text(text)
        else:
            families = _families_from_json(document)
    else:
        families = parse_text(text)
    _check_reserved(families, reserved_prefixes)
    return families


def parse_json(text: str) -> list[MetricFamily]:
    """Parse JSON check output (a list of ``{"name", "labels", "value"}``) into families."""
    try:
        document = _load_json(text)
    except json.JSONDecodeError as exc:
        raise OutputError(f"invalid JSON: {exc}") from None
    return _families_from_json(document)


def parse_text(text: str) -> list[MetricFamily]:
    """Parse Prometheus text format into validated families (HELP and timestamps dropped)."""
    families: dict[str, MetricFamily] = {}
    owner: dict[str, MetricFamily] = {}  # sample name -> the family it belongs to
    seen: set[tuple[str, Labels]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            words = line[1:].split()
            if words and words[0] == "TYPE":
                _declare(words, number, families, owner)
            continue  # HELP and other comments are not carried over
        sample = _parse_sample_line(line, number)
        family = owner.get(sample.name)
        if family is None:
            family = MetricFamily(sample.name)
            families[sample.name] = owner[sample.name] = family
        _check_typed_sample(family, sample, number)
        _add(family, sample, seen, f"line {number}")
    return [family for family in families.values() if family.samples]


def serialise(families: Iterable[MetricFamily]) -> str:
    """Write families as Prometheus text format 0.0.4 (empty families are left out)."""
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        if family.help:
            help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {family.name} {help_text}")
        if family.type in _TYPED:
            lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            if sample.labels:
                labels = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in sample.labels)
                lines.append(f"{sample.name}{{{labels}}} {format_value(sample.value)}")
            else:
                lines.append(f"{sample.name} {format_value(sample.value)}")
    return "".join(f"{line}\n" for line in lines)


def canonicalise(data: bytes | str, *, reserved_prefixes: Sequence[str] = ()) -> str:
    """Parse check output and return it as canonical Prometheus text."""
    return serialise(parse_output(data, reserved_prefixes=reserved_prefixes))


def escape_label_value(value: str) -> str:
    """Escape a label value for a double-quoted Prometheus string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Format a sample value the way Prometheus's parser reads it back exactly."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _declare(
    words: list[str], number: int, families: dict[str, MetricFamily], owner: dict[str, MetricFamily]
) -> None:
    """Register the family a ``# TYPE name type`` line declares."""
    if len(words) != 3:
        raise OutputError(f"line {number}: malformed TYPE line")
    _, name, kind = words
    kind = kind.lower()
    _check_metric_name(name, f"line {number}")
    if kind not in _TYPED and kind not in _UNTYPED:
        raise OutputError(f"line {number}: unsupported metric type {kind!r} for {name}")
    if name in families or name in owner:
        raise OutputError(f"line {number}: TYPE for {name} after its samples or a second time")
    family = MetricFamily(name, kind if kind in _TYPED else "untyped")
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}
    for suffix in suffixes.get(family.type, ("",)):
        sample_name = name + suffix
        if sample_name in owner:
            raise OutputError(f"line {number}: {sample_name} already belongs to another metric")
        owner[sample_name] = family
    families[name] = family


def _parse_sample_line(line: str, number: int) -> Sample:
    """Parse one sample line with prometheus_client's parser and validate what it lets through."""
    where = f"line {number}"
    try:
        parsed = [s for family in text_string_to_metric_families(line) for s in family.samples]
    except (ValueError, IndexError, KeyError) as exc:
        raise OutputError(f"{where}: not a valid sample: {_clip(line)} ({exc})") from None
    if len(parsed) != 1:
        raise OutputError(f"{where}: not a valid sample: {_clip(line)}")
    sample = parsed[0]
    _check_metric_name(sample.name, where)
    labels = tuple(sample.labels.items())
    for label_name, _ in labels:
        _check_label_name(label_name, where)
    return Sample(sample.name, labels, _to_float(sample.value, where))


def _check_typed_sample(family: MetricFamily, sample: Sample, number: int) -> None:
    """Enforce the labels node_exporter needs on histogram buckets and summary quantiles."""
    required = {
        ("histogram", f"{family.name}_bucket"): "le",
        ("summary", family.name): "quantile",
    }.get((family.type, sample.name))
    if required is None:
        return
    value = dict(sample.labels).get(required)
    if value is None or not _is_float(value):
        raise OutputError(f"line {number}: {sample.name} needs a numeric {required!r} label")


def _families_from_json(document: object) -> list[MetricFamily]:
    """Build families from decoded JSON output."""
    if isinstance(document, dict):
        if set(document) != {"metrics"}:
            raise OutputError('JSON output must be a list or {"metrics": [...]}')
        document = document["metrics"]
    if not isinstance(document, list):
        raise OutputError('JSON output must be a list or {"metrics": [...]}')
    families: dict[str, MetricFamily] = {}
    seen: set[tuple[str, Labels]] = set()
    for index, item in enumerate(document):
        where = f"metric {index}"
        if not isinstance(item, dict):
            raise OutputError(f"{where}: must be an object")
        unknown = set(item) - _JSON_KEYS
        if unknown:
            raise OutputError(f"{where}: unknown keys {sorted(unknown)}")
        name = item.get("name")
        if not isinstance(name, str):
            raise OutputError(f"{where}: 'name' must be a string")
        _check_metric_name(name, where)
        raw_labels = item.get("labels", {})
        if not isinstance(raw_labels, dict):
            raise OutputError(f"{where}: 'labels' must be an object")
        labels: list[tuple[str, str]] = []
        for label_name, label_value in raw_labels.items():
            _check_label_name(label_name, where)
            labels.append((label_name, _json_label_value(label_value, where, label_name)))
        if "value" not in item:
            raise OutputError(f"{where}: 'value' is missing")
        sample = Sample(name, tuple(labels), _json_value(item["value"], where))
        family = families.setdefault(name, MetricFamily(name))
        _add(family, sample, seen, where)
    return list(families.values())


def _add(family: MetricFamily, sample: Sample, seen: set[tuple[str, Labels]], where: str) -> None:
    """Append a sample, refusing a second series with the same name and labels."""
    key = (sample.name, tuple(sorted(sample.labels)))
    if key in seen:
        raise OutputError(f"{where}: duplicate series {sample.name}{dict(sample.labels)}")
    seen.add(key)
    family.samples.append(sample)


def _check_reserved(families: list[MetricFamily], prefixes: Sequence[str]) -> None:
    """Refuse metric names the agent writes itself (two files with one series break scrapes)."""
    for family in families:
        for sample in family.samples:
            if sample.name.startswith(tuple(prefixes)):
                raise OutputError(f"metric name {sample.name} is reserved for the agent")


def _check_metric_name(name: str, where: str) -> None:
    if not METRIC_NAME_RE.fullmatch(name):
        raise OutputError(f"{where}: invalid metric name {name!r}")


def _check_label_name(name: str, where: str) -> None:
    if not LABEL_NAME_RE.fullmatch(name):
        raise OutputError(f"{where}: invalid label name {name!r}")
    if name.startswith("__"):
        raise OutputError(f"{where}: label name {name!r} is reserved (starts with __)")


def _json_label_value(value: object, where: str, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_value(float(value))
    raise OutputError(f"{where}: label {name!r} must be a string or a number")


def _json_value(value: object, where: str) -> float:
    if isinstance(value, str):
        special = _SPECIAL_VALUES.get(value.lower())
        if special is None:
            raise OutputError(f"{where}: 'value' must be a number, NaN, +Inf or -Inf")
        return special
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _to_float(value, where)
    raise OutputError(f"{where}: 'value' must be a number")


def _to_float(value: float, where: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise OutputError(f"{where}: value out of range") from None


def _is_float(text: str) -> bool:
    """Whether Go's strconv.ParseFloat (node_exporter) would read ``text``."""
    if not text.isascii() or text != text.strip() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_json(text: str) -> object:
    """Decode JSON, refusing duplicate keys; a syntax error is left to the caller."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise OutputError("invalid JSON: nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """Build a JSON object, refusing duplicate keys (json.loads would keep the last)."""
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise OutputError(f"duplicate key {key!r} in JSON object")
        result[key] = value
    return result


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
