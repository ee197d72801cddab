"""A registration waiting for an admin, remembered beside the agent's config.

``aami agent register`` waits a bounded time for an approval. When it gives up (or is
interrupted), running it again resumes the same wait with the same poll token instead of
queueing a second registration; the file is private (the poll token collects the node
token) and removed once the registration is decided.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from aami.agent.client import PendingRegistration

__all__ = ["forget_pending", "load_pending", "pending_path", "save_pending"]


def pending_path(config: Path) -> Path:
    """Where the waiting registration of the node configured by ``config`` is kept."""
    return config.with_name(config.name + ".pending")


def save_pending(path: Path, server_url: str, pending: PendingRegistration) -> None:
    """Write the waiting registration atomically, mode 0600."""
    document = {
        "server_url": server_url.rstrip("/"),
        "registration_id": pending.registration_id,
        "hostname": pending.hostname,
        "poll_token": pending.poll_token,
        "reasons": pending.reasons,
        "expires_at": pending.expires_at,
        "poll_interval": pending.poll_interval,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp made it 0600
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)  # rename(2) is atomic: never half a poll token
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def load_pending(path: Path, *, server_url: str, hostname: str) -> PendingRegistration | None:
    """The registration this node waits for at ``server_url`` under ``hostname``, if any."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if (
            document["server_url"] != server_url.rstrip("/")
            or document["hostname"] != hostname
            or not document["registration_id"]
            or not document["poll_token"]
        ):
            return None
        return PendingRegistration(
            registration_id=str(document["registration_id"]),
            hostname=str(document["hostname"]),
            poll_token=str(document["poll_token"]),
            reasons=[str(r) for r in document.get("reasons") or []],
            expires_at=str(document.get("expires_at") or ""),
            poll_interval=float(document.get("poll_interval") or 5),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def forget_pending(path: Path) -> None:
    """Remove the file once the registration is decided (approved, rejected, expired)."""
    path.unlink(missing_ok=True)
