"""Concurrent writes to one object leave an audit trail that chains, on SQLite and PostgreSQL.

Each record's ``before`` must be the previous record's ``after`` (in id order, which is
commit order for one object), so the snapshots must be taken under the write's row lock.
The threads use their own ``TestClient`` on the shared app, so requests really overlap:
each runs in its own event loop and the sync endpoints in their thread pools.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import AUTH
from tests.support.api import create

THREADS = 8
ROUNDS = 10

Request = Callable[[TestClient], Any]  # returns the response


def _all_at_once(client: TestClient, jobs: list[list[Request]]) -> list[list[int]]:
    """Run each list of requests in its own thread, all starting together; return statuses."""
    barrier = threading.Barrier(len(jobs))
    statuses: list[list[int]] = [[] for _ in jobs]
    failures: list[BaseException] = []

    def run(index: int) -> None:
        own = TestClient(client.app, headers=AUTH, raise_server_exceptions=False)
        try:
            barrier.wait(timeout=30)
            for request in jobs[index]:
                statuses[index].append(request(own).status_code)
        except BaseException as exc:  # re-raised in the test's thread below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    if failures:
        raise failures[0]
    return statuses


def _trail(client: TestClient, entity_type: str, entity_id: str) -> list[dict[str, Any]]:
    """The object's audit records, oldest first."""
    response = client.get(
        "/api/v1/audit", params={"entity_type": entity_type, "entity_id": entity_id, "limit": 1000}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pagination"]["total"] == len(body["data"])
    return sorted(body["data"], key=lambda record: record["id"])


def _assert_chains(trail: list[dict[str, Any]]) -> None:
    """Create first, then each record starts where the previous one ended."""
    assert trail[0]["action"] == "create"
    assert trail[0]["before"] is None
    breaks = [
        (previous["id"], record["id"])
        for previous, record in itertools.pairwise(trail)
        if record["before"] != previous["after"]
    ]
    assert not breaks, f"{len(breaks)} of {len(trail) - 1} records do not chain: {breaks[:5]}"


def _updates(
    client: TestClient, path: str, body: Callable[[int, int], dict[str, Any]]
) -> list[int]:
    """THREADS writers PUT ``body(thread, round)`` to ``path`` ROUNDS times each, at once."""

    def put(json: dict[str, Any]) -> Request:
        return lambda own: own.put(path, json=json)

    jobs = [[put(body(thread, round_)) for round_ in range(ROUNDS)] for thread in range(THREADS)]
    return [status for statuses in _all_at_once(client, jobs) for status in statuses]


def test_concurrent_group_updates_chain(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "g", "name": "gpu"})

    statuses = _updates(
        client, "/api/v1/groups/g", lambda thread, round_: {"description": f"{thread}-{round_}"}
    )

    assert statuses == [200] * (THREADS * ROUNDS)
    trail = _trail(client, "group", "g")
    _assert_chains(trail)
    updates = trail[1:]
    assert [r["action"] for r in updates] == ["update"] * (THREADS * ROUNDS)
    assert {r["after"]["description"] for r in updates} == {
        f"{t}-{r}" for t in range(THREADS) for r in range(ROUNDS)
    }
    assert trail[-1]["after"] == client.get("/api/v1/groups/g").json()


def test_concurrent_target_updates_chain(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "g", "name": "gpu"})
    create(
        client,
        "/api/v1/targets",
        {
            "id": "n1",
            "hostname": "n1",
            "ip_address": "10.0.0.1",
            "group_ids": ["g"],
            "exporters": [{}],
        },
    )

    statuses = _updates(
        client,
        "/api/v1/targets/n1",
        lambda thread, round_: {"labels": {"writer": str(thread), "round": str(round_)}},
    )

    assert statuses == [200] * (THREADS * ROUNDS)
    trail = _trail(client, "target", "n1")
    _assert_chains(trail)
    assert len(trail) == 1 + THREADS * ROUNDS
    assert all(r["action"] == "update" for r in trail[1:])
    assert trail[-1]["after"] == client.get("/api/v1/targets/n1").json()


