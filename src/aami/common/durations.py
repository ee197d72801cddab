"""Durations: one grammar and one format for every duration AAMI reads or writes.

The grammar is Prometheus's (``model.ParseDuration``), which Alertmanager and amtool use
too, so a duration that works in a rule's ``for``, a route's ``repeat_interval``, a
silence or a setting works in all of them::

    duration = "0" | part part*          units largest first, each at most once
    part     = digits unit
    unit     = "y" | "w" | "d" | "h" | "m" | "s" | "ms"

``y`` is 365 days, ``w`` 7 days, ``d`` 24 hours; counts are whole numbers (``90s``, not
``1.5m``), at most about 292 years in all (Go's int64 nanoseconds). Where a setting also
takes a plain number, it is seconds (``30``, ``0.5``): ``parse_seconds(plain_seconds=True)``.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import TypeGuard

__all__ = [
    "DURATION",
    "format_duration",
    "is_duration",
    "parse_duration",
    "parse_seconds",
]

# ASCII digits only (Python's \d takes any Unicode digit); \Z, not $, which allows a
# trailing newline. The look-ahead refuses the empty string.
DURATION = re.compile(
    r"\A(?:0|(?=[0-9])"
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?"
    r"(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?)\Z"
)

_MS_PER_UNIT = (
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
)
# Prometheus keeps a duration in int64 nanoseconds and refuses what does not fit.
_MAX_MS = (2**63 - 1) // 1_000_000
_EXAMPLES = "such as '30s', '5m', '1h30m' or '1d' (units y w d h m s ms, largest first)"


def _milliseconds(text: str) -> int | None:
    """The duration's length in milliseconds, or None when it is not one."""
    match = DURATION.match(text)
    if match is None:
        return None
    total = 0
    for count, (_, per_unit) in zip(match.groups(), _MS_PER_UNIT, strict=True):
        if count is not None:
            total += int(count) * per_unit
    return total if total <= _MAX_MS else None


def is_duration(text: object) -> TypeGuard[str]:
    """Tell whether ``text`` is a duration in the grammar above (and in range)."""
    return isinstance(text, str) and _milliseconds(text) is not None


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``5m``, ``1h30m`` or ``1d``; raise ValueError if it is not."""
    ms = _milliseconds(text.strip())
    if ms is None:
        raise ValueError(f"{text!r} is not a duration {_EXAMPLES}")
    return timedelta(milliseconds=ms)


def parse_seconds(value: str | float, *, plain_seconds: bool = False) -> float:
    """Seconds in a duration (``90s``, ``1d``); with ``plain_seconds`` also a plain number
    of seconds (``30``, ``0.5``, or an int or float as is)."""
    if plain_seconds:
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is not None:
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"{value!r} is not a duration: seconds must be 0 or more")
            return number
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration {_EXAMPLES}")
    ms = _milliseconds(value.strip())
    if ms is None:
        also = " or a number of seconds" if plain_seconds else ""
        raise ValueError(f"{value!r} is not a duration {_EXAMPLES}{also}")
    return ms / 1000


def format_duration(value: timedelta | float) -> str:
    """Write a duration (a timedelta, or seconds) the way Prometheus does: ``1h30m``,
    ``2w``, ``90d``, ``0s``; years and weeks only when they divide it exactly, below a
    millisecond dropped."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, per_unit in _MS_PER_UNIT:
        if unit in ("y", "w") and ms % per_unit:
            continue  # "90d" reads better than "12w6d"
        count, ms = divmod(ms, per_unit)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
