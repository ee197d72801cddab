"""Request counts and latencies for ``/metrics`` (a plain ASGI middleware: no extra task)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MetricsMiddleware", "make_registry"]


def make_registry() -> tuple[CollectorRegistry, Counter, Histogram]:
    """One registry per app, so several apps in one process do not collide."""
    registry = CollectorRegistry()
    requests = Counter(
        "aami_http_requests_total",
        "HTTP requests handled.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "aami_http_request_duration_seconds",
        "HTTP request latency.",
        ["method", "route"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    return registry, requests, latency


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    @staticmethod
    def _route(scope: Scope) -> str:
        # The router records the matched route; its template keeps label cardinality bounded.
        # An included route knows only its own tail (``/groups/{group_id}``): keep as many
        # segments of the concrete path as lie before that tail.
        route: Any = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if not template:
            return "unmatched"
        concrete = str(scope.get("path", "")).strip("/").split("/")
        tail = [part for part in str(template).strip("/").split("/") if part]
        prefix = concrete[: max(0, len(concrete) - len(tail))]
        return "/" + "/".join(prefix + tail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = self._route(scope)
            method = scope.get("method", "GET")
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(time.perf_counter() - start)
