"""The backtest core: firing episodes on the step grid with the rule's ``for``."""

from __future__ import annotations

from typing import Any

import pytest

from aami.prometheus.backtest import MAX_POINTS, count_episodes, grid_step

START = 1_000_000.0
STEP = 10.0


def series(labels: dict[str, str], *points: int) -> dict[str, Any]:
    """A matrix item present at these grid indices (as Prometheus answers: [ts, "v"])."""
    return {"metric": labels, "values": [[START + i * STEP, "1"] for i in points]}


def run(*matrix: dict[str, Any], for_seconds: float, points: int = 100) -> Any:
    return count_episodes(
        matrix, start=START, end=START + (points - 1) * STEP, step=STEP, for_seconds=for_seconds
    )


def test_an_excursion_shorter_than_for_does_not_count() -> None:
    # Present at 5 points: 0, 10, 20, 30, 40 s into the run; for 60 s needs point 6.
    found = run(series({"instance": "a"}, *range(10, 15)), for_seconds=60)
    assert (found.episodes, found.firing_seconds, found.series) == (0, 0.0, [])
    assert found.series_seen == 1


def test_an_excursion_that_lasts_counts_once_with_its_firing_time() -> None:
    # Points 10..27 (18 points, 170 s); fires from point 16 (60 s in) to 27: 12 steps.
    found = run(series({"instance": "a"}, *range(10, 28)), for_seconds=60)
    assert found.episodes == 1
    assert found.firing_seconds == 120.0
    assert found.longest_seconds == 120.0
    (only,) = found.series
    assert (only.labels, only.episodes, only.firing_now) == ({"instance": "a"}, 1, False)


def test_for_that_is_not_a_whole_number_of_steps_rounds_up_to_the_next_point() -> None:
    found = run(series({}, *range(0, 10)), for_seconds=25)  # fires from point 3
    assert found.firing_seconds == 70.0


def test_for_zero_fires_from_the_first_point() -> None:
    found = run(series({}, 4), series({"x": "1"}, *range(20, 23)), for_seconds=0)
    assert found.episodes == 2
    assert found.firing_seconds == 40.0
    assert found.longest_seconds == 30.0


def test_a_gap_splits_episodes_and_resets_for() -> None:
    # 0..9 then 11..20: two runs of 10 points; for 30 s: each fires 7 steps.
    found = run(series({}, *range(0, 10), *range(11, 21)), for_seconds=30)
    assert found.episodes == 2
    assert found.firing_seconds == 140.0
    assert found.longest_seconds == 70.0
    # The same points with a gap that makes the second run too short.
    found = run(series({}, *range(0, 10), *range(12, 14)), for_seconds=30)
    assert (found.episodes, found.firing_seconds) == (1, 70.0)


def test_several_series_each_counted_and_totalled_longest_first() -> None:
    found = run(
        series({"instance": "a"}, *range(0, 5)),
        series({"instance": "b"}, *range(0, 20), *range(40, 50)),
        series({"instance": "c"}, 1, 2),  # too short
        for_seconds=20,
    )
    assert [s.labels["instance"] for s in found.series] == ["b", "a"]
    assert [(s.episodes, s.firing_seconds) for s in found.series] == [(2, 260.0), (1, 30.0)]
    assert (found.episodes, found.firing_seconds, found.longest_seconds) == (3, 290.0, 180.0)
    assert found.series_seen == 3


def test_a_run_reaching_the_last_point_is_firing_now() -> None:
    found = run(series({}, *range(90, 100)), for_seconds=0)
    assert found.series[0].firing_now


def test_the_step_keeps_a_query_within_prometheus_points_limit() -> None:
    week = 168 * 3600
    step = grid_step(week, None, minimum=15)
    assert week / step + 1 <= MAX_POINTS
    assert grid_step(3600, None, minimum=15) == 15
    assert grid_step(3600, 1, minimum=15) == 1


@pytest.mark.parametrize("for_seconds", [0, 10, 60])
def test_no_series_no_episodes(for_seconds: float) -> None:
    found = run(for_seconds=for_seconds)
    assert (found.episodes, found.firing_seconds, found.longest_seconds) == (0, 0.0, 0.0)