def test_concurrent_script_policy_updates_chain(client: TestClient) -> None:
    create(
        client,
        "/api/v1/script-templates",
        {"id": "mount", "name": "mount-check", "script_content": "echo ok"},
    )
    create(
        client, "/api/v1/script-policies", {"id": "p", "template_id": "mount", "scope": "global"}
    )

    statuses = _updates(
        client,
        "/api/v1/script-policies/p",
        lambda thread, round_: {"priority": thread * ROUNDS + round_},
    )

    assert statuses == [200] * (THREADS * ROUNDS)
    trail = _trail(client, "script_policy", "p")
    _assert_chains(trail)
    assert sorted(r["after"]["priority"] for r in trail[1:]) == list(range(THREADS * ROUNDS))
    assert trail[-1]["after"] == client.get("/api/v1/script-policies/p").json()


@pytest.mark.parametrize("deleter_waits_for", [0, ROUNDS // 2])
def test_concurrent_update_and_delete_chain_and_end_in_the_delete(
    client: TestClient, deleter_waits_for: int
) -> None:
    create(client, "/api/v1/groups", {"id": "g", "name": "gpu"})
    updated = threading.Event()
    count = {"updates": 0}
    lock = threading.Lock()

    def update(thread: int, round_: int) -> Request:
        def request(own: TestClient) -> Any:
            response = own.put("/api/v1/groups/g", json={"description": f"{thread}-{round_}"})
            with lock:
                count["updates"] += 1
                if count["updates"] >= deleter_waits_for:
                    updated.set()
            return response

        return request

    def delete(own: TestClient) -> Any:
        updated.wait(timeout=30)
        return own.delete("/api/v1/groups/g")

    if deleter_waits_for == 0:
        updated.set()
    jobs: list[list[Request]] = [
        [update(thread, round_) for round_ in range(ROUNDS)] for thread in range(THREADS - 1)
    ]
    jobs.append([delete])
    statuses = _all_at_once(client, jobs)

    assert statuses[-1] == [204]
    update_statuses = [status for job in statuses[:-1] for status in job]
    # An update that loses the race to the delete is a 404, never a 500.
    assert set(update_statuses) <= {200, 404}, update_statuses
    trail = _trail(client, "group", "g")
    _assert_chains(trail)
    assert trail[-1]["action"] == "delete"
    assert trail[-1]["after"] is None
    assert [r["action"] for r in trail[1:-1]] == ["update"] * update_statuses.count(200)
    assert client.get("/api/v1/groups/g").status_code == 404


def test_exporter_updates_racing_their_targets_delete_fail_cleanly(client: TestClient) -> None:
    # Deleting a target deletes its exporters; the exporter writers must queue behind it
    # (404 afterwards), not deadlock with it.
    targets = [f"n{i}" for i in range(THREADS)]
    exporters = {}
    for hostname in targets:
        target = create(
            client,
            "/api/v1/targets",
            {"id": hostname, "hostname": hostname, "ip_address": "10.0.0.1", "exporters": [{}]},
        )
        exporters[hostname] = target["exporters"][0]["id"]

    def toggle(hostname: str, round_: int) -> Request:
        return lambda own: own.put(
            f"/api/v1/exporters/{exporters[hostname]}", json={"enabled": round_ % 2 == 0}
        )

    def delete(hostname: str) -> Request:
        return lambda own: own.delete(f"/api/v1/targets/{hostname}")

    jobs: list[list[Request]] = [
        [toggle(hostname, round_) for round_ in range(ROUNDS)] for hostname in targets
    ]
    jobs += [[delete(hostname)] for hostname in targets]
    statuses = _all_at_once(client, jobs)

    assert statuses[THREADS:] == [[204]] * THREADS
    assert {status for job in statuses[:THREADS] for status in job} <= {200, 404}, statuses
    for hostname in targets:
        trail = _trail(client, "exporter", exporters[hostname])
        assert all(r["action"] == "update" for r in trail)
        for previous, record in itertools.pairwise(trail):
            assert record["before"] == previous["after"]
