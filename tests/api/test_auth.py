from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from aami.app import create_app
from aami.config import Settings
from tests.support.api import error


def _api_routes(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), path.replace("{", "").replace("}", ""))
        for path, methods in paths.items()
        if path.startswith("/api/v1")
        for method in methods
    ]


def test_every_api_route_needs_a_token(client: TestClient, anon: TestClient) -> None:
    routes = _api_routes(client)
    assert len(routes) >= 15
    for method, path in routes:
        response = anon.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(anon: TestClient) -> None:
    for header in ("Bearer wrong-token-wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "token"):
        detail = error(anon.get("/api/v1/groups", headers={"Authorization": header}), 401)
        assert "token" in detail


def test_open_endpoints(anon: TestClient) -> None:
    assert anon.get("/health").json()["status"] == "ok"
    assert anon.get("/health/live").status_code == 200
    ready = anon.get("/health/ready").json()
    assert (ready["status"], ready["database"]) == ("ok", "ok")
    assert set(ready["publishing"]) == {"prometheus"}  # the Alertmanager config is not managed
    anon.get("/api/v1/groups")
    metrics = anon.get("/metrics").text
    assert 'aami_http_requests_total{method="GET",route="/api/v1/groups",status="401"}' in metrics
    assert "aami_http_request_duration_seconds_bucket" in metrics


def test_app_refuses_to_start_without_token(database_url: str) -> None:
    with pytest.raises(ValueError, match="AAMI_ADMIN_TOKEN"):
        create_app(Settings(database_url=database_url, admin_token=None))


def test_short_token_is_refused() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        Settings(admin_token="short")


def test_unknown_route_is_json_404(client: TestClient) -> None:
    assert client.get("/api/v1/nothing-here").json()["error"] == "not_found"


def test_sd_token_reads_service_discovery_and_nothing_else(settings: Settings) -> None:
    sd_token = "prometheus-sd-token-0123456789"
    app = create_app(settings.model_copy(update={"sd_token": sd_token}))
    with TestClient(app, headers={"Authorization": f"Bearer {sd_token}"}) as prometheus:
        assert prometheus.get("/api/v1/sd/prometheus").status_code == 200
        for path in ("/api/v1/groups", "/api/v1/targets", "/api/v1/audit"):
            assert "may not" in error(prometheus.get(path), 403)
        assert prometheus.post("/api/v1/groups", json={"name": "x"}).status_code == 403
