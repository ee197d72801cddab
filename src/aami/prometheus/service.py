"""Service discovery: read the inventory once per revision, serve cached bytes after."""

from __future__ import annotations

from sqlalchemy.orm import Session

from aami.prometheus.sd import SdCache, SdDocument, build_sd, make_document
from aami.targets.repository import TargetRepository


def service_discovery(
    session: Session, *, cache: SdCache, exporter_type: str | None, group_id: str | None
) -> SdDocument:
    """Return the SD document for these filters at the current inventory revision."""
    repo = TargetRepository(session)
    key = (repo.inventory_revision(), exporter_type, group_id)
    doc = cache.get(key)
    if doc is None:
        rows, memberships = repo.sd_rows(exporter_type=exporter_type, group_id=group_id)
        doc = make_document(build_sd(rows, memberships))
        cache.put(key, doc)
    return doc
