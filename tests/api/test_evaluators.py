"""Evaluators through the API: declaring them, their tokens' reach, the rule set each
is served (and long-polled), their reports, status, and service discovery per shard."""

from __future__ import annotations

import threading
import time
from typing import Any

import yaml
from fastapi.testclient import TestClient

from tests.support.api import create, error

CPU = {
    "name": "HighCPU",
    "query_template": 'node_cpu_usage{group_id="{{.group_id}}"} > {{.threshold}}',
    "default_config": {"threshold": 80},
}


def fleet(client: TestClient) -> None:
    for group in ("grp-a", "grp-b"):
        create(client, "/api/v1/groups", {"id": group, "name": group})
    create(client, "/api/v1/alert-templates", CPU)
    for group in ("grp-a", "grp-b"):
        create(client, "/api/v1/alert-rules", {"template_id": "HighCPU", "group_id": group})
    for name, groups in (
        ("node-a", ["grp-a"]),
        ("node-b", ["grp-b"]),
        ("node-ab", ["grp-a", "grp-b"]),
    ):
        create(
            client,
            "/api/v1/targets",
            {
                "hostname": name,
                "ip_address": "10.0.0.1",
                "group_ids": groups,
                "exporters": [{"type": "node_exporter"}],
            },
        )


def evaluator(
    client: TestClient, name: str, groups: list[str] | None
) -> tuple[dict[str, Any], str]:
    body = {"name": name, "kind": "prometheus", "url": "http://10.1.0.1:9090", "groups": groups}
    made = create(client, "/api/v1/evaluators", body)
    return made, made.pop("token")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_shard_is_served_the_global_rules_and_its_groups_only(client: TestClient) -> None:
    fleet(client)
    _, token = evaluator(client, "shard-a", ["grp-a"])
    response = client.get("/api/v1/evaluators/shard-a/rules", headers=bearer(token))
    assert response.status_code == 200
    body = response.json()
    assert response.headers["etag"] == f'"{body["revision"]}"'
    assert [f["name"] for f in body["files"]] == ["group-grp-a.yml"]
    rules = yaml.safe_load(body["files"][0]["content"])["groups"][0]["rules"]
    assert rules[0]["record"] == "aami_rule_group_info"
    assert 'group_id="grp-a"' in rules[1]["expr"]
    # The same bytes the local publisher writes for that scope.
    client.post("/api/v1/prometheus/rules/regenerate", params={"wait": 20})
    files = client.get("/api/v1/prometheus/rules/files").json()
    assert {f["name"]: f["sha256"] for f in files}["group-grp-a.yml"] == body["files"][0]["sha256"]


def test_the_rule_set_revision_follows_the_rules(client: TestClient) -> None:
    fleet(client)
    _, token = evaluator(client, "shard-a", ["grp-a"])
    _, token_b = evaluator(client, "shard-b", ["grp-b"])
    first = client.get("/api/v1/evaluators/shard-a/rules", headers=bearer(token))
    other = client.get("/api/v1/evaluators/shard-b/rules", headers=bearer(token_b))
    etag = first.headers["etag"]
    again = client.get(
        "/api/v1/evaluators/shard-a/rules", headers={**bearer(token), "If-None-Match": etag}
    )
    assert again.status_code == 304
    rules = client.get("/api/v1/alert-rules", params={"group_id": "grp-b"}).json()["data"]
    client.put(f"/api/v1/alert-rules/{rules[0]['id']}", json={"config": {"threshold": 90}})
    # grp-b changed: shard-a's set is the same, shard-b's is not.
    assert (
        client.get(
            "/api/v1/evaluators/shard-a/rules", headers={**bearer(token), "If-None-Match": etag}
        ).status_code
        == 304
    )
    changed = client.get("/api/v1/evaluators/shard-b/rules", headers=bearer(token_b))
    assert changed.json()["revision"] != other.json()["revision"]
    assert "> 90" in changed.json()["files"][0]["content"]


def test_a_long_poll_returns_when_the_set_changes(client: TestClient) -> None:
    fleet(client)
    _, token = evaluator(client, "shard-a", ["grp-a"])
    etag = client.get("/api/v1/evaluators/shard-a/rules", headers=bearer(token)).headers["etag"]
    answers: list[Any] = []

    def poll() -> None:
        started = time.monotonic()
        response = client.get(
            "/api/v1/evaluators/shard-a/rules",
            params={"wait": 30},
            headers={**bearer(token), "If-None-Match": etag},
        )
        answers.append((response, time.monotonic() - started))

    waiter = threading.Thread(target=poll)
    waiter.start()
    rules = client.get("/api/v1/alert-rules", params={"group_id": "grp-a"}).json()["data"]
    client.put(f"/api/v1/alert-rules/{rules[0]['id']}", json={"config": {"threshold": 70}})
    waiter.join(timeout=40)
    (response, took) = answers[0]
    assert response.status_code == 200
    assert "> 70" in response.json()["files"][0]["content"]
    assert took < 25  # it answered on the change, not at the end of its wait


