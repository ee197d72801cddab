"""The stack's local webhook receiver: where Alertmanager's notifications land."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["LocalReceiver"]


class LocalReceiver:
    """Appends every notification to a JSON-lines file and prints one line per alert."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.log_path = log_path
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.record(self.path.strip("/") or "default", body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="aami-receiver", daemon=True
        )

    def record(self, receiver: str, body: dict[str, Any]) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock, self.log_path.open("a") as log:
            log.write(json.dumps({"at": now, "receiver": receiver, **body}) + "\n")
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            sys.stdout.write(
                f"notification to {receiver}: {labels.get('alertname', '?')} "
                f"[{alert.get('status', '?')}] instance={labels.get('instance', '-')} "
                f"severity={labels.get('severity', '-')}\n"
            )
        sys.stdout.flush()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
