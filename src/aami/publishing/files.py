"""Files AAMI publishes: the stamp that says what a file holds, and OS errors in words.

A published file carries a stamp, ``revision`` (the desired-state revision it was rendered
from) and ``fingerprint`` (a hash of the file itself), in a comment line and in a place
the consumer reports back once it has loaded the file (a recording rule's labels, a
receiver's name). Comparing the three (database, file, loaded) is how AAMI knows, rather
than assumes, that what runs is what was asked for. The files are written whole by
``aami.common.files.write_atomic``.
"""

from __future__ import annotations

import errno
import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "FINGERPRINT_PLACEHOLDER",
    "Stamp",
    "describe_os_error",
    "read_stamp",
    "seal",
    "stamp_line",
    "verify",
]

# Stands where the fingerprint goes while the content is hashed: not hex, so it never
# collides with a real fingerprint, and the colon makes YAML emitters quote it, so a
# fingerprint of digits stays a string once it takes the placeholder's place.
FINGERPRINT_PLACEHOLDER = "AAMI:FINGERPRINT"
_STAMP = re.compile(r"^# aami: revision=(\d+) fingerprint=([0-9a-f]{16})$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Stamp:
    revision: int
    fingerprint: str

    def as_dict(self) -> dict[str, int | str]:
        return {"revision": self.revision, "fingerprint": self.fingerprint}


def stamp_line(revision: int) -> str:
    """The comment line (without ``# ``) that stamps a file; sealed by ``seal``."""
    return f"aami: revision={revision} fingerprint={FINGERPRINT_PLACEHOLDER}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def seal(text: str) -> tuple[str, str]:
    """Hash ``text`` (which holds the placeholder) and put the hash in the placeholder's
    places; return the sealed text and its fingerprint."""
    fingerprint = _digest(text)
    return text.replace(FINGERPRINT_PLACEHOLDER, fingerprint), fingerprint


def read_stamp(text: str) -> Stamp | None:
    """The stamp in a file's comment header, or None (not ours, or written by hand)."""
    match = _STAMP.search(text, 0, 4096)
    if match is None:
        return None
    return Stamp(int(match.group(1)), match.group(2))


def verify(text: str, stamp: Stamp) -> bool:
    """True when the text is exactly what was sealed with this stamp (not edited since)."""
    return _digest(text.replace(stamp.fingerprint, FINGERPRINT_PLACEHOLDER)) == stamp.fingerprint


_ERRNO_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
    errno.EIO: "an I/O error",
}


def describe_os_error(exc: OSError, what: str) -> str:
    """One line an operator can act on: what failed, where, and the errno's name."""
    code = errno.errorcode.get(exc.errno or 0, "")
    hint = _ERRNO_HINTS.get(exc.errno or 0, exc.strerror or str(exc))
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{what}: {hint}{f' [{code}]' if code else ''}{where}"
