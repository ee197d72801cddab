"""``q`` on the lists: a case-insensitive substring of the fields the UI's filter box
searches, labels as ``key=value``, matched and paged in SQL (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from aami.config import Settings
from aami.db.session import make_engine
from aami.groups.models import Group
from tests.support.api import create, error


def _names(client: TestClient, path: str, key: str = "name", **params: Any) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [row[key] for row in response.json()["data"]]


def test_groups_by_any_part_of_id_name_description_or_labels(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "prod", "name": "Production", "labels": {"env": "p"}})
    create(
        client,
        "/api/v1/groups",
        {"id": "lab", "name": "lab", "description": "GPU test bench", "labels": {"tier": "x"}},
    )
    create(client, "/api/v1/groups", {"id": "pct", "name": "100%_done"})
    assert _names(client, "/api/v1/groups", q="PRODUCTION") == ["Production"]
    assert _names(client, "/api/v1/groups", q="gpu test") == ["lab"]
    assert _names(client, "/api/v1/groups", q="env=p") == ["Production"]
    assert _names(client, "/api/v1/groups", q="TIER=X") == ["lab"]
    assert _names(client, "/api/v1/groups", q="b") == ["lab"]  # "lab" and its description
    # % and _ are literal, not LIKE wildcards
    assert _names(client, "/api/v1/groups", q="0%_") == ["100%_done"]
    assert _names(client, "/api/v1/groups", q="%") == ["100%_done"]
    assert _names(client, "/api/v1/groups", q="_") == ["100%_done"]
    assert _names(client, "/api/v1/groups", q="nothing") == []
    assert len(_names(client, "/api/v1/groups", q="")) == 3  # empty is no filter
    # with the other filters, and paged
    assert _names(client, "/api/v1/groups", q="p", label="env=p") == ["Production"]
    page = client.get("/api/v1/groups", params={"q": "o", "limit": 1, "page": 2}).json()
    assert page["pagination"] == {"page": 2, "limit": 1, "total": 2, "total_pages": 2}
    assert [g["id"] for g in page["data"]] == ["prod"]


def test_labels_read_as_the_ui_writes_them(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "g", "name": "g", "labels": {"a": "1", "b": "2"}})
    # the entries joined by a space, in the order they were given, like the UI's "a=1 b=2"
    assert _names(client, "/api/v1/groups", q="a=1 b=2") == ["g"]
    assert _names(client, "/api/v1/groups", q="1 b") == ["g"]
    assert _names(client, "/api/v1/groups", q="a=2") == []


def test_label_filter_is_exact(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "a", "name": "a", "labels": {"env": "prod"}})
    create(client, "/api/v1/groups", {"id": "b", "name": "b", "labels": {"env": "production"}})
    create(client, "/api/v1/groups", {"id": "c", "name": "c", "labels": {"zone": "prod"}})
    assert _names(client, "/api/v1/groups", label="env=prod") == ["a"]
    assert _names(client, "/api/v1/groups", label="env=") == []
    assert _names(client, "/api/v1/groups", label='we"ird=prod') == []
    assert _names(client, "/api/v1/groups", label="env=prod", limit=1) == ["a"]


def test_targets_by_any_part_of_id_hostname_address_or_labels(client: TestClient) -> None:
    create(client, "/api/v1/groups", {"id": "prod", "name": "prod"})
    for n, rack in ((1, "r7"), (2, "r8")):
        create(
            client,
            "/api/v1/targets",
            {
                "id": f"t{n}",
                "hostname": f"gpu-node-0{n}",
                "ip_address": f"10.0.0.{n}",
                "group_ids": ["prod"],
                "labels": {"rack": rack},
            },
        )
    path = "/api/v1/targets"
    assert _names(client, path, "hostname", q="GPU-NODE") == ["gpu-node-01", "gpu-node-02"]
    assert _names(client, path, "hostname", q="rack=r8") == ["gpu-node-02"]
    assert _names(client, path, "hostname", q="10.0.0.1") == ["gpu-node-01"]
    assert _names(client, path, "hostname", q="t2") == ["gpu-node-02"]
    assert _names(client, path, "hostname", q="node", label="rack=r7") == ["gpu-node-01"]
    assert _names(client, path, "hostname", q="node", group_id="prod", status="active") == [
        "gpu-node-01",
        "gpu-node-02",
    ]


def test_templates_by_their_fields(client: TestClient) -> None:
    create(
        client,
        "/api/v1/alert-templates",
        {
            "name": "HighLoad",
            "description": "Load is high",
            "query_template": "node_load1 > {{.threshold}}",
            "default_config": {"threshold": 4},
            "labels": {"team": "infra"},
        },
    )
    path = "/api/v1/alert-templates"
    for q in ("highload", "LOAD IS", "node_load1", "team=infra"):
        assert _names(client, path, q=q) == ["HighLoad"], q
    assert _names(client, path, q="disk") == []

    create(
        client,
        "/api/v1/script-templates",
        {
            "name": "mount-check",
            "script_type": "filesystem",
            "description": "Mounts present",
            "language": "python",
            "script_content": "print('ok')\n",
        },
    )
    path = "/api/v1/script-templates"
    for q in ("MOUNT", "filesys", "present", "pyth"):
        assert _names(client, path, q=q) == ["mount-check"], q
    assert _names(client, path, q="print") == []  # the script itself is not searched


@pytest.mark.parametrize(
    "path",
    ["/api/v1/groups", "/api/v1/targets", "/api/v1/alert-templates", "/api/v1/script-templates"],
)
def test_q_is_bounded_and_has_no_control_characters(client: TestClient, path: str) -> None:
    error(client.get(path, params={"q": "x" * 201}), 422)
    error(client.get(path, params={"q": "a\x00b"}), 422)
    assert client.get(path, params={"q": "x" * 200}).status_code == 200


def test_nothing_stops_at_twenty_thousand_rows(client: TestClient, settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(
            insert(Group),
            [
                {"id": f"g{n:05d}", "name": f"group {n:05d}", "description": "", "labels": {}}
                for n in range(20_050)
            ],
        )
        connection.execute(
            insert(Group),
            [{"id": "zz-last", "name": "needle", "description": "", "labels": {"k": "v"}}],
        )
    engine.dispose()
    assert _names(client, "/api/v1/groups", q="NEEDLE") == ["needle"]
    assert _names(client, "/api/v1/groups", q="k=v") == ["needle"]
    page = client.get("/api/v1/groups", params={"q": "group 2", "limit": 20, "page": 3}).json()
    assert page["pagination"] == {"page": 3, "limit": 20, "total": 50, "total_pages": 3}
    assert [g["id"] for g in page["data"]] == [f"g{n}" for n in range(20_040, 20_050)]
