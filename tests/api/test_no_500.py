"""Bad input never makes a 500: every write route gets malformed bodies and parameters."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

BAD_BODIES: list[Any] = [
    {},
    [],
    "text",
    12,
    None,
    {"id": None},
    {"name": 123},
    {"name": ""},
    {"name": "x" * 5000},
    {"id": "../../etc/passwd", "name": "x"},
    {"labels": "not-a-map"},
    {"config": [1, 2]},
    {"matchers": "x"},
    {"template_id": {"nested": True}},
    {"unknown_field": 1},
]


def _routes(client: TestClient) -> list[tuple[str, str, bool]]:
    """(method, path with ids that do not exist, whether it takes a body)."""
    paths = client.get("/openapi.json").json()["paths"]
    routes = []
    for path, methods in paths.items():
        if not path.startswith("/api/v1"):
            continue
        concrete = path.replace("{", "").replace("}", "")
        for method, spec in methods.items():
            if method in ("post", "put", "delete", "get"):
                routes.append((method.upper(), concrete, "requestBody" in spec))
    return routes


def test_no_route_answers_500_to_bad_input(client: TestClient) -> None:
    client.post("/api/v1/groups", json={"id": "g", "name": "g"})
    failures = []
    for method, path, has_body in _routes(client):
        bodies = BAD_BODIES if has_body else [None]
        for body in bodies:
            response = client.request(method, path, json=body)
            if response.status_code >= 500 and response.status_code != 503:
                failures.append((method, path, body, response.status_code, response.text[:200]))
            elif response.status_code >= 400:
                payload = response.json()
                assert set(payload) == {"error", "detail"}, (method, path, payload)
    for method, path, _ in _routes(client):
        if method == "GET":
            response = client.get(
                path,
                params={"page": "x", "limit": "-1", "label": "=", "config": "{bad", "state": "??"},
            )
            if response.status_code >= 500 and response.status_code != 503:
                failures.append((method, path, "params", response.status_code, response.text))
    assert failures == []
