"""The one LRU cache: bounded, least recently used out first, safe across threads."""

from __future__ import annotations

import threading

import pytest

from aami.checks.service import ChecksCache
from aami.common.caching import LruCache
from aami.prometheus.sd import SdCache


def test_bounded_and_least_recently_used_out_first() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)


def test_a_rewrite_makes_the_entry_recent() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (10, None, 3)


def test_size_must_hold_something() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LruCache[str, int](0)


def test_documents_are_keyed_by_revision() -> None:
    """A new revision is a new key: the old document is never served for it."""
    sd = SdCache(size=4)
    sd.put((1, None, None), "old")  # type: ignore[arg-type]
    assert sd.get((2, None, None)) is None
    assert SdCache().size == 64
    assert ChecksCache().size == 50_000


def test_threads_never_push_it_past_its_bound() -> None:
    cache: LruCache[int, int] = LruCache(100)

    def work(offset: int) -> None:
        for n in range(2000):
            cache.put(offset + n, n)
            cache.get(offset + n // 2)

    threads = [threading.Thread(target=work, args=(k * 10_000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 100
