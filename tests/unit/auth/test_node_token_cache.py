"""The node-token cache: believed only at the revision it was checked at, and for ``ttl``."""

from __future__ import annotations

from aami.auth.tokens import NodeTokenCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lasts_ttl_seconds_at_its_revision() -> None:
    clock = Clock()
    cache = NodeTokenCache(ttl=10.0, clock=clock)
    cache.put("h1", "tgt-1", revision=3)
    assert cache.get("h1", 3) == "tgt-1"
    clock.now += 9.9
    assert cache.get("h1", 3) == "tgt-1"
    clock.now += 0.1
    assert cache.get("h1", 3) is None
    assert cache.get("h1", 3) is None  # gone, not revived


def test_a_new_revision_ends_every_entry_at_once() -> None:
    cache = NodeTokenCache(ttl=60.0, clock=Clock())
    cache.put("h1", "tgt-1", revision=3)
    cache.put("h2", "tgt-2", revision=3)
    assert cache.get("h1", 4) is None
    assert cache.get("h2", 4) is None
    # an entry checked at an older revision than the one a reader knows is no good either
    cache.put("h3", "tgt-3", revision=3)
    assert cache.get("h3", 5) is None


def test_ttl_zero_caches_nothing_and_a_full_cache_starts_over() -> None:
    off = NodeTokenCache(ttl=0.0, clock=Clock())
    off.put("h1", "tgt-1", revision=1)
    assert off.get("h1", 1) is None
    small = NodeTokenCache(ttl=60.0, size=2, clock=Clock())
    small.put("h1", "tgt-1", revision=1)
    small.put("h2", "tgt-2", revision=1)
    small.put("h3", "tgt-3", revision=1)
    assert small.get("h1", 1) is None
    assert small.get("h3", 1) == "tgt-3"
