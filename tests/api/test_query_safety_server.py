"""Parser bombs against a real server process: each is a 422, and the same process
answers afterwards (promql-parser's recursion would have killed it with SIGSEGV)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_query_safety import BOMBS, PREVIEW
from tests.conftest import AUTH, TOKEN
from tests.support.ports import free_port
from tests.support.processes import Process, aami_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str]]:
    tmp = tmp_path_factory.mktemp("query-bombs")
    port = free_port()
    process = aami_server(
        tmp,
        port=port,
        token=TOKEN,
        env={
            "PROMETHEUS_RELOAD_ENABLED": "false",
            "PROMETHEUS_URL": "http://127.0.0.1:1",
            "ALERTMANAGER_URL": "http://127.0.0.1:1",
        },
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/health")
        yield process, url
    finally:
        process.stop()


@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_a_bomb_is_a_422_and_the_process_lives(server: tuple[Process, str], bomb: str) -> None:
    process, url = server
    assert process.popen is not None
    pid = process.popen.pid
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as api:
        response = api.get(PREVIEW, params={"query_template": bomb})
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith("query_template: ")
        assert process.popen.poll() is None, "the server process died"
        assert api.get("/health").json()["status"] == "ok"
        # The same process: not a restarted one.
        assert process.popen.pid == pid
        fine = api.get(PREVIEW, params={"query_template": "(((up))) > 1"})
        assert fine.json()["valid"] is True
