"""The AAMI client against httpx.MockTransport: ETag, long-poll, errors, reports."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from aami.rulesync.client import (
    AamiClient,
    AamiRejected,
    AamiUnreachable,
    BadResponse,
)
from tests.unit.rulesync.support import AAMI_URL, TOKEN, FakeAami, rule_file, rule_set_body


def _client(handler: httpx.MockTransport) -> AamiClient:
    return AamiClient(AAMI_URL, "prom-a", lambda: TOKEN, transport=handler)


def test_fetch_then_304_for_the_same_etag() -> None:
    aami = FakeAami(rule_set_body({"global.yml": rule_file("global", 1)}))
    client = _client(httpx.MockTransport(aami.handle))
    rule_set = client.fetch(None)
    assert rule_set is not None
    assert rule_set.revision == aami.revision
    assert rule_set.kind == "prometheus"
    assert [f.name for f in rule_set.files] == ["global.yml"]
    assert client.fetch(rule_set.revision, wait=20) is None
    poll = aami.requests[-1]
    assert poll.headers["If-None-Match"] == f'"{aami.revision}"'
    assert poll.url.params["wait"] == "20"
    # The read timeout covers the time AAMI may hold the request.
    assert poll.extensions["timeout"]["read"] >= 20


def test_no_etag_means_no_long_poll() -> None:
    aami = FakeAami(rule_set_body({}))
    _client(httpx.MockTransport(aami.handle)).fetch(None, wait=30)
    assert "wait" not in aami.requests[-1].url.params


def test_a_wait_beyond_60_is_capped() -> None:
    aami = FakeAami(rule_set_body({}))
    _client(httpx.MockTransport(aami.handle)).fetch("0" * 64, wait=600)
    assert aami.requests[-1].url.params["wait"] == "60"


def test_content_that_does_not_match_its_sha256_is_a_bad_response() -> None:
    body = rule_set_body({"global.yml": "a"})
    body["files"][0]["content"] = "b"
    client = _client(httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    with pytest.raises(BadResponse, match="sha256"):
        client.fetch(None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "prometheus", "revision": "x", "files": []}, "revision"),
        ({"kind": "prometheus", "revision": "a" * 64, "files": {}}, "not a list"),
        ({"revision": "a" * 64, "files": []}, "kind"),
    ],
)
def test_malformed_rule_sets(body: dict[str, object], message: str) -> None:
    client = _client(httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    with pytest.raises(BadResponse, match=message):
        client.fetch(None)


def test_a_304_without_an_etag_is_a_bad_response() -> None:
    client = _client(httpx.MockTransport(lambda r: httpx.Response(304)))
    with pytest.raises(BadResponse):
        client.fetch(None)


def test_4xx_carries_the_servers_detail() -> None:
    client = AamiClient(
        AAMI_URL,
        "prom-a",
        lambda: "wrong",
        transport=httpx.MockTransport(FakeAami(rule_set_body({})).handle),
    )
    with pytest.raises(AamiRejected, match="401: bad token"):
        client.fetch(None)


def test_5xx_and_connection_errors_are_unreachable_and_never_show_the_token() -> None:
    client = _client(httpx.MockTransport(lambda r: httpx.Response(503, text="down")))
    with pytest.raises(AamiUnreachable, match="503"):
        client.fetch(None)
    aami = FakeAami(rule_set_body({}), down=True)
    with pytest.raises(AamiUnreachable) as raised:
        _client(httpx.MockTransport(aami.handle)).fetch(None)
    assert TOKEN not in str(raised.value)


def test_report_sends_the_revision_and_a_bounded_error() -> None:
    aami = FakeAami(rule_set_body({}))
    client = _client(httpx.MockTransport(aami.handle))
    client.report("a" * 64, None)
    client.report(None, "x" * 5000)
    assert aami.reports[0] == {"loaded_revision": "a" * 64, "error": None}
    assert aami.reports[1]["loaded_revision"] is None
    assert len(aami.reports[1]["error"]) == 2000
    assert json.loads(aami.requests[-1].content)["error"].endswith("…")


def test_the_evaluator_name_must_be_path_safe() -> None:
    with pytest.raises(ValueError, match="evaluator name"):
        AamiClient(AAMI_URL, "../admin", lambda: TOKEN)


def test_rulesync_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, aami.rulesync.loop, aami.rulesync.client, aami.rulesync.evaluator\n"
        "bad = sorted(m for m in sys.modules if m.startswith('aami.')"
        " and not m.startswith('aami.rulesync'))\n"
        "heavy = sorted(m for m in ('fastapi', 'sqlalchemy', 'pydantic', 'alembic')"
        " if m in sys.modules)\n"
        "print(bad, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[] []"