def test_a_long_poll_with_nothing_new_ends_in_304(client: TestClient) -> None:
    fleet(client)
    _, token = evaluator(client, "shard-a", ["grp-a"])
    etag = client.get("/api/v1/evaluators/shard-a/rules", headers=bearer(token)).headers["etag"]
    started = time.monotonic()
    response = client.get(
        "/api/v1/evaluators/shard-a/rules",
        params={"wait": 1},
        headers={**bearer(token), "If-None-Match": etag},
    )
    assert response.status_code == 304
    assert time.monotonic() - started >= 1


def test_an_evaluator_token_reaches_its_own_evaluator_only(
    client: TestClient, anon: TestClient
) -> None:
    fleet(client)
    _, token_a = evaluator(client, "shard-a", ["grp-a"])
    evaluator(client, "shard-b", ["grp-b"])
    a = bearer(token_a)
    assert "evaluator 'shard-b'" in error(
        anon.get("/api/v1/evaluators/shard-b/rules", headers=a), 403
    )
    report = {"loaded_revision": None, "error": None}
    assert anon.post("/api/v1/evaluators/shard-b/status", json=report, headers=a).status_code == 403
    for path in ("/api/v1/evaluators", "/api/v1/groups", "/api/v1/alert-rules"):
        assert anon.get(path, headers=a).status_code == 403
    assert anon.get("/api/v1/sd/prometheus", headers=a).status_code == 403
    assert anon.get("/api/v1/sd/prometheus?evaluator=shard-b", headers=a).status_code == 403
    assert anon.get("/api/v1/sd/prometheus?evaluator=shard-a", headers=a).status_code == 200
    assert anon.get("/api/v1/targets/x/checks", headers=a).status_code in (403, 404)
    # A rotated token stops working; the new one works.
    rotated = client.post("/api/v1/evaluators/shard-a/token")
    assert rotated.status_code == 200
    new = rotated.json()["token"]
    assert anon.get("/api/v1/evaluators/shard-a/rules", headers=a).status_code == 401
    assert anon.get("/api/v1/evaluators/shard-a/rules", headers=bearer(new)).status_code == 200


def test_the_token_is_shown_once_and_never_again(client: TestClient) -> None:
    _made, token = evaluator(client, "shard-a", None)
    assert token.startswith("aami_ev_")
    listed = client.get("/api/v1/evaluators").text + client.get("/api/v1/evaluators/shard-a").text
    audit = client.get("/api/v1/audit", params={"entity_type": "evaluator"}).text
    assert token not in listed + audit
    assert "token_hash" not in listed + audit


def test_reports_drive_in_sync_and_stale(client: TestClient) -> None:
    fleet(client)
    _, token = evaluator(client, "prom-a", None)
    shown = client.get("/api/v1/evaluators/prom-a").json()
    assert shown["in_sync"] is False
    assert shown["stale"] is True
    revision = shown["desired_revision"]
    reported = client.post(
        "/api/v1/evaluators/prom-a/status",
        json={"loaded_revision": revision, "error": None},
        headers=bearer(token),
    )
    assert reported.status_code == 200, reported.text
    assert reported.json()["in_sync"] is True
    assert reported.json()["stale"] is False
    # A change makes it out of sync until it reports the new revision.
    rules = client.get("/api/v1/alert-rules").json()["data"]
    client.put(f"/api/v1/alert-rules/{rules[0]['id']}", json={"config": {"threshold": 60}})
    after = client.get("/api/v1/evaluators/prom-a").json()
    assert after["in_sync"] is False
    assert after["desired_revision"] != revision
    assert after["loaded_revision"] == revision
    # An error keeps it out of sync even at the right revision.
    failing = client.post(
        "/api/v1/evaluators/prom-a/status",
        json={"loaded_revision": after["desired_revision"], "error": "reload refused"},
        headers=bearer(token),
    ).json()
    assert failing["in_sync"] is False
    assert failing["report_error"] == "reload refused"


def test_the_local_prometheus_is_listed_and_reserved(client: TestClient) -> None:
    listed = client.get("/api/v1/evaluators").json()["data"]
    assert listed[0]["name"] == "local"
    assert listed[0]["builtin"] is True
    body = {"name": "local", "kind": "prometheus", "url": "http://x:9090"}
    assert "AAMI's own Prometheus" in error(client.post("/api/v1/evaluators", json=body), 409)
    assert error(
        client.post("/api/v1/evaluators/local/status", json={"loaded_revision": None}), 422
    )


