"""Query templates through the API: comments and parser bombs are a 422 naming
query_template at create, update and preview; a '#' inside a quoted string is fine."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from aami.alerts.rendering import MAX_NESTING, MAX_OPERATORS
from tests.support.api import create, error

PREVIEW = "/api/v1/prometheus/rules/preview"
COMMENTED = "# don't page on weekends\nnode_load1 > {{.threshold}}"
BOMBS = {
    "parentheses": "(" * 9990 + "1" + ")" * 9990,
    "operators": "1" + " + 1" * 4990,
    "calls": "abs(" * 3000 + "up" + ")" * 3000,
}


def test_comments_are_refused_at_create_update_and_preview(client: TestClient) -> None:
    detail = error(
        client.post(
            "/api/v1/alert-templates",
            json={"name": "Commented", "query_template": COMMENTED},
        ),
        422,
    )
    assert detail.startswith("query_template: '#' on line 1 starts a PromQL comment"), detail

    template = create(
        client,
        "/api/v1/alert-templates",
        {
            "name": "HashInString",
            "query_template": 'mount_status{path="/data#1"} > {{.threshold}}',
            "default_config": {"threshold": 0},
        },
    )
    detail = error(
        client.put(f"/api/v1/alert-templates/{template['id']}", json={"query_template": COMMENTED}),
        422,
    )
    assert detail.startswith("query_template: '#'"), detail
    stored = client.get(f"/api/v1/alert-templates/{template['id']}").json()
    assert stored["query_template"] == 'mount_status{path="/data#1"} > {{.threshold}}'

    preview = client.get(
        PREVIEW,
        params={"query_template": COMMENTED, "config": json.dumps({"threshold": "1 or vector(1)"})},
    )
    assert error(preview, 422).startswith("query_template: '#'")
    # A stored template whose query is replaced for the preview: the same.
    preview = client.get(
        PREVIEW, params={"template_id": "HashInString", "query_template": COMMENTED}
    )
    assert error(preview, 422).startswith("query_template: '#'")


def test_a_hash_in_a_value_or_a_quoted_string_renders(client: TestClient) -> None:
    client.post("/api/v1/groups", json={"id": "grp-1", "name": "one"}).raise_for_status()
    create(
        client,
        "/api/v1/alert-templates",
        {
            "name": "MountMissing",
            "query_template": 'mount_status{path="{{.path}}", job="a#b"} == {{.threshold}}',
            "default_config": {"path": "/", "threshold": 0},
        },
    )
    rule = create(
        client,
        "/api/v1/alert-rules",
        {"template_id": "MountMissing", "group_id": "grp-1", "config": {"path": "/data#1"}},
    )
    assert rule["rendered"]["expr"] == 'mount_status{path="/data#1", job="a#b"} == 0'


def test_an_injected_value_is_refused_naming_its_key(client: TestClient) -> None:
    create(
        client,
        "/api/v1/alert-templates",
        {"name": "Load", "query_template": "node_load1 > {{.threshold}}"},
    )
    detail = error(
        client.post(
            "/api/v1/alert-rules",
            json={"template_id": "Load", "config": {"threshold": "1 or vector(1)"}},
        ),
        422,
    )
    assert "config key 'threshold'" in detail, detail
    preview = client.get(
        PREVIEW, params={"template_id": "Load", "config": '{"threshold": "1 or vector(1)"}'}
    ).json()
    assert preview["valid"] is False
    assert "config key 'threshold'" in preview["error"]


@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_parser_bombs_are_a_422_and_the_server_answers_on(client: TestClient, bomb: str) -> None:
    detail = error(client.get(PREVIEW, params={"query_template": bomb}), 422)
    assert detail.startswith("query_template: "), detail
    assert f"more than {MAX_NESTING} deep" in detail or f"limit of {MAX_OPERATORS}" in detail
    detail = error(
        client.post("/api/v1/alert-templates", json={"name": "Bomb", "query_template": bomb}), 422
    )
    assert detail.startswith("query_template: "), detail
    assert client.get("/health").status_code == 200


def test_a_deeply_nested_config_is_a_422(client: TestClient) -> None:
    detail = error(client.get(PREVIEW, params={"query_template": "up", "config": "[" * 5000}), 422)
    assert detail.startswith("config: "), detail
