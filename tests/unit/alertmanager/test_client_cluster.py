"""The Alertmanager client over a cluster (several members in ALERTMANAGER_URL), against
httpx.MockTransport: reads fall over, writes go to one member, the last that answered is
asked first."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from pydantic import ValidationError

from aami.alertmanager.client import AlertmanagerClient, AlertmanagerUnreachable
from aami.config import Settings

A, B, C = "http://am-a.test:9093", "http://am-b.test:9093", "http://am-c.test:9093"
SILENCE = "6c9f4b7e-2a51-4f0e-9d7c-1b8a3e5f2c10"

Behaviour = Callable[[httpx.Request], httpx.Response]


def _ok(request: httpx.Request) -> httpx.Response:
    if request.method == "POST" and request.url.path == "/api/v2/silences":
        return httpx.Response(200, json={"silenceID": SILENCE})
    return httpx.Response(200, json=[{"member": request.url.host}])


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def _slow(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def _broken(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="not ready")


class Cluster:
    """Each member answers as its behaviour says; every request is recorded."""

    def __init__(self, **members: Behaviour) -> None:
        self.members = members
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.host, request.method, request.url.path))
        return self.members[request.url.host](request)

    def client(self, urls: str = f"{A},{B},{C}") -> AlertmanagerClient:
        return AlertmanagerClient(urls, transport=httpx.MockTransport(self))

    def hosts(self) -> list[str]:
        return [host for host, _, _ in self.seen]


@pytest.mark.parametrize("failure", [_refused, _slow, _broken], ids=["refused", "timeout", "5xx"])
def test_a_read_falls_over_to_the_next_member_and_sticks_to_it(failure: Behaviour) -> None:
    cluster = Cluster(**{"am-a.test": failure, "am-b.test": _ok, "am-c.test": _ok})
    client = cluster.client()
    assert client.silences() == [{"member": "am-b.test"}]
    assert client.base_url == B
    assert client.alerts() == [{"member": "am-b.test"}]
    assert client.alert_groups() == [{"member": "am-b.test"}]
    client.status()
    # A was asked once; every later read starts at B, the member that answered last.
    assert cluster.hosts() == ["am-a.test", "am-b.test", "am-b.test", "am-b.test", "am-b.test"]


def test_the_member_asked_first_moves_on_when_it_fails_and_wraps_around() -> None:
    cluster = Cluster(**{"am-a.test": _ok, "am-b.test": _ok, "am-c.test": _refused})
    client = cluster.client()
    client._current = 2  # C answered last
    assert client.silences() == [{"member": "am-a.test"}]
    assert cluster.hosts() == ["am-c.test", "am-a.test"]
    assert client.base_url == A


def test_every_member_down_names_each() -> None:
    cluster = Cluster(**{"am-a.test": _refused, "am-b.test": _slow, "am-c.test": _broken})
    with pytest.raises(AlertmanagerUnreachable) as raised:
        cluster.client().silences()
    message = str(raised.value)
    assert "no member of the Alertmanager cluster answers" in message
    for url, why in ((A, "ConnectError"), (B, "ReadTimeout"), (C, "503")):
        assert f"Alertmanager at {url}" in message
        assert why in message


def test_a_4xx_is_an_answer_not_a_reason_to_ask_another_member() -> None:
    cluster = Cluster(
        **{
            "am-a.test": lambda r: httpx.Response(404, text="nope"),
            "am-b.test": _ok,
            "am-c.test": _ok,
        }
    )
    assert cluster.client().silence(SILENCE) is None
    assert cluster.hosts() == ["am-a.test"]


def test_a_silence_is_created_on_one_member_and_moves_on_only_when_never_sent() -> None:
    cluster = Cluster(**{"am-a.test": _refused, "am-b.test": _ok, "am-c.test": _ok})
    client = cluster.client()
    assert client.create_silence({"matchers": []}) == SILENCE
    client.expire_silence(SILENCE)
    assert [s for s in cluster.seen if s[1] != "GET"] == [
        ("am-a.test", "POST", "/api/v2/silences"),  # no connection: nothing was sent
        ("am-b.test", "POST", "/api/v2/silences"),
        ("am-b.test", "DELETE", f"/api/v2/silence/{SILENCE}"),
    ]


@pytest.mark.parametrize("failure", [_slow, _broken], ids=["timeout", "5xx"])
def test_a_silence_that_may_have_arrived_is_not_made_again_elsewhere(failure: Behaviour) -> None:
    cluster = Cluster(**{"am-a.test": failure, "am-b.test": _ok, "am-c.test": _ok})
    with pytest.raises(AlertmanagerUnreachable, match=r"am-a\.test"):
        cluster.client().create_silence({"matchers": []})
    assert cluster.hosts() == ["am-a.test"]


def test_reload_and_members_reach_every_member() -> None:
    cluster = Cluster(**{"am-a.test": _ok, "am-b.test": _refused, "am-c.test": _ok})
    client = cluster.client()
    assert [m.base_url for m in client.members] == [A, B, C]
    assert client.clustered
    with pytest.raises(AlertmanagerUnreachable, match=r"am-b\.test"):
        client.reload()
    assert cluster.hosts() == ["am-a.test", "am-b.test", "am-c.test"]  # all were asked
    assert client.ready()  # A is
    assert not Cluster(**{"am-a.test": _refused, "am-b.test": _broken}).client(f"{A},{B}").ready()


def test_one_url_is_one_member() -> None:
    client = Cluster(**{"am-a.test": _ok}).client(A + "/")
    assert client.members == [client]
    assert not client.clustered
    assert client.base_url == A
    assert client.describe() == f"Alertmanager at {A}"


def test_the_setting_takes_a_comma_separated_list_and_checks_each_url() -> None:
    assert Settings(ALERTMANAGER_URL=f" {A}/ , {B} ").alertmanager_url == f"{A},{B}"
    assert Settings(ALERTMANAGER_URL=A).alertmanager_url == A
    assert Settings.model_fields["alertmanager_url"].default == "http://localhost:9093"
    for bad, why in (
        (f"{A},am-b.test:9093", "'am-b.test:9093' is not an http"),
        (f"{A},ftp://x", "'ftp://x' is not an http"),
        (" , ", "names no Alertmanager"),
        (f"{A},{A}/", "names a member twice"),
    ):
        with pytest.raises(ValidationError, match=why):
            Settings(ALERTMANAGER_URL=bad)