def test_pages_hold_limit_items_local_first_and_each_once(client: TestClient) -> None:
    for name in ("prom-a", "prom-b", "prom-c"):
        evaluator(client, name, None)
    for limit, pages in ((1, 4), (2, 2), (3, 2), (50, 1)):
        seen = []
        for number in range(1, pages + 2):
            body = client.get("/api/v1/evaluators", params={"page": number, "limit": limit})
            page = body.json()
            assert page["pagination"]["total"] == 4
            assert page["pagination"]["total_pages"] == pages
            assert len(page["data"]) <= limit
            seen += [item["name"] for item in page["data"]]
        assert seen == ["local", "prom-a", "prom-b", "prom-c"], limit


def test_bad_input_is_refused_and_changes_nothing(client: TestClient) -> None:
    fleet(client)
    cases = [
        ({"name": "Bad Name", "url": "http://x:9090"}, "name"),
        ({"name": "e1", "url": "file:///etc/passwd"}, "url"),
        ({"name": "e1", "url": "http://user:pw@x:9090"}, "url"),
        ({"name": "e1", "url": "http://x:9090", "kind": "thanos"}, "kind"),
        ({"name": "e1", "url": "http://x:9090", "groups": ["nope"]}, "nope"),
        ({"name": "e1", "url": "http://x:9090", "groups": []}, "groups"),
        ({"name": "e1", "url": "http://x:9090", "groups": ["grp-a", "grp-a"]}, "twice"),
        ({"name": "e1", "url": "http://x:9090", "token": "mine"}, "token"),
    ]
    for body, word in cases:
        detail = error(client.post("/api/v1/evaluators", json=body), 422)
        assert word in detail, (body, detail)
    assert client.get("/api/v1/evaluators").json()["pagination"]["total"] == 1  # local only
    _, token = evaluator(client, "e1", ["grp-a"])
    for report in (
        {"loaded_revision": "../../etc"},
        {"loaded_revision": "ab" * 32, "error": "x" * 2001},
        {"loaded_revision": "ab" * 32, "extra": 1},
    ):
        response = client.post("/api/v1/evaluators/e1/status", json=report, headers=bearer(token))
        assert response.status_code == 422
    assert client.get("/api/v1/evaluators/e1").json()["last_report_at"] is None
    assert error(client.put("/api/v1/evaluators/e1", json={"groups": ["nope"]}), 422)
    assert client.get("/api/v1/evaluators/e1").json()["groups"] == ["grp-a"]


def test_service_discovery_per_evaluator(client: TestClient) -> None:
    fleet(client)
    evaluator(client, "shard-a", ["grp-a"])
    evaluator(client, "shard-b", ["grp-b"])
    evaluator(client, "all", None)

    def hosts(name: str) -> set[str]:
        entries = client.get("/api/v1/sd/prometheus", params={"evaluator": name}).json()
        return {entry["labels"]["instance"] for entry in entries}

    assert hosts("shard-a") == {"node-a", "node-ab"}
    assert hosts("shard-b") == {"node-b", "node-ab"}
    assert hosts("all") == hosts("local") == {"node-a", "node-b", "node-ab"}
    # Moving the shard's groups moves its targets.
    client.put("/api/v1/evaluators/shard-a", json={"groups": ["grp-b"]})
    assert hosts("shard-a") == {"node-b", "node-ab"}
    assert error(client.get("/api/v1/sd/prometheus", params={"evaluator": "nope"}), 404)
    assert error(client.get("/api/v1/sd/prometheus", params={"evaluator": "../x"}), 422)


def metric(client: TestClient, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_metrics_say_which_evaluator_is_out_of_sync(client: TestClient) -> None:
    fleet(client)
    _, token = evaluator(client, "prom-a", None)
    assert metric(client, "aami_evaluator_in_sync", evaluator="prom-a", kind="prometheus") == 0
    assert metric(client, "aami_evaluator_stale", evaluator="prom-a") == 1
    revision = client.get("/api/v1/evaluators/prom-a").json()["desired_revision"]
    client.post(
        "/api/v1/evaluators/prom-a/status",
        json={"loaded_revision": revision},
        headers=bearer(token),
    )
    assert metric(client, "aami_evaluator_in_sync", evaluator="prom-a", kind="prometheus") == 1
    assert metric(client, "aami_evaluator_stale", evaluator="prom-a") == 0
    assert (
        metric(client, "aami_evaluator_last_report_timestamp_seconds", evaluator="prom-a") or 0
    ) > time.time() - 60


def test_loaded_asks_the_evaluator_itself(client: TestClient) -> None:
    fleet(client)
    body = {"name": "gone", "kind": "prometheus", "url": "http://127.0.0.1:9", "groups": None}
    create(client, "/api/v1/evaluators", body)
    answer = client.get("/api/v1/evaluators/gone/loaded")
    assert answer.status_code == 200, answer.text
    assert answer.json()["reachable"] is False
    assert answer.json()["in_sync"] is False
    assert answer.json()["error"]
