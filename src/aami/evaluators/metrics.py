"""Remote evaluators on ``/metrics``: whether each runs the desired rules, when it last
reported. Read from the database at scrape time, so every replica says the same."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from aami.db.session import session_scope
from aami.evaluators import service
from aami.evaluators.repository import EvaluatorRepository
from aami.evaluators.rule_sets import RuleSetCache

__all__ = ["EvaluatorCollector"]

log = logging.getLogger(__name__)


class EvaluatorCollector(Collector):
    def __init__(
        self, factory: sessionmaker[Session], cache: RuleSetCache, stale_after: float
    ) -> None:
        self.factory = factory
        self.cache = cache
        self.stale_after = stale_after

    def collect(self) -> Iterator[Metric]:
        in_sync = GaugeMetricFamily(
            "aami_evaluator_in_sync",
            "1 when a remote evaluator reported, within evaluator_stale_after, that it runs "
            "the desired rule set without error.",
            labels=["evaluator", "kind"],
        )
        stale = GaugeMetricFamily(
            "aami_evaluator_stale",
            "1 when a remote evaluator has not reported within evaluator_stale_after.",
            labels=["evaluator"],
        )
        last = GaugeMetricFamily(
            "aami_evaluator_last_report_timestamp_seconds",
            "When a remote evaluator's rules sync last reported.",
            labels=["evaluator"],
        )
        try:
            with session_scope(self.factory) as session:
                for row in EvaluatorRepository(session).all():
                    read = service.read(session, self.cache, row, stale_after=self.stale_after)
                    in_sync.add_metric([read.name, read.kind], 1.0 if read.in_sync else 0.0)
                    stale.add_metric([read.name], 1.0 if read.stale else 0.0)
                    if read.last_report_at is not None:
                        last.add_metric([read.name], read.last_report_at.timestamp())
        except SQLAlchemyError as exc:
            log.warning("evaluator metrics: the database did not answer: %s", exc)
            return
        yield in_sync
        yield stale
        yield last
