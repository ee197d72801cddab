"""The client's range query, against a fake Prometheus (httpx.MockTransport)."""

from __future__ import annotations

import httpx
import pytest

from aami.prometheus.client import PrometheusClient, PrometheusError, PrometheusUnreachable


def client(handler: httpx.MockTransport) -> PrometheusClient:
    return PrometheusClient("http://prometheus.test", transport=handler)


def test_a_range_query_sends_start_end_and_step_and_returns_the_matrix() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        matrix = [{"metric": {"instance": "a"}, "values": [[100, "1"], [110, "1"]]}, "junk"]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "matrix", "result": matrix}}
        )

    found = client(httpx.MockTransport(answer)).query_range("up > 0", start=100, end=200, step=10)
    assert found == [{"metric": {"instance": "a"}, "values": [[100, "1"], [110, "1"]]}]
    (request,) = seen
    assert request.url.path == "/api/v1/query_range"
    assert dict(request.url.params) == {
        "query": "up > 0",
        "start": "100",
        "end": "200",
        "step": "10",
    }


def test_a_refused_query_says_why() -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"status": "error", "errorType": "bad_data", "error": "exceeded maximum"}
        )

    with pytest.raises(PrometheusError, match="exceeded maximum"):
        client(httpx.MockTransport(answer)).query_range("up", start=0, end=1, step=1)


def test_no_answer_or_not_json_is_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(PrometheusUnreachable):
        client(httpx.MockTransport(refuse)).query_range("up", start=0, end=1, step=1)
    html = httpx.MockTransport(lambda _: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(PrometheusUnreachable, match="not JSON"):
        client(html).query_range("up", start=0, end=1, step=1)
