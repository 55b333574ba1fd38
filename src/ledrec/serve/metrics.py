"""The service's Prometheus metrics, one set of names for both fronts: requests by method and final code,
the stage histograms of the paper's Table 4 (user embedding, KNN, total), unknown ids, cold starts, reloads,
graph-cache results, health and the model serving. The Python front observes them itself; the native front
counts in C++ and :class:`NativeCollector` reads its counters at each scrape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# latency buckets from 20 µs to 0.5 s: the interesting range is 50 µs - 2 ms (the paper's p50 / p99)
BUCKETS = (2e-5, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 7.5e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5)
STAGES = ("user_embedding", "knn", "total")
# gRPC status codes by number (grpc.StatusCode without importing grpc: the native front's process never does)
CODES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)  # fmt: skip


class Metrics:
    def __init__(self, native: Any = None) -> None:
        """``native``: the native front's server, whose request counters and stage histograms are read at
        each scrape; None: the Python front observes its own."""
        self.registry = CollectorRegistry()
        r = self.registry
        self.reloads = Counter("ledrec_reloads", "model loads after the first, by result", ["result"], registry=r)
        self.cache = Counter("ledrec_index_cache", "graph cache at model load, by result", ["result"], registry=r)
        self.serving = Gauge("ledrec_serving", "1 while health says SERVING", registry=r)
        self.model = Gauge("ledrec_model", "the model answering (value 1), by version", ["version"], registry=r)
        if native is not None:
            r.register(NativeCollector(native))
            return
        self.stage = Histogram(
            "ledrec_stage_seconds", "latency of one request stage", ["stage"], buckets=BUCKETS, registry=r
        )
        self.requests = Counter(
            "ledrec_requests", "RPCs by method and final gRPC status code", ["method", "code"], registry=r
        )
        self.unknown = Counter("ledrec_unknown_items", "history item ids the model does not know", registry=r)
        self.cold = Counter("ledrec_cold_start", "requests answered with the cold-start items", registry=r)
        self.embed, self.knn, self.total = (self.stage.labels(s) for s in STAGES)
        self._counts: dict[tuple[str, str], Any] = {}

    def count(self, method: str, code: str) -> None:
        child = self._counts.get((method, code))
        if child is None:  # label lookups cost a lock and a dict each: keep the children
            child = self._counts[(method, code)] = self.requests.labels(method, code)
        child.inc()

    def now_serving(self, servable: Any, previous: str | None) -> None:
        if previous is not None and previous != servable.version:
            self.model.remove(previous)
        self.model.labels(servable.version).set(1)
        for result in servable.cache_events.values():
            self.cache.labels(result.split(":")[0]).inc()


class NativeCollector:
    """The native front's counters under the Python front's names, samples and labels (read at each scrape;
    ``_created``: when this collector was made, i.e. the server)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.created = time.time()

    def collect(self) -> Iterator[Any]:
        snapshot = self.server.metrics()
        requests = CounterMetricFamily(
            "ledrec_requests", "RPCs by method and final gRPC status code", labels=["method", "code"]
        )
        for (method, code), n in sorted(snapshot["requests"].items()):
            code_name = CODES[code] if 0 <= code < len(CODES) else str(code)
            requests.add_metric([method, code_name], n, created=self.created)
        yield requests
        stages = HistogramMetricFamily("ledrec_stage_seconds", "latency of one request stage", labels=["stage"])
        for stage in STAGES:
            counts, total = snapshot["stages"][stage]
            cumulative, running = [], 0
            for bound, n in zip((*map(floatToGoString, BUCKETS), "+Inf"), counts, strict=True):
                running += n
                cumulative.append((bound, running))
            stages.add_metric([stage], cumulative, total)
            stages.samples.append(Sample("ledrec_stage_seconds_created", {"stage": stage}, self.created))
        yield stages
        yield CounterMetricFamily(
            "ledrec_unknown_items",
            "history item ids the model does not know",
            value=snapshot["unknown_items"],
            created=self.created,
        )
        yield CounterMetricFamily(
            "ledrec_cold_start",
            "requests answered with the cold-start items",
            value=snapshot["cold_starts"],
            created=self.created,
        )
