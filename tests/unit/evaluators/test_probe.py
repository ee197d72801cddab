"""AAMI's own look at an evaluator: its /api/v1/rules (a MockTransport standing in for
Prometheus or vmalert) compared with the rule set it should run."""

from __future__ import annotations

from typing import Any

import httpx

from aami.evaluators.probe import probe
from aami.evaluators.rule_sets import RuleSet
from aami.prometheus.client import PrometheusClient

WANTED = RuleSet(
    files=(("global.yml", "..."), ("group-grp-a.yml", "...")),
    stamps=(("aami-global", 3, "f" * 16), ("aami-grp-a", 7, "a" * 16)),
    errors=(),
    revision="0" * 64,
)


def group(name: str, revision: int | None, fingerprint: str = "", **extra: Any) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {"type": "alerting", "name": "HighCPU", "labels": {"severity": "warning"}}
    ]
    if revision is not None:
        labels = {
            "aami_rule_group": name,
            "aami_revision": str(revision),
            "aami_fingerprint": fingerprint,
        }
        rules.insert(0, {"type": "recording", "name": "aami_rule_group_info", "labels": labels})
    return {"name": name, "file": f"/rules/{name}.yml", "rules": rules, **extra}


def client(groups: list[dict[str, Any]], status: int = 200) -> PrometheusClient:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/rules"
        return httpx.Response(status, json={"status": "success", "data": {"groups": groups}})

    return PrometheusClient(
        "http://evaluator:9090", retries=0, transport=httpx.MockTransport(answer)
    )


def states(groups: list[dict[str, Any]]) -> dict[str, tuple[int | None, int | None, bool]]:
    found = probe(WANTED, client(groups))
    assert found.reachable
    return {g.group: (g.desired_revision, g.loaded_revision, g.in_sync) for g in found.groups}


def test_in_sync_when_every_stamp_matches() -> None:
    found = probe(
        WANTED, client([group("aami-global", 3, "f" * 16), group("aami-grp-a", 7, "a" * 16)])
    )
    assert found.in_sync
    # Other groups (not AAMI's, or AAMI's own shipped rules without a stamp) do not count.
    found = probe(
        WANTED,
        client(
            [
                group("aami-global", 3, "f" * 16),
                group("aami-grp-a", 7, "a" * 16),
                group("node-exporter", None),
                group("aami-self", None),
            ]
        ),
    )
    assert found.in_sync
    assert [g.group for g in found.groups] == ["aami-global", "aami-grp-a"]


def test_an_old_revision_a_missing_group_and_a_leftover_are_drift() -> None:
    assert states(
        [
            group("aami-global", 2, "e" * 16),  # an older file
            group("aami-grp-old", 4, "b" * 16),  # a group that should be gone
        ]
    ) == {
        "aami-global": (3, 2, False),
        "aami-grp-a": (7, None, False),
        "aami-grp-old": (None, 4, False),
    }


def test_same_revision_other_bytes_is_drift() -> None:
    # A hand-edited file keeps its revision but not its fingerprint.
    assert states([group("aami-global", 3, "x" * 16), group("aami-grp-a", 7, "a" * 16)])[
        "aami-global"
    ] == (3, 3, False)


def test_an_evaluator_that_does_not_answer_is_not_in_sync() -> None:
    found = probe(WANTED, client([], status=503))
    assert not found.reachable
    assert not found.in_sync
    assert found.error
    unreachable = PrometheusClient("http://127.0.0.1:9", retries=0, timeout=1)
    found = probe(WANTED, unreachable)
    assert not found.reachable
    assert not found.in_sync
