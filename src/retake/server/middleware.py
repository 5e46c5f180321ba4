"""Pure ASGI middleware: Prometheus request metrics (the body size cap is in ``server/admission.py``)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retake.server.health_metrics import StreamHealthCollector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "retake_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "retake_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.shed = Counter(
            "retake_http_shed_total",
            "HTTP requests answered 503 at once because too many were in flight (RETAKE_MAX_INFLIGHT_REQUESTS)",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "retake_http_in_flight",
            "HTTP requests in progress, as the in-flight limit counts them",
            registry=self.registry,
        )
        # Set from the live registry when /metrics is scraped (server/site.py).
        self.live_streams = Gauge(
            "retake_live_streams", "streams with media flowing on this node", registry=self.registry
        )
        self.stream_health = StreamHealthCollector()
        self.registry.register(self.stream_health)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_send)
        finally:
            route: Any = scope.get("route")
            # Route templates, not raw paths: ids in paths would make label cardinality unbounded.
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(scope["method"], name).observe(time.perf_counter() - start)
