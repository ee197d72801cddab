"""AAMI's own look at what an evaluator runs: its ``/api/v1/rules`` (Prometheus and vmalert
answer the same shape), each AAMI rule group's stamp against the desired one.

This does not take the rules sync's word: it is what the evaluator says, asked from here,
when AAMI can reach it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aami.evaluators.rule_sets import RuleSet
from aami.prometheus.client import PrometheusClient, PrometheusError
from aami.prometheus.rule_files import SENTINEL_RECORD

__all__ = ["GroupState", "Probe", "probe"]


@dataclass(frozen=True, slots=True)
class GroupState:
    group: str
    desired_revision: int | None
    loaded_revision: int | None
    in_sync: bool


@dataclass
class Probe:
    reachable: bool
    error: str | None = None
    groups: list[GroupState] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return self.reachable and all(g.in_sync for g in self.groups)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def probe(wanted: RuleSet, client: PrometheusClient) -> Probe:
    """Compare the evaluator's loaded AAMI groups with the rule set it should run."""
    try:
        loaded = client.recording_rules(SENTINEL_RECORD)
    except PrometheusError as exc:
        return Probe(reachable=False, error=str(exc))
    desired = {group: (revision, fingerprint) for group, revision, fingerprint in wanted.stamps}
    states = []
    for group in sorted(set(desired) | {g for g in loaded if g.startswith("aami-")}):
        record = loaded.get(group)
        labels = (record.labels if record else None) or {}
        if group not in desired and labels.get("aami_rule_group") != group:
            continue  # another aami-* group (the shipped rules about AAMI itself)
        want = desired.get(group)
        have = (_int(labels.get("aami_revision")), labels.get("aami_fingerprint"))
        states.append(
            GroupState(
                group=group,
                desired_revision=want[0] if want else None,
                loaded_revision=have[0] if record else None,
                in_sync=want is not None and record is not None and have == want,
            )
        )
    return Probe(reachable=True, groups=states)
