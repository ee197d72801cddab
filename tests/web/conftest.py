"""UI fixtures: the app of tests/conftest.py with the UI installed, and a logged-in browser
stand-in that sends each form with its CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aami.app import create_app
from aami.config import Settings
from aami.web.routes import install
from tests.conftest import AUTH, TOKEN
from tests.web.browser import live as live  # the live stack of the browser tests

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Ui:
    """A logged-in session: ``post`` sends forms the way a browser does, with the token."""

    client: TestClient
    csrf: str

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any], *, csrf: bool = True) -> Any:
        body = {**data, "csrf_token": self.csrf} if csrf else dict(data)
        return self.client.post(path, data=body)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON API of the same app, with the admin token, to check what the UI did."""
        return self.client.request(method, path, headers=AUTH, **kwargs)


def login(client: TestClient, token: str = TOKEN, next_path: str = "") -> Any:
    page = client.get("/ui/login")
    assert page.status_code == 200, page.text
    return client.post(
        "/ui/login",
        data={"csrf_token": csrf_of(page.text), "token": token, "next": next_path},
    )


@pytest.fixture
def ui_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    install(app)
    return app


@pytest.fixture
def browser(ui_app: FastAPI) -> Iterator[TestClient]:
    """A client with no session, that does not follow redirects."""
    with TestClient(ui_app, follow_redirects=False) as client:
        yield client


@pytest.fixture
def ui(browser: TestClient) -> Ui:
    response = login(browser)
    assert response.status_code == 303, response.text
    dashboard = browser.get("/ui/")
    assert dashboard.status_code == 200
    return Ui(browser, csrf_of(dashboard.text))
