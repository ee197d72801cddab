"""A webhook receiver that records what Alertmanager sends."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.wait import wait_for


class WebhookReceiver:
    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.notifications.append({"path": self.path, **body})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, *, status: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """Every alert received so far (each notification may carry several)."""
        with self._lock:
            found = []
            for note in self.notifications:
                if path is not None and note["path"] != path:
                    continue
                for alert in note.get("alerts", []):
                    if status is None or alert["status"] == status:
                        found.append(alert)
            return found

    def wait_for_alert(self, timeout: float = 60, **labels: str) -> dict[str, Any]:
        """Wait until a firing alert with these labels arrives."""

        def probe() -> dict[str, Any] | None:
            for alert in self.alerts(status="firing"):
                if all(alert["labels"].get(k) == v for k, v in labels.items()):
                    return alert
            return None

        return wait_for(probe, timeout=timeout, what=f"a notification for {labels}")
