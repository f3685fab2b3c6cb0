"""Prometheus metrics: request counts and latencies by route, per-stage latencies, index version.

Each app gets its own ``CollectorRegistry`` so several servers (tests, benchmarks) can live in one
process without clashing over global metric names.
"""

from __future__ import annotations

import contextlib
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("kira_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("kira_http_request_seconds", "HTTP request latency by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.stage = Histogram("kira_stage_seconds", "Pipeline stage latency (retrieve, read, …)",
                               ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("kira_batch_size", "Questions per micro-batch",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.index_version = Gauge("kira_index_version", "1 for the index version being served",
                                   ["version"], registry=r)
        self.index_info = Info("kira_index", "The index version being served", registry=r)
        self.swaps = Counter("kira_index_swaps", "Snapshot swaps", registry=r)
        self.jobs = Counter("kira_jobs", "Admin jobs finished by kind and state", ["kind", "state"], registry=r)

    def set_version(self, old: str | None, new: str) -> None:
        if old and old != new:
            with contextlib.suppress(KeyError):
                self.index_version.remove(old)
        self.index_version.labels(version=new).set(1)
        self.index_info.info({"version": new})
        self.swaps.inc()

    def observe_stages(self, timings: dict[str, float]) -> None:
        for stage, seconds in timings.items():
            self.stage.labels(stage=stage).observe(max(0.0, float(seconds)))


def _template(routes, scope) -> str | None:
    """The path template of the route that fully matches ``scope`` (into included routers too)."""
    from starlette.routing import Match

    for r in routes:
        match, _ = r.matches(scope)
        if match != Match.FULL:
            continue
        if getattr(r, "path", None):
            return r.path
        inner = getattr(getattr(r, "original_router", None), "routes", None)
        found = _template(inner, scope) if inner else None
        if found:
            return found
    return None


class MetricsMiddleware:
    """Counts every response by its route template (not the raw path, so labels stay bounded)."""

    def __init__(self, app, metrics: Metrics, routes=()):
        self.app, self.metrics, self.routes = app, metrics, routes

    def _route_path(self, scope) -> str:
        """The route template of a request, also for responses sent before routing (e.g. a 413)."""
        route = scope.get("route")
        if route is not None and getattr(route, "path", None):
            return route.path
        if scope["path"].startswith("/static/"):
            return "/static"
        return _template(self.routes, {**scope, "type": "http"}) or "unmatched"


    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = self._route_path(scope)
            self.metrics.requests.labels(route=path, method=scope.get("method", ""),
                                         status=str(status["code"])).inc()
            self.metrics.latency.labels(route=path).observe(time.perf_counter() - t0)
