"""Rule files without their stamp: two servers with different histories publish the same
rules at different revisions."""

from __future__ import annotations

import re

_STAMPED = re.compile(rb"^(# aami: revision=|\s+aami_revision: |\s+aami_fingerprint: ).*\n", re.M)


def without_stamp(data: bytes) -> bytes:
    """The file with its stamp (revision and fingerprint lines) taken out."""
    return _STAMPED.sub(b"", data)
