"""One duration grammar (Prometheus's) and one format, wherever AAMI reads a duration."""

from __future__ import annotations

from datetime import timedelta

import pytest
import typer

from aami.alerts.rendering import RenderError, check_duration
from aami.cli.operations import duration_hours
from aami.common.durations import (
    format_duration,
    is_duration,
    parse_duration,
    parse_seconds,
)
from aami.config import Settings

GOOD = {
    "0": 0,
    "0s": 0,
    "500ms": 0.5,
    "30s": 30,
    "5m": 300,
    "1h30m": 5400,
    "1d": 86400,
    "2w": 14 * 86400,
    "1y": 365 * 86400,
    "1y2w3d4h5m6s7ms": 365 * 86400 + 17 * 86400 + 4 * 3600 + 5 * 60 + 6.007,
    "90m": 5400,
    "1m5ms": 60.005,
}
BAD = [
    "",
    "5",
    "1.5h",
    "1h1h",
    "30m1h",
    "5M",
    "-5m",
    "5 m",
    "1h 30m",
    "\u0661h",  # an Arabic-Indic digit: Python's \d takes it, Prometheus does not
    "1e3s",
    "300y",  # past Go's int64 nanoseconds
]


@pytest.mark.parametrize(("text", "seconds"), GOOD.items())
def test_the_grammar_takes_prometheus_durations(text: str, seconds: float) -> None:
    assert is_duration(text)
    assert parse_seconds(text) == pytest.approx(seconds)
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", BAD)
def test_the_grammar_refuses_the_rest(text: str) -> None:
    assert not is_duration(text)
    with pytest.raises(ValueError, match="is not a duration"):
        parse_seconds(text)


def test_surrounding_space_is_read_but_is_no_duration() -> None:
    assert parse_seconds(" 5m\n") == 300
    assert not is_duration(" 5m")
    assert not is_duration("5m\n")


def test_plain_seconds_only_where_asked_for() -> None:
    assert parse_seconds("30", plain_seconds=True) == 30
    assert parse_seconds("0.5", plain_seconds=True) == 0.5
    assert parse_seconds(2, plain_seconds=True) == 2
    assert parse_seconds(" 1d ", plain_seconds=True) == 86400
    for bad in ("30", 30):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_seconds(bad)
    for bad in ("-1", "nan", "inf", True):
        with pytest.raises(ValueError, match="not a duration"):
            parse_seconds(bad, plain_seconds=True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "0s"),
        (0.25, "250ms"),
        (90, "1m30s"),
        (5400, "1h30m"),
        (86400, "1d"),
        (8 * 86400, "8d"),
        (14 * 86400, "2w"),
        (90 * 86400, "90d"),
        (365 * 86400, "1y"),
        (3723.5, "1h2m3s500ms"),
        (-60, "-1m"),
    ],
)
def test_format_writes_what_prometheus_writes(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert format_duration(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize("text", [t for t in GOOD if t not in ("0", "90m")])
def test_format_and_parse_round_trip(text: str) -> None:
    assert parse_seconds(format_duration(parse_seconds(text))) == parse_seconds(text)


@pytest.mark.parametrize("text", ["1d", "2w", "1h30m", "500ms", "1.5h", "5", "1h1h", "5M"])
def test_every_reader_agrees(text: str) -> None:
    """Settings, the silence API's parser, the CLI and rule rendering take the same."""
    accepted = is_duration(text)

    def verdict(read: object) -> bool:
        try:
            read()  # type: ignore[operator]
        except (ValueError, RenderError, typer.Exit):
            return False
        return True

    assert verdict(lambda: check_duration(text)) is accepted
    assert verdict(lambda: duration_hours(text)) is accepted
    # Settings and the silence API also take a plain number of seconds, such as "5".
    plain = text.isdigit()
    assert verdict(lambda: parse_seconds(text, plain_seconds=True)) is (accepted or plain)
    assert verdict(lambda: Settings(silence_max_duration=text)) is (accepted or plain)
