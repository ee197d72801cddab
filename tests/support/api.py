"""Small helpers for API tests."""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient

from aami.api.state import AppServices, services


def create(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST and insist on 201."""
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def error(response: Any, status: int) -> str:
    """Insist on an error response of this status in our shape; return its detail."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert body["detail"], body
    return str(body["detail"])


def app_services(client: TestClient | FastAPI) -> AppServices:
    """The services of the app behind a test client (or of an app)."""
    app = client if isinstance(client, FastAPI) else cast(FastAPI, client.app)
    return services(app)
