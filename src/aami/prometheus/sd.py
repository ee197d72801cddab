"""Prometheus HTTP service discovery documents (pure: rows in, JSON bytes out).

One entry per enabled exporter. Labels: ``instance`` (hostname), ``group`` and
``group_id`` (primary group), ``groups`` (all group ids, ``,a,b,``), ``target_id``,
``exporter_type``, ``target_label_<k>`` per target label and ``__metrics_path__`` when
it is not ``/metrics``. Never ``job``: the scrape config owns it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["SdCache", "SdDocument", "build_sd", "etag_matches"]


def build_sd(
    rows: Iterable[Sequence[Any]], memberships: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]]:
    """Build the HTTP SD list from ``(type, port, path, target_id, hostname, ip, labels,
    group_id, group_name)`` rows and each target's ordered group ids."""
    entries: list[dict[str, Any]] = []
    for exp_type, port, path, target_id, hostname, ip, labels, group_id, group_name in rows:
        host = f"[{ip}]" if ":" in ip else ip
        out: dict[str, str] = {
            "instance": hostname,
            "target_id": target_id,
            "exporter_type": exp_type,
        }
        if group_id is not None:
            out["group"] = group_name
            out["group_id"] = group_id
        member_of = memberships.get(target_id)
        if member_of:
            out["groups"] = "," + ",".join(member_of) + ","
        if path != "/metrics":
            out["__metrics_path__"] = path
        for key, value in (labels or {}).items():
            out[f"target_label_{key}"] = value
        entries.append({"targets": [f"{host}:{port}"], "labels": out})
    return entries


@dataclass(frozen=True, slots=True)
class SdDocument:
    body: bytes
    etag: str


def make_document(entries: list[dict[str, Any]]) -> SdDocument:
    """Serialise entries and compute their ETag from the bytes."""
    body = orjson.dumps(entries)
    return SdDocument(body=body, etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Tell whether an If-None-Match header names this ETag (weak or strong)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = (part.strip().removeprefix("W/") for part in if_none_match.split(","))
    return etag in candidates


class SdCache:
    """Rendered documents keyed by (inventory revision, filters); bounded, thread-safe."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._docs: OrderedDict[tuple[int, str | None, str | None], SdDocument] = OrderedDict()

    def get(self, key: tuple[int, str | None, str | None]) -> SdDocument | None:
        with self._lock:
            doc = self._docs.get(key)
            if doc is not None:
                self._docs.move_to_end(key)
            return doc

    def put(self, key: tuple[int, str | None, str | None], doc: SdDocument) -> None:
        with self._lock:
            self._docs[key] = doc
            self._docs.move_to_end(key)
            while len(self._docs) > self._size:
                self._docs.popitem(last=False)
