"""Where a registration came from: the peer, or what trusted proxies forwarded."""

from __future__ import annotations

import pytest

from aami.registration.addresses import client_address, same_host

PROXIES = ["192.0.2.0/24", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        # no proxies configured: the peer, whatever the header says
        ("10.0.0.5", ["10.9.9.9"], [], "10.0.0.5"),
        # an untrusted peer's header is its own word
        ("10.0.0.5", ["10.9.9.9"], PROXIES, "10.0.0.5"),
        # a trusted proxy: the hop it saw
        ("192.0.2.1", ["10.0.0.7"], PROXIES, "10.0.0.7"),
        # a client prepending a fake hop does not move the answer
        ("192.0.2.1", ["6.6.6.6, 10.0.0.7"], PROXIES, "10.0.0.7"),
        # two proxies in a row, across two header lines
        ("192.0.2.1", ["10.0.0.7, 192.0.2.9", "192.0.2.8"], PROXIES, "10.0.0.7"),
        # a trusted proxy without the header: the proxy itself
        ("192.0.2.1", [], PROXIES, "192.0.2.1"),
        # every hop a proxy: the leftmost
        ("192.0.2.1", ["192.0.2.7"], PROXIES, "192.0.2.7"),
        # a malformed hop: cannot be told
        ("192.0.2.1", ["10.0.0.7, unknown"], PROXIES, None),
        # IPv6 proxy, IPv4-mapped client
        ("2001:db8::1", ["::ffff:10.0.0.7"], PROXIES, "10.0.0.7"),
        # a dual-stack socket's mapped peer is the IPv4 address
        ("::ffff:10.0.0.5", [], [], "10.0.0.5"),
        # no peer address (a Unix socket, a test client): unknown
        (None, ["10.0.0.7"], PROXIES, None),
        ("testclient", [], [], None),
    ],
)
def test_client_address(
    peer: str | None, forwarded: list[str], proxies: list[str], expected: str | None
) -> None:
    assert client_address(peer, forwarded, proxies) == expected


@pytest.mark.parametrize(
    ("claimed", "source", "same"),
    [
        ("10.0.0.5", "10.0.0.5", True),
        ("10.0.0.5", "10.0.0.6", False),
        ("127.0.0.1", "::1", True),
        ("127.0.0.1", "127.0.0.2", True),
        ("10.0.0.5", None, False),
        ("2001:db8::1", "2001:DB8:0::1", True),
        ("10.0.0.5", "::ffff:10.0.0.5", True),
        ("10.0.0.5", "127.0.0.1", False),
    ],
)
def test_same_host(claimed: str, source: str | None, same: bool) -> None:
    assert same_host(claimed, source) is same
