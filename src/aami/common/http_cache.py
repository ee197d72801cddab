"""HTTP caching: strong ETags of response bodies, If-None-Match, and the 200-or-304 answer.

Prometheus's service discovery and every node's checks poll ask again and again for a
document that rarely changes; an ETag lets the answer be a body-less 304.
"""

from __future__ import annotations

import hashlib

from starlette.responses import Response

__all__ = ["conditional_response", "etag_matches", "etag_of"]


def etag_of(body: bytes) -> str:
    """A strong ETag computed from the bytes themselves (equal bodies, equal tags)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Tell whether an If-None-Match header names this ETag (weak or strong)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = (part.strip().removeprefix("W/") for part in if_none_match.split(","))
    return etag in candidates


def conditional_response(
    body: bytes,
    etag: str,
    if_none_match: str | None,
    *,
    media_type: str = "application/json",
) -> Response:
    """304 when the client holds this ETag, else the body; either way with the ETag and
    ``Cache-Control: no-cache`` (a client may keep it, but must ask before reusing it)."""
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=media_type, headers=headers)
