"""Publishing on ``/metrics``: whether this replica publishes, failures, and how long
each target has been out of sync (as the publisher last measured it)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aami.publishing.reconciler import Reconciler

__all__ = ["PublishingCollector"]


class PublishingCollector(Collector):
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    def collect(self) -> Iterator[Metric]:
        reconciler = self.reconciler
        leader = reconciler.is_leader
        yield GaugeMetricFamily(
            "aami_publisher_leader",
            "1 when this replica holds the publisher lease and publishes.",
            value=1.0 if leader else 0.0,
        )
        failures = CounterMetricFamily(
            "aami_publish_failures",
            "Publish passes that failed (validation, write, reload or confirmation), "
            "counted by this replica.",
            labels=["target"],
        )
        in_sync = GaugeMetricFamily(
            "aami_publish_in_sync",
            "1 when desired, written and loaded agree for every scope (publisher only).",
            labels=["target"],
        )
        out = GaugeMetricFamily(
            "aami_publish_out_of_sync_scopes",
            "Scopes (rule groups, the Alertmanager config) whose desired, written and "
            "loaded state differ (publisher only).",
            labels=["target"],
        )
        since = GaugeMetricFamily(
            "aami_publish_seconds_since_in_sync",
            "Seconds since the target was last seen fully in sync; 0 while it is (publisher only).",
            labels=["target"],
        )
        last = GaugeMetricFamily(
            "aami_publish_last_pass_timestamp_seconds",
            "When the publisher last ran a pass for the target.",
            labels=["target"],
        )
        now = time.time()
        for target, state in reconciler.states.items():
            failures.add_metric([target.value], float(state.failures_total))
            if not leader or state.sync is None:
                continue
            in_sync.add_metric([target.value], 1.0 if state.in_sync else 0.0)
            out.add_metric([target.value], float(len(state.sync.out_of_sync)))
            reference = state.last_in_sync_at or reconciler.leader_since or reconciler.started_at
            since.add_metric([target.value], 0.0 if state.in_sync else max(0.0, now - reference))
            if state.last_pass_at is not None:
                last.add_metric([target.value], state.last_pass_at)
        yield failures
        yield in_sync
        yield out
        yield since
        yield last
