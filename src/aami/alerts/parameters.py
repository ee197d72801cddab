"""Typed template parameters (pure: plain data in, plain data out).

A template declares each key a rule may set: its type, bounds, unit and description::

    {"threshold": {"type": "number", "min": 0, "max": 120, "unit": "°C",
                   "description": "GPU temperature", "choices": None}}

Types: ``number`` (an int or float, or text that reads as one), ``integer``, ``duration``
(Prometheus's grammar, ``5m``), ``enum`` (one of ``choices``) and ``label_value`` (any
string, or a number placed as text). A template without declarations gets them inferred
from its ``default_config``: numbers → number, a duration string → duration, a boolean →
enum [true, false], other strings → label_value.

Every function raises ``ParameterError`` whose message starts with the field it is about
(``config.threshold: ...``, ``parameters.threshold: ...``) so adapters can place it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from aami.common.durations import is_duration

__all__ = [
    "PARAMETER_TYPES",
    "ParameterError",
    "check_config",
    "check_parameters",
    "describe",
    "infer_parameter",
    "infer_parameters",
    "normalise_parameter",
]

PARAMETER_TYPES: Final = ("number", "integer", "duration", "enum", "label_value")
SEVERITIES: Final = ("critical", "warning", "info")
# Keys AAMI fills in itself: a template cannot declare them.
FILLED_IN: Final = frozenset({"group_id", "group"})
_NUMBER_TEXT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
_DURATION_HINT = "a duration such as '30s', '5m' or '1h30m'"
_RANGE = "\u2013"  # an en dash: 0-120 written as typeset


class ParameterError(ValueError):
    """A value, or a parameter declaration, that does not fit; the message says why."""


def _empty(kind: str) -> dict[str, Any]:
    return {
        "type": kind,
        "min": None,
        "max": None,
        "unit": "",
        "description": "",
        "choices": None,
    }


def normalise_parameter(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of a declaration: every field present, absent ones empty."""
    out = _empty(str(spec.get("type", "")))
    for name in ("min", "max", "choices"):
        if spec.get(name) is not None:
            out[name] = list(spec[name]) if name == "choices" else spec[name]
    for name in ("unit", "description"):
        out[name] = str(spec.get(name) or "")
    return out


def infer_parameter(key: str, value: object) -> dict[str, Any]:
    """The declaration a default value implies."""
    if key == "severity":
        spec = _empty("enum")
        spec["choices"] = list(SEVERITIES)
        return spec
    if isinstance(value, bool):
        spec = _empty("enum")
        spec["choices"] = [True, False]
        return spec
    if isinstance(value, int | float):
        return _empty("number")
    if is_duration(value):
        return _empty("duration")
    return _empty("label_value")


def infer_parameters(
    default_config: Mapping[str, Any], declared: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The declared parameters (normalised), plus inferred ones for the other defaults."""
    out = {key: normalise_parameter(spec) for key, spec in (declared or {}).items()}
    for key, value in default_config.items():
        if key not in out and key not in FILLED_IN:
            out[key] = infer_parameter(key, value)
    return out


def _number(value: object) -> float | None:
    """The value as a number, or None when it is not one (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER_TEXT.match(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def describe(template: str, key: str, spec: Mapping[str, Any]) -> str:
    """``HighGPUTemp.threshold: number, °C, 0 to 120`` (with a dash): what a key takes."""
    parts = [spec["type"]]
    if spec["type"] == "enum" and spec.get("choices"):
        parts = [f"one of {', '.join(_text(c) for c in spec['choices'])}"]
    if spec.get("unit"):
        parts.append(spec["unit"])
    low, high = spec.get("min"), spec.get("max")
    if low is not None and high is not None:
        parts.append(f"{_text(low)}{_RANGE}{_text(high)}")
    elif low is not None:
        parts.append(f"at least {_text(low)}")
    elif high is not None:
        parts.append(f"at most {_text(high)}")
    return f"{template}.{key}: {', '.join(parts)}"


def _number_problem(value: object, spec: Mapping[str, Any]) -> str | None:
    number = _number(value)
    if number is None:
        return f"{value!r} is not a number"
    if spec["type"] == "integer" and not number.is_integer():
        return f"{value!r} is not a whole number"
    if spec.get("min") is not None and number < spec["min"]:
        return f"{value!r} is below the minimum {_text(spec['min'])}"
    if spec.get("max") is not None and number > spec["max"]:
        return f"{value!r} is above the maximum {_text(spec['max'])}"
    return None


def _problem(value: object, spec: Mapping[str, Any]) -> str | None:
    """Why ``value`` does not fit ``spec``, or None when it does."""
    kind = spec["type"]
    if kind in ("number", "integer"):
        return _number_problem(value, spec)
    if kind == "duration":
        return None if is_duration(value) else f"{value!r} is not {_DURATION_HINT}"
    if kind == "enum":
        choices = spec.get("choices") or []
        if any(value == c and type(value) is type(c) for c in choices):
            return None
        return f"{value!r} is not one of {', '.join(repr(c) for c in choices)}"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"{value!r} is not a label value (text)"
    return None


def check_config(
    template: str,
    parameters: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    *,
    where: str = "config",
) -> None:
    """Raise ParameterError for the first key of ``config`` its parameter refuses."""
    for key, value in config.items():
        spec = parameters.get(key)
        if spec is None:
            continue
        problem = _problem(value, spec)
        if problem is not None:
            raise ParameterError(f"{where}.{key}: {problem} ({describe(template, key, spec)})")


def _check_bounds(where: str, kind: str, spec: Mapping[str, Any]) -> None:
    low, high = spec.get("min"), spec.get("max")
    for name, bound in (("min", low), ("max", high)):
        if bound is None:
            continue
        if kind not in ("number", "integer"):
            raise ParameterError(f"{where}.{name}: only a number or integer has bounds")
        if isinstance(bound, str) or _number(bound) is None:
            raise ParameterError(f"{where}.{name}: {bound!r} is not a number")
    if low is not None and high is not None and low > high:
        raise ParameterError(
            f"{where}: min {_text(low)} is greater than max {_text(high)}; nothing fits"
        )


def _check_choices(where: str, kind: str, choices: object) -> None:
    if kind != "enum":
        if choices is not None:
            raise ParameterError(f"{where}.choices: only an enum has choices")
        return
    if not isinstance(choices, list | tuple) or not choices:
        raise ParameterError(f"{where}.choices: an enum needs at least one choice")
    for choice in choices:
        if not isinstance(choice, str | int | float | bool):
            raise ParameterError(f"{where}.choices: {choice!r} is not a string, number or bool")


def _check_one(key: str, spec: Mapping[str, Any]) -> None:
    where = f"parameters.{key}"
    kind = spec.get("type")
    if kind not in PARAMETER_TYPES:
        raise ParameterError(f"{where}.type: {kind!r} is not one of {', '.join(PARAMETER_TYPES)}")
    _check_bounds(where, str(kind), spec)
    _check_choices(where, str(kind), spec.get("choices"))


def check_parameters(
    template: str,
    parameters: Mapping[str, Mapping[str, Any]],
    default_config: Mapping[str, Any],
) -> None:
    """Raise ParameterError for an inconsistent declaration, or a default it refuses."""
    for key, spec in parameters.items():
        if key in FILLED_IN:
            raise ParameterError(f"parameters.{key}: {key} is filled in by AAMI, not a parameter")
        _check_one(key, spec)
    check_config(template, parameters, default_config, where="default_config")
