"""An evaluator's rule set after a change renders only the scopes that changed, and is
byte for byte the set a cold render makes: after a threshold, a group's rename, a rule
deleted, a template switched to compact mode and back."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aami.alerts import service as alerts
from aami.alerts.repository import AlertTemplateRepository
from aami.alerts.schemas import AlertRuleCreate
from aami.db.session import session_scope
from aami.evaluators import rule_sets
from aami.prometheus.rule_sets import render_scopes
from tests.api.test_evaluators import CPU, bearer, evaluator
from tests.support.api import app_services, create

GROUPS = ("grp-a", "grp-b", "grp-c")


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The scopes of every render the rule sets ask for, in order."""
    calls: list[set[str]] = []
    real: Callable[..., Any] = render_scopes

    def spy(session: Any, scopes: Collection[str], revisions: Mapping[str, int]) -> Any:
        calls.append(set(scopes))
        return real(session, scopes, revisions)

    monkeypatch.setattr(rule_sets, "render_scopes", spy)
    return calls


def served(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get("/api/v1/evaluators/all/rules", headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cold(client: TestClient, token: str) -> dict[str, Any]:
    app_services(client).rule_sets.clear()
    return served(client, token)


def cpu_rules(client: TestClient, groups: tuple[str, ...]) -> None:
    """The groups, and a HighCPU rule in each."""
    for group in groups:
        create(client, "/api/v1/groups", {"id": group, "name": group})
    create(client, "/api/v1/alert-templates", CPU)
    for group in groups:
        create(client, "/api/v1/alert-rules", {"template_id": "HighCPU", "group_id": group})


def rule_id(client: TestClient, group: str) -> str:
    rules = client.get("/api/v1/alert-rules", params={"group_id": group}).json()["data"]
    return str(rules[0]["id"])


def set_threshold(client: TestClient, group: str, threshold: int) -> None:
    response = client.put(
        f"/api/v1/alert-rules/{rule_id(client, group)}", json={"config": {"threshold": threshold}}
    )
    assert response.status_code == 200, response.text


def test_a_change_renders_only_its_scope_and_matches_a_cold_render(
    client: TestClient, rendered: list[set[str]]
) -> None:
    cpu_rules(client, GROUPS)
    _, token = evaluator(client, "all", None)
    first = served(client, token)
    assert rendered == [set(GROUPS)]
    assert [f["name"] for f in first["files"]] == [f"group-{g}.yml" for g in GROUPS]

    # A threshold in one group: that group's file only.
    rendered.clear()
    set_threshold(client, "grp-b", 91)
    after = served(client, token)
    assert rendered == [{"grp-b"}]
    assert after["revision"] != first["revision"]
    changed = {f["name"] for f in after["files"]} ^ {f["name"] for f in first["files"]}
    assert changed == set()
    assert [f["sha256"] for f in after["files"]][0::2] == [f["sha256"] for f in first["files"]][
        0::2
    ]
    assert "> 91" in after["files"][1]["content"]
    assert cold(client, token) == after

    # A rename: the group's file says the new name.
    rendered.clear()
    client.put("/api/v1/groups/grp-a", json={"name": "training racks"})
    renamed = served(client, token)
    assert rendered == [{"grp-a"}]
    assert "(training racks)" in renamed["files"][0]["content"]
    assert cold(client, token) == renamed

    # A rule deleted: its file leaves the set; nothing is rendered for it.
    rendered.clear()
    assert client.delete(f"/api/v1/alert-rules/{rule_id(client, 'grp-c')}").status_code == 204
    fewer = served(client, token)
    assert rendered == []
    assert [f["name"] for f in fewer["files"]] == ["group-grp-a.yml", "group-grp-b.yml"]
    assert cold(client, token) == fewer


def test_compact_mode_moves_the_rules_and_back(client: TestClient) -> None:
    cpu_rules(client, GROUPS[:2])
    _, token = evaluator(client, "all", None)
    per_group = served(client, token)

    response = client.put("/api/v1/alert-templates/HighCPU", json={"threshold_mode": "compact"})
    assert response.status_code == 200, response.text
    compact = served(client, token)
    assert [f["name"] for f in compact["files"]] == ["global.yml"]
    assert cold(client, token) == compact

    response = client.put("/api/v1/alert-templates/HighCPU", json={"threshold_mode": "per_group"})
    assert response.status_code == 200, response.text
    back = served(client, token)
    assert cold(client, token) == back
    assert [f["name"] for f in back["files"]] == [f["name"] for f in per_group["files"]]


def test_a_shard_and_the_whole_fleet_share_their_groups_renders(
    client: TestClient, rendered: list[set[str]]
) -> None:
    cpu_rules(client, GROUPS)
    _, token = evaluator(client, "all", None)
    _, shard = evaluator(client, "shard-b", ["grp-b"])
    set_threshold(client, "grp-a", 91)
    rendered.clear()
    whole = served(client, token)
    assert rendered == [{"grp-a"}]
    rendered.clear()
    part = client.get("/api/v1/evaluators/shard-b/rules", headers=bearer(shard)).json()
    assert rendered == []
    assert part["files"] == [f for f in whole["files"] if f["name"] == "group-grp-b.yml"]


def test_a_rule_created_as_its_template_turns_compact_reaches_the_global_file(
    client: TestClient,
) -> None:
    """A request that read a template before another made it compact still lands its
    rule in the global file: creating a rule locks and re-reads its template first."""
    create(client, "/api/v1/groups", {"id": "grp-a", "name": "grp-a"})
    memory = {
        "name": "HighMemory",
        "query_template": 'node_memory_usage{group_id="{{.group_id}}"} > {{.threshold}}',
        "default_config": {"threshold": 90},
        "threshold_mode": "compact",
    }
    create(client, "/api/v1/alert-templates", memory)
    create(client, "/api/v1/alert-rules", {"template_id": "HighMemory", "group_id": "grp-a"})
    create(client, "/api/v1/alert-templates", CPU)
    _, token = evaluator(client, "all", None)
    factory = app_services(client).sessionmaker
    with session_scope(factory) as late:
        # This request read the template (kept in its session) while it was per group...
        seen = AlertTemplateRepository(late).get_by_ref("HighCPU")
        assert seen is not None
        assert seen.threshold_mode == "per_group"
        # ...another made it compact (no rule yet: no file changes), and the set was read.
        switched = client.put("/api/v1/alert-templates/HighCPU", json={"threshold_mode": "compact"})
        assert switched.status_code == 200, switched.text
        assert "HighCPU" not in served(client, token)["files"][0]["content"]
        alerts.create_rule(
            late, actor="test", data=AlertRuleCreate(template_id="HighCPU", group_id="grp-a")
        )
    after = served(client, token)
    assert [f["name"] for f in after["files"]] == ["global.yml"]
    assert 'aami_threshold{template="HighCPU"' in after["files"][0]["content"]
    assert cold(client, token) == after
