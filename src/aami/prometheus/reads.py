"""The API views of the rule preview, the backtest and a template change's impact."""

from __future__ import annotations

from datetime import UTC, datetime

from aami.prometheus.backtest import Episodes
from aami.prometheus.schemas import (
    BacktestRead,
    BacktestRunRead,
    BacktestSeriesRead,
    ComparisonRead,
    EvaluationRead,
    RuleCheckRead,
    SeriesValueRead,
    TemplateImpactRead,
)
from aami.prometheus.service import (
    Backtest,
    BacktestRun,
    Evaluation,
    RulePreview,
    SeriesValue,
    TemplateImpact,
)

__all__ = ["FOR_MODEL", "backtest_read", "evaluation_read", "impact_read", "rule_check_read"]

SHOWN_SERIES = 100

FOR_MODEL = (
    "on the step grid: a series present at consecutive points is one run; a gap ends it; "
    "a run fires from its first point at least `for` after its start; each point at which "
    "it fires counts for one step"
)


def _series(found: SeriesValue) -> SeriesValueRead:
    return SeriesValueRead(labels=found.labels, value=found.value, distance=found.distance)


def evaluation_read(found: Evaluation) -> EvaluationRead:
    comparison = found.comparison
    return EvaluationRead(
        state=found.state,
        summary=found.summary,
        series_count=found.series_count,
        firing_count=found.firing_count,
        firing=[_series(s) for s in found.firing],
        near_misses=[_series(s) for s in found.near_misses],
        near_misses_available=comparison is not None,
        near_misses_note=found.near_misses_note,
        comparison=ComparisonRead(
            lhs=comparison.lhs, op=comparison.op, threshold=comparison.threshold
        )
        if comparison is not None
        else None,
        absent_metrics=found.absent_metrics,
    )


def rule_check_read(found: RulePreview) -> RuleCheckRead:
    return RuleCheckRead.model_validate(
        {
            "valid": found.valid,
            "scope": found.scope,
            "error": str(found.problem) if found.problem else None,
            "rule": found.rule,
            "evaluation": evaluation_read(found.evaluation) if found.evaluation else None,
        }
    )


def _run(run: BacktestRun) -> BacktestRunRead:
    result = run.result or Episodes()
    return BacktestRunRead(
        config=run.config,
        expr=run.expr,
        for_=run.for_,
        error=run.error,
        episodes=result.episodes,
        firing_seconds=result.firing_seconds,
        longest_seconds=result.longest_seconds,
        series_seen=result.series_seen,
        series_fired=len(result.series),
        series=[
            BacktestSeriesRead(
                labels=dict(s.labels),
                episodes=s.episodes,
                firing_seconds=s.firing_seconds,
                longest_seconds=s.longest_seconds,
                firing_at_end=s.firing_now,
            )
            for s in result.series[:SHOWN_SERIES]
        ],
    )


def backtest_read(found: Backtest) -> BacktestRead:
    return BacktestRead(
        start=datetime.fromtimestamp(found.start, UTC),
        end=datetime.fromtimestamp(found.end, UTC),
        hours=int(found.hours),
        step_seconds=found.step,
        model=FOR_MODEL,
        current_source=found.current_source,
        current=_run(found.current),
        proposed=_run(found.proposed),
    )


def impact_read(found: TemplateImpact) -> TemplateImpactRead:
    return TemplateImpactRead.model_validate(
        {
            "template_id": found.template.id,
            "valid": found.valid,
            "error": found.problem,
            "rules": [
                {
                    "rule_id": item.rule.id,
                    "group_id": item.rule.group_id,
                    "group_name": item.rule.group.name if item.rule.group else None,
                    "enabled": item.rule.enabled,
                    "before": item.before,
                    "after": item.after,
                    "before_error": item.before_error,
                    "after_error": item.after_error,
                    "changed": item.changed,
                }
                for item in found.rules
            ],
        }
    )
