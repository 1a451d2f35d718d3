"""Observability: Prometheus metrics at /metrics and one structured log line per request.

Metrics are per worker process (each has its own registry; scrape every worker, or run one per
machine): requests by route and status, latency histograms, the compute pool's queue, 503s, the
output cache's hits and misses, and the image store's bytes.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import Message, Receive, Scope, Send

from .middleware import HTTPMiddleware

log = logging.getLogger("convlens.requests")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The app's Prometheus registry and its instruments."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("convlens_requests_total", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("convlens_request_seconds", "Time from request to last byte, by route",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.compute = Histogram("convlens_compute_seconds", "Time in the compute pool, by route",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.queue = Gauge("convlens_queue_depth", "Requests waiting for a compute slot", registry=r)
        self.running = Gauge("convlens_computing", "Requests computing now", registry=r)
        self.busy = Counter("convlens_busy_total", "503 answers: pool full or time budget over", registry=r)
        self.cache_hits = Gauge("convlens_output_cache_hits", "Output cache hits since start", registry=r)
        self.cache_misses = Gauge("convlens_output_cache_misses", "Output cache misses since start",
                                  registry=r)
        self.cache_bytes = Gauge("convlens_output_cache_bytes", "Bytes held by the output cache", registry=r)
        self.store_bytes = Gauge("convlens_image_store_bytes", "Bytes held by the image store", registry=r)

    def render(self, state: Any) -> bytes:
        """The text exposition, with the gauges read from the app's pool, cache and store now."""
        pool, outputs, store = state.pool, state.outputs, state.store
        self.queue.set(pool.waiting)
        self.running.set(pool.running)
        self.cache_hits.set(getattr(outputs, "hits", 0))
        self.cache_misses.set(getattr(outputs, "misses", 0))
        self.cache_bytes.set(getattr(outputs, "nbytes", 0))
        try:
            self.store_bytes.set(store.nbytes)
        except Exception:  # a store that cannot be reached now is not a metrics failure
            log.warning("image store size unavailable for /metrics")
        return generate_latest(self.registry)


class RequestLog(HTTPMiddleware):
    """ASGI middleware: a request id, the metrics of each request, and one JSON log line for it."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, request_id, status, time.perf_counter() - start)

    @staticmethod
    def _record(scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        metrics: Metrics | None = getattr(scope["app"].state, "metrics", None)
        timing = scope.get("state", {}).get("timing") or {}
        if metrics is not None:
            metrics.requests.labels(route, scope["method"], str(status)).inc()
            metrics.latency.labels(route).observe(seconds)
            if "compute" in timing:
                metrics.compute.labels(route).observe(timing["compute"])
            if status == 503 and route != "/readyz":  # /readyz reports fullness; it refuses nothing
                metrics.busy.inc()
        log.info(json.dumps({
            "id": request_id, "method": scope["method"], "route": route, "status": status,
            "ms": round(seconds * 1000, 1), "compute_ms": round(timing.get("compute", 0) * 1000, 1),
        }, separators=(",", ":")))
