"""Where a registration came from: the peer address, or what trusted proxies forwarded.

Pure code: strings in, strings out. A node's claimed ``ip_address`` is believed only when
it is the address the request came from; nothing here trusts a header unless the peer is
one of the configured proxies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["client_address", "same_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(value: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.5 is 10.0.0.5 on a dual-stack socket
    return address


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted_proxies: Sequence[str]
) -> str | None:
    """The address a request came from, or None when it cannot be told.

    ``peer`` is the TCP peer. When it is a trusted proxy, ``X-Forwarded-For`` is read from
    the right (the hop nearest to us) past every trusted proxy; the first other address is
    the client's. A malformed hop makes the answer unknown rather than a guess.
    """
    address = _parse(peer) if peer else None
    if address is None:
        return None
    networks = _networks(tuple(trusted_proxies))
    if not networks or not _trusted(address, networks):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            return None
        address = parsed
        if not _trusted(address, networks):
            return str(address)
    return str(address)  # every hop is a proxy: the leftmost is as close as we get


def same_host(claimed: str, source: str | None) -> bool:
    """Whether a node that says it is ``claimed`` and connects from ``source`` is one host.

    Loopback counts as one address: a node on the server's own host may connect over
    ``::1`` and be scraped on ``127.0.0.1``.
    """
    if source is None:
        return False
    a, b = _parse(claimed), _parse(source)
    if a is None or b is None:
        return False
    return a == b or (a.is_loopback and b.is_loopback)
