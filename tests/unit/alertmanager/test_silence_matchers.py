"""The silence service's matcher checks: a regex that narrows nothing, and a regex
Alertmanager refuses (its answer stood in by MockTransport; the browser test runs the real
one)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.schemas import Matcher
from aami.alertmanager.silences import matcher_problems, preview_silence
from aami.config import Settings
from aami.errors import Unavailable
from tests.support.api import app_services, error

REFUSED = '"error parsing regexp: missing closing ): `^(?:GPU(\\\\d)$`"'


def _client(seen: list[list[str]]) -> AlertmanagerClient:
    def handle(request: httpx.Request) -> httpx.Response:
        filters = request.url.params.get_list("filter")
        seen.append(filters)
        if any("(" in f and ")" not in f.partition("(")[2] for f in filters):
            return httpx.Response(400, text=REFUSED)
        return httpx.Response(200, json=[])

    return AlertmanagerClient("http://am.test", transport=httpx.MockTransport(handle))


@pytest.mark.parametrize("pattern", [".*", "^.*$", "(.*)", "(?:.*)", ".*.*", "(?s).*", ".*?"])
def test_a_regex_matching_every_value_is_refused(pattern: str) -> None:
    matcher = Matcher(name="alertname", value=pattern, is_regex=True)
    assert "matches every value" in matcher_problems(None, [matcher])[0]


@pytest.mark.parametrize(
    ("pattern", "is_equal"), [(".+", True), ("GPU.*", True), (".*x", True), (".*", False)]
)
def test_a_narrowing_regex_passes(pattern: str, is_equal: bool) -> None:
    matcher = Matcher(name="alertname", value=pattern, is_regex=True, is_equal=is_equal)
    assert matcher_problems(None, [matcher]) == {}


def test_alertmanager_judges_each_regex_in_its_own_words() -> None:
    seen: list[list[str]] = []
    matchers = [
        Matcher(name="instance", value="gpu-node-01"),
        Matcher(name="alertname", value="GPU(\\d", is_regex=True),
    ]
    problems = matcher_problems(_client(seen), matchers)
    assert problems == {
        1: "'GPU(\\\\d' is not a regular expression Alertmanager accepts: "
        "error parsing regexp: missing closing ): `GPU(\\d`"
    }
    assert seen == [['alertname=~"GPU(\\\\d"']]  # only the regex is asked about
    preview = preview_silence(_client(seen), Settings(), matchers)
    assert not preview.allowed
    assert preview.alerts == []


def test_the_api_refuses_a_bad_regex_as_invalid_not_unavailable(client: TestClient) -> None:
    seen: list[list[str]] = []
    app_services(client).alertmanager = _client(seen)
    body = {
        "matchers": [
            {"name": "instance", "value": "gpu-node-01"},
            {"name": "alertname", "value": "GPU(", "is_regex": True},
        ],
        "duration": "1h",
        "created_by": "ops",
        "comment": "test",
    }
    detail = error(client.post("/api/v1/silences", json=body), 422)
    assert detail.startswith("matchers[1]: 'GPU(' is not a regular expression"), detail


def test_an_unreachable_alertmanager_is_unavailable() -> None:
    client = AlertmanagerClient(
        "http://am.test",
        transport=httpx.MockTransport(lambda request: httpx.Response(503, text="down")),
    )
    with pytest.raises(Unavailable):
        matcher_problems(client, [Matcher(name="a", value="b.", is_regex=True)])
