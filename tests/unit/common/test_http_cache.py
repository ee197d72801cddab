"""ETags and If-None-Match, shared by service discovery and the nodes' checks."""

from __future__ import annotations

import pytest

from aami.common.http_cache import conditional_response, etag_matches, etag_of

TAG = etag_of(b"[]")


def test_the_etag_is_a_strong_quoted_hash_of_the_body() -> None:
    assert TAG.startswith('"')
    assert TAG.endswith('"')
    assert len(TAG) == 34
    assert etag_of(b"[]") == TAG != etag_of(b"[1]")


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ("*", True),
        (TAG, True),
        (f"W/{TAG}", True),
        (f'"other", {TAG}', True),
        ('"other"', False),
        (TAG.strip('"'), False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, TAG) is matches


def test_a_match_is_a_304_without_a_body_and_both_carry_the_etag() -> None:
    full = conditional_response(b"[]", TAG, None)
    assert (full.status_code, full.body) == (200, b"[]")
    assert full.headers["etag"] == TAG
    assert full.headers["cache-control"] == "no-cache"
    assert full.media_type == "application/json"
    unchanged = conditional_response(b"[]", TAG, TAG)
    assert (unchanged.status_code, unchanged.body) == (304, b"")
    assert unchanged.headers["etag"] == TAG
