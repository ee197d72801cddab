"""The node poll answered from memory, without routing or dependency resolution.

``GET /api/v1/checks/target/{target_id}`` is what every node asks every minute, and nearly
always the answer is already cached: the token is in the node-token cache and the
rendered document in the checks cache, both at the current revisions. Going through
FastAPI's router and dependency solving for that costs more than the answer itself (half
the CPU of a poll, measured with py-spy), and at fleet scale the queue that CPU builds is
the latency nodes see.

``ChecksFastPath`` sits inside the request guard and the metrics middleware (so lockouts,
body limits and request metrics apply as before) and answers such a poll itself when
everything it needs is in memory: the same status, body and headers as the endpoint
(``aami.checks.endpoints._checks_response``). Anything else (an unknown or uncached
token, a document not rendered yet, another node's checks, a stale revision being
re-read) goes to the app unchanged. The route object the router records is taken from the
first poll the app serves, so ``/metrics`` labels both paths alike.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from aami.api.deps import _from_memory, revision_counters
from aami.api.limits import bearer_credential
from aami.api.state import services
from aami.common.http_cache import conditional_response

__all__ = ["CHECKS_PREFIX", "ChecksFastPath"]

CHECKS_PREFIX = "/api/v1/checks/target/"


class ChecksFastPath:
    """Plain ASGI middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: Any = None  # the router's route for the poll, once it has served one

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ref = _poll_ref(scope)
        if ref is None:
            await self.app(scope, receive, send)
            return
        if self.route is None or not await self._answer(scope, receive, send, ref):
            await self.app(scope, receive, send)
            if self.route is None:
                self.route = scope.get("route")

    async def _answer(self, scope: Scope, receive: Receive, send: Send, ref: str) -> bool:
        authorization, if_none_match = _headers(scope)
        token = bearer_credential(authorization)
        if token is None:
            return False
        app = services(scope["app"])
        counters = await revision_counters(app)
        principal = _from_memory(app, token, counters.get("node_tokens", 0))
        if principal is None:
            return False
        doc = app.checks_cache.get(
            (counters.get("checks", 0), counters.get("inventory", 0), ref.lower())
        )
        if doc is None or (principal.role != "admin" and principal.target_id != doc.target_id):
            return False
        scope["route"] = self.route
        await conditional_response(doc.body, doc.etag, if_none_match)(scope, receive, send)
        return True


def _poll_ref(scope: Scope) -> str | None:
    """The target of a node's poll, or None for any other request."""
    if scope["type"] != "http" or scope.get("method") != "GET":
        return None
    path: str = scope.get("path", "")
    if not path.startswith(CHECKS_PREFIX) or scope.get("root_path"):
        return None
    ref = path[len(CHECKS_PREFIX) :]
    return ref if ref and "/" not in ref else None


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    """The first Authorization and If-None-Match headers (as Starlette reads them)."""
    authorization = if_none_match = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    return authorization, if_none_match
