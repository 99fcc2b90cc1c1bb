"""Prometheus metrics of the API (GET /metrics): requests by route and status, request latency,
embedding and index time apart, the index size, and the replica's autoscaling signal
(lookalike.serving.signal: requests in flight, waiting for one of the API's threads, and queue time
over compute time of the work done on them). One registry per app, so several apps in one process
(tests, benchmarks) never collide."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from lookalike.serving.signal import WINDOW_S, Signal, render

BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, window: float = WINDOW_S) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lookalike_api_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)  # fmt: skip
        self.latency = Histogram("lookalike_api_request_seconds", "Whole request time by route template",
                                 ["route"], buckets=BUCKETS, registry=self.registry)  # fmt: skip
        self.stages = Histogram("lookalike_api_stage_seconds", "Time inside a request by stage: embed (TorchServe), "
                                "extract (the query's local features, beside embed), knn (the k-NN query of a "
                                "search), verify (judging its candidates), index (other index calls)",
                                ["stage"], buckets=BUCKETS, registry=self.registry)  # fmt: skip
        self.documents = Gauge("lookalike_index_documents", "Images in the index (read at scrape time)",
                               registry=self.registry)  # fmt: skip
        self.signal = Signal(window)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_stage(self, name: str, seconds: float) -> None:
        """One stage of a request took `seconds` (lookalike.timing.Stages reports here)."""
        self.stages.labels(name).observe(seconds)

    def render(self, count: Callable[[], int] | None, waiting: int = 0, draining: bool = False) -> bytes:
        """The page; `waiting`: requests queued for a thread now; `draining`: after SIGTERM."""
        if count is not None:
            with suppress(Exception):  # an index that is down keeps its last size; /healthz says why
                self.documents.set(count())
        self.signal.set_waiting(waiting)
        gauges = self.signal.gauges("lookalike_api")
        gauges.append(("lookalike_api_draining", "1 after SIGTERM, while in-flight requests finish", float(draining)))
        return generate_latest(self.registry) + render(gauges).encode()
