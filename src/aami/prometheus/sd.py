"""Prometheus HTTP service discovery documents (pure: rows in, JSON bytes out).

One entry per enabled exporter. Labels: ``instance`` (hostname), ``group`` and
``group_id`` (primary group), ``groups`` (all group ids, ``,a,b,``), ``target_id``,
``exporter_type``, ``target_label_<k>`` per target label and ``__metrics_path__`` when
it is not ``/metrics``. Never ``job``: the scrape config owns it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from aami.common.caching import LruCache
from aami.common.http_cache import etag_of

__all__ = ["SdCache", "SdDocument", "build_sd", "make_document"]


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
    return SdDocument(body=body, etag=etag_of(body))


SdKey = tuple[int, str | None, str | None]


class SdCache(LruCache[SdKey, SdDocument]):
    """Rendered documents keyed by (inventory revision, exporter type, group id)."""

    def __init__(self, size: int = 64) -> None:
        super().__init__(size)
