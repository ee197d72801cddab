"""Backtesting an alert expression (pure: plain data in, plain data out).

A range query of the rule's expression answers, per series, the grid points
``start, start + step, ...`` at which the expression returned a value: at those points
the condition held. The model of Prometheus's ``for`` on that grid:

- a run is a stretch of consecutive grid points at which the series is present; a missing
  point (a gap) ends it;
- a run starting at ``a`` becomes firing at the first grid point at or after ``a + for``
  (``for`` 0: at ``a``); a run that ends before then never fires;
- a run that fires is one episode; each grid point at which it fires counts for one step
  of firing time, so a run firing at points ``f .. b`` fired ``(b - f) / step + 1`` steps.

The grid stands in for the rule's evaluations: with a step longer than the evaluation
interval, an excursion shorter than the step can fall between two points and be missed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_POINTS",
    "Episodes",
    "SeriesEpisodes",
    "count_episodes",
    "grid_step",
    "series_episodes",
]

# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS = 11_000


@dataclass(frozen=True, slots=True)
class SeriesEpisodes:
    """One series' firing episodes: how many, total and longest firing time (seconds)."""

    labels: Mapping[str, str]
    episodes: int
    firing_seconds: float
    longest_seconds: float
    firing_now: bool = False  # the last grid point fires


@dataclass(frozen=True, slots=True)
class Episodes:
    """Every series that fired at least once, and the totals over all of them."""

    series: list[SeriesEpisodes] = field(default_factory=list)
    episodes: int = 0
    firing_seconds: float = 0.0
    longest_seconds: float = 0.0
    series_seen: int = 0  # series for which the condition held at some point


def grid_step(range_seconds: float, requested: float | None, *, minimum: float) -> float:
    """The step of a range query over ``range_seconds``: the request, or ``minimum``
    raised so that the query stays within ``MAX_POINTS`` points per series."""
    least = math.ceil(range_seconds / (MAX_POINTS - 1))
    return float(max(requested if requested is not None else minimum, least))


def _indices(values: Iterable[Sequence[Any]], start: float, step: float) -> list[int]:
    """The grid indices of a series' points, in order (a point off the grid is rounded)."""
    found = sorted({round((float(point[0]) - start) / step) for point in values})
    return [index for index in found if index >= 0]


def series_episodes(
    indices: Sequence[int], *, step: float, for_seconds: float, last: int
) -> tuple[int, float, float, bool]:
    """Episodes, firing steps total and longest, and whether point ``last`` fires, of a
    series present at grid ``indices`` (sorted, distinct)."""
    wait = math.ceil(for_seconds / step) if for_seconds > 0 else 0
    episodes, total, longest, now = 0, 0, 0, False
    run_start = previous = None
    for index in [*indices, None]:
        if index is not None and previous is not None and index == previous + 1:
            previous = index
            continue
        if run_start is not None and previous is not None:
            fired = previous - (run_start + wait) + 1
            if fired > 0:
                episodes += 1
                total += fired
                longest = max(longest, fired)
                now = now or previous == last
        run_start = previous = index
    return episodes, total * step, longest * step, now


def count_episodes(
    matrix: Iterable[Mapping[str, Any]],
    *,
    start: float,
    end: float,
    step: float,
    for_seconds: float,
) -> Episodes:
    """The episodes of every series of a range query's ``matrix`` result (``metric``,
    ``values``) on the grid ``start .. end`` by ``step``; ``for_seconds`` as the rule's
    ``for``. Series are ordered by firing time, then episodes, longest first."""
    last = round((end - start) / step)
    found: list[SeriesEpisodes] = []
    seen = 0
    for item in matrix:
        indices = _indices(item.get("values") or [], start, step)
        if not indices:
            continue
        seen += 1
        episodes, total, longest, now = series_episodes(
            indices, step=step, for_seconds=for_seconds, last=last
        )
        if episodes:
            labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            found.append(SeriesEpisodes(labels, episodes, total, longest, now))
    found.sort(key=lambda s: (-s.firing_seconds, -s.episodes, sorted(s.labels.items())))
    return Episodes(
        series=found,
        episodes=sum(s.episodes for s in found),
        firing_seconds=sum(s.firing_seconds for s in found),
        longest_seconds=max((s.longest_seconds for s in found), default=0.0),
        series_seen=seen,
    )
