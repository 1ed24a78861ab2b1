"""Prometheus metrics of the web app, served at /metrics.

Request latency by route (time to the response's first byte, so streams count once), open
SSE/WebSocket streams, the hub's pollers, and Temporal call latency and errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "fanout_http_request_duration_seconds",
            "Time to the first byte of each HTTP response.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.streams = Gauge(
            "fanout_open_streams", "Live status streams open now.", ["kind"], registry=self.registry
        )
        self.pollers = Gauge(
            "fanout_hub_pollers", "Jobs the status hub is following now.", registry=self.registry
        )
        self.temporal_calls = Histogram(
            "fanout_temporal_call_duration_seconds",
            "Latency of the hub's Temporal calls.",
            ["call"],
            registry=self.registry,
        )
        self.temporal_errors = Counter(
            "fanout_temporal_call_errors_total",
            "Temporal calls of the hub that failed.",
            ["call"],
            registry=self.registry,
        )

    def watch_pollers(self, count: Callable[[], int]) -> None:
        self.pollers.set_function(lambda: float(count()))

    def observe_call(self, call: str, seconds: float, failed: bool) -> None:
        self.temporal_calls.labels(call).observe(seconds)
        if failed:
            self.temporal_errors.labels(call).inc()

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class RequestTimer:
    """ASGI middleware: records each HTTP request under its route template (not its URL)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                self.metrics.requests.labels(
                    scope["method"],
                    getattr(route, "path", "unmatched"),
                    str(message["status"]),
                ).observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed_send)
