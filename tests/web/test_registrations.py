"""The Registrations page: queued node registrations, approved or rejected through forms."""

from __future__ import annotations

import html
from typing import Any

from fastapi.testclient import TestClient

from tests.web.conftest import Ui


def _queue(ui: Ui) -> tuple[dict[str, Any], str]:
    """gpu-node-01 registered from 10.0.0.1, then claimed from 10.6.6.6 with another group's
    bootstrap token (queued); returns the 202 answer and the real node's token."""
    for group in ("grp-a", "grp-b"):
        assert ui.api("POST", "/api/v1/groups", json={"id": group, "name": group}).is_success
    tokens = {}
    for group in ("grp-a", "grp-b"):
        answer = ui.api(
            "POST",
            "/api/v1/bootstrap-tokens",
            json={"name": f"token-{group}", "group_id": group, "allowed_labels": ["rack"]},
        )
        tokens[group] = answer.json()["token"]

    def register(address: str, token: str, **extra: Any) -> Any:
        node = TestClient(ui.client.app, client=(address, 40000))
        return node.post(
            "/api/v1/bootstrap/register",
            json={"hostname": "gpu-node-01", "ip_address": address, **extra},
            headers={"Authorization": f"Bearer {token}"},
        )

    first = register("10.0.0.1", tokens["grp-a"])
    assert first.status_code == 201, first.text
    queued = register("10.6.6.6", tokens["grp-b"], labels={"rack": "r9"})
    assert queued.status_code == 202, queued.text
    return queued.json(), first.json()["node_token"]


def _poll(ui: Ui, queued: dict[str, Any]) -> Any:
    return TestClient(ui.client.app).get(
        queued["poll_url"], headers={"Authorization": f"Bearer {queued['poll_token']}"}
    )


def test_empty_queue(ui: Ui) -> None:
    response = ui.get("/ui/registrations")
    assert response.status_code == 200, response.text
    assert "No registration waits for approval." in response.text
    assert 'href="/ui/registrations" aria-current="page"' in response.text


def test_the_page_shows_what_approving_would_change_and_approves(ui: Ui) -> None:
    queued, _ = _queue(ui)
    registration_id = queued["registration_id"]
    page = html.unescape(ui.get("/ui/registrations").text)
    assert registration_id in page
    assert "10.0.0.1</code> → <code>10.6.6.6" in page
    assert "+ <strong>grp-b</strong>" in page
    assert "carries no node_token" in page
    assert "token-grp-b" in page

    response = ui.post(f"/ui/registrations/{registration_id}/approve", {})
    assert response.status_code == 200, response.text
    assert f"Approved {registration_id}: gpu-node-01 is target" in response.text
    assert "No registration waits for approval." in response.text
    target = ui.api("GET", "/api/v1/targets/gpu-node-01").json()
    assert target["ip_address"] == "10.6.6.6"
    assert target["group_ids"] == ["grp-a", "grp-b"]
    assert target["labels"] == {"rack": "r9"}
    assert _poll(ui, queued).json()["status"] == "approved"
    audit = ui.api("GET", "/api/v1/audit", params={"entity_type": "registration"}).json()
    assert {"admin (web)"} <= {r["actor"] for r in audit["data"]}

    again = ui.post(f"/ui/registrations/{registration_id}/approve", {})
    assert again.status_code == 409
    assert "is collected, not pending" in html.unescape(again.text)


def test_reject_with_a_reason_changes_nothing(ui: Ui) -> None:
    queued, node_token = _queue(ui)
    before = ui.api("GET", "/api/v1/targets/gpu-node-01").json()
    response = ui.post(
        f"/ui/registrations/{queued['registration_id']}/reject", {"reason": "unknown host"}
    )
    assert response.status_code == 200, response.text
    assert f"Rejected {queued['registration_id']} (gpu-node-01)." in response.text
    assert ui.api("GET", "/api/v1/targets/gpu-node-01").json() == before
    refused = _poll(ui, queued)
    assert refused.status_code == 403
    assert "rejected by admin (web): unknown host" in refused.json()["detail"]
    checks = TestClient(ui.client.app).get(
        "/api/v1/checks/target/gpu-node-01", headers={"Authorization": f"Bearer {node_token}"}
    )
    assert checks.status_code == 200


def test_decisions_need_the_csrf_token_and_a_login(ui: Ui, browser: TestClient) -> None:
    queued, _ = _queue(ui)
    path = f"/ui/registrations/{queued['registration_id']}/approve"
    assert ui.post(path, {}, csrf=False).status_code == 403
    assert ui.api("GET", "/api/v1/targets/gpu-node-01").json()["ip_address"] == "10.0.0.1"
    assert _poll(ui, queued).json()["status"] == "pending"
    browser.cookies.clear()
    response = browser.get("/ui/registrations")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login")
    assert browser.post(path, data={}).status_code == 303
    assert _poll(ui, queued).json()["status"] == "pending"


def test_an_unknown_registration_is_a_404_page(ui: Ui) -> None:
    response = ui.post("/ui/registrations/reg-nope/reject", {})
    assert response.status_code == 404
    assert "registration 'reg-nope' does not exist" in html.unescape(response.text)
