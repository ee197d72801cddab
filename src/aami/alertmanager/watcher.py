"""The thread that ends ``expire_on_resolve`` silences once their alerts have resolved."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from aami.alertmanager.client import AlertmanagerClient, AlertmanagerError
from aami.alertmanager.repository import SilenceWatchRepository
from aami.alertmanager.schemas import Matcher
from aami.audit import service as audit
from aami.db.session import session_scope

__all__ = ["SilenceWatcher"]

log = logging.getLogger(__name__)


class SilenceWatcher:
    """Expires ``expire_on_resolve`` silences once nothing they match is firing.

    A watch is armed once its silence has muted something; an unarmed watch (nothing
    fired yet) waits, so a silence set ahead of maintenance is not expired at once.
    """

    def __init__(
        self, factory: sessionmaker[Session], client: AlertmanagerClient, interval: float
    ) -> None:
        self.factory = factory
        self.client = client
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aami-silence-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except AlertmanagerError as exc:
                log.info("silence watch: %s", exc)
            except Exception:
                log.exception("silence watch failed")

    def check(self) -> list[str]:
        """One pass; returns the silences it expired."""
        expired = []
        with session_scope(self.factory) as session:
            repo = SilenceWatchRepository(session)
            for watch in repo.all():
                silence = self.client.silence(watch.silence_id)
                state = ((silence or {}).get("status") or {}).get("state")
                if silence is None or state == "expired":
                    repo.delete(watch)
                    continue
                filters = [Matcher.model_validate(m).promql() for m in watch.matchers]
                firing = self.client.alerts(filters=filters, silenced=True, inhibited=True)
                if firing:
                    watch.armed = True
                    continue
                if watch.armed:
                    self.client.expire_silence(watch.silence_id)
                    repo.delete(watch)
                    audit.record(
                        session,
                        actor="silence-watch",
                        action="delete",
                        entity_type="silence",
                        entity_id=watch.silence_id,
                        before={"reason": "expire_on_resolve: its alerts resolved"},
                    )
                    expired.append(watch.silence_id)
        return expired
