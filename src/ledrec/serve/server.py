"""``ledrec serve``: the gRPC service (seed paper §6.2-§6.3).

* ``ledrec.v1.Recommender/Recommend`` (``ledrec.proto``), the standard ``grpc.health.v1`` health service and
  server reflection; binds 127.0.0.1 unless told otherwise.
* Hot reload (the paper retrains daily, §6.3): SIGHUP, or a change of what the served path resolves to
  (point a symlink at a new run directory), loads the new model *beside* the old one and swaps one
  reference: a request in flight finishes on the model it started with, the next one gets the new model,
  none fails. ``model_version`` in every response says which model answered.
* Observability: per-stage latency histograms (user embedding, KNN, total), request / unknown-id /
  cold-start / reload counters, in Prometheus text format on a loopback HTTP port.
* ``--workers N``: N processes share the port (SO_REUSEPORT), each with its own copy of the model, so a
  request is served by one process on one core; worker i exposes metrics on ``metrics_port + i``.
* Graceful shutdown on SIGTERM / SIGINT: health goes NOT_SERVING, in-flight requests drain (``grace``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc
from ledrec.serve.loading import load_retriever
from ledrec.serve.retriever import RequestError, Retriever, RetrieverConfig
from ledrec.twostage.artifact import SavedSystem, load_system

log = logging.getLogger(__name__)
SERVICE = ledrec_pb2.DESCRIPTOR.services_by_name["Recommender"].full_name
# latency buckets from 20 µs to 0.5 s: the interesting range is 50 µs - 2 ms (the paper's p50 / p99)
BUCKETS = (2e-5, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 7.5e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5)


@dataclass
class ServeConfig:
    run_dir: str
    host: str = "127.0.0.1"
    port: int = 50051
    workers: int = 1
    metrics_port: int | None = 9100  # None: no metrics endpoint
    watch_s: float = 2.0  # poll the run directory for a new target this often (0: SIGHUP only)
    grace_s: float = 5.0
    max_request_bytes: int = 256 * 1024  # larger requests: INVALID_ARGUMENT (transport limit: 4× this)
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.stage = Histogram(
            "ledrec_stage_seconds", "latency of one request stage", ["stage"], buckets=BUCKETS, registry=r
        )
        self.requests = Counter("ledrec_requests", "requests answered, by gRPC status", ["code"], registry=r)
        self.unknown = Counter("ledrec_unknown_items", "history item ids the model does not know", registry=r)
        self.cold = Counter("ledrec_cold_start", "requests answered with the cold-start items", registry=r)
        self.reloads = Counter("ledrec_reloads", "model reloads, by outcome", ["outcome"], registry=r)
        self.embed, self.knn, self.total = (self.stage.labels(s) for s in ("user_embedding", "knn", "total"))


class ModelHolder:
    """The served model; ``current`` is swapped in one assignment (atomic in CPython)."""

    def __init__(self, run_dir: str, config: RetrieverConfig, metrics: Metrics):
        self.run_dir, self.config, self.metrics = run_dir, config, metrics
        self._lock = threading.Lock()  # one reload at a time
        self.target = _resolve(run_dir)
        self.current: Retriever = load_retriever(self.target[0], config)
        _freeze_heap()

    def reload(self) -> bool:
        """Load what ``run_dir`` points to now and swap it in; on failure keep serving the old model."""
        with self._lock:
            target = _resolve(self.run_dir)
            try:
                fresh = load_retriever(target[0], self.config)
            except Exception:
                log.exception("reload of %s failed; still serving %s", target, self.current.version)
                self.metrics.reloads.labels("failed").inc()
                return False
            self.current, self.target = fresh, target
            _freeze_heap()
            self.metrics.reloads.labels("ok").inc()
            log.info("serving model %s from %s", fresh.version, target[0])
            return True

    def changed(self) -> bool:
        return _resolve(self.run_dir) != self.target


class RecommenderService(ledrec_pb2_grpc.RecommenderServicer):
    def __init__(
        self, holder: ModelHolder, metrics: Metrics, max_request_bytes: int, two_stage: SavedSystem | None = None
    ):
        self.holder, self.metrics, self.max_request_bytes = holder, metrics, max_request_bytes
        self.two_stage = two_stage

    async def Banner(self, request: ledrec_pb2.BannerRequest, context: grpc.aio.ServicerContext):
        if self.two_stage is None:
            self.metrics.requests.labels("FAILED_PRECONDITION").inc()
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this server has no two-stage system: serve a directory of 'ledrec simulate ab --save-system'",
            )
        try:
            if request.ByteSize() > self.max_request_bytes:
                raise ValueError(f"request of {request.ByteSize()} bytes; at most {self.max_request_bytes}")
            if len(request.item_ids) > self.holder.config.max_history:
                raise ValueError(f"{len(request.item_ids)} history items; at most {self.holder.config.max_history}")
            items, unknown = self.two_stage.banner(request.merchant, list(request.item_ids), request.size)
        except ValueError as exc:
            self.metrics.requests.labels("INVALID_ARGUMENT").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.metrics.requests.labels("OK").inc()
        return ledrec_pb2.BannerResponse(
            items=[ledrec_pb2.BannerItem(item_id=i, score=s, sources=src) for i, s, src in items],
            unknown_items=unknown,
        )

    async def Recommend(self, request: ledrec_pb2.RecommendRequest, context: grpc.aio.ServicerContext):
        t0 = time.perf_counter()
        retriever = self.holder.current  # this request finishes on this model, whatever a reload does
        try:
            size = request.ByteSize()
            if size > self.max_request_bytes:
                raise RequestError(f"request of {size} bytes; at most {self.max_request_bytes} are accepted")
            rec = retriever.recommend(
                request.partition,
                list(request.item_ids),
                request.k,
                exclude_seen=request.exclude_seen,
                allowed_item_ids=list(request.allowed_item_ids) or None,
            )
        except RequestError as exc:
            self.metrics.requests.labels("INVALID_ARGUMENT").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        response = ledrec_pb2.RecommendResponse(
            items=[ledrec_pb2.ScoredItem(item_id=i, score=s) for i, s in zip(rec.item_ids, rec.scores, strict=True)],
            model_version=retriever.version,
            unknown_items=rec.unknown_items,
            cold_start=rec.cold_start,
        )
        m = self.metrics
        m.embed.observe(rec.timings["embed"])
        m.knn.observe(rec.timings["knn"])
        m.total.observe(time.perf_counter() - t0)
        m.requests.labels("OK").inc()
        if rec.unknown_items:
            m.unknown.inc(rec.unknown_items)
        if rec.cold_start:
            m.cold.inc()
        return response


def serve(
    config: ServeConfig,
    on_ready: Callable[[int, int | None], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run one server process until SIGTERM/SIGINT (or ``stop`` is set, for in-process use). Port 0 picks a
    free port; ``on_ready(grpc_port, metrics_port)`` is called once the server accepts requests.

    The server is gRPC's asyncio one: a request is handled on the event loop, without the hop to a handler
    thread (and the GIL hand-over) of the threaded server; the work itself is ~0.1 ms of numpy and hnswlib."""
    asyncio.run(_serve(config, on_ready, stop or threading.Event()))


async def _serve(
    config: ServeConfig, on_ready: Callable[[int, int | None], None] | None, stop: threading.Event
) -> None:
    metrics = Metrics()
    holder = ModelHolder(config.run_dir, config.retriever, metrics)
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1 if config.workers > 1 else 0),
            ("grpc.max_receive_message_length", 4 * config.max_request_bytes),
        ],
    )
    two_stage = None
    if (Path(holder.target[0]) / "system").is_dir():  # a two-stage directory: the Banner call too
        two_stage = load_system(holder.target[0])
        log.info("two-stage system loaded: Banner calls enabled")
    ledrec_pb2_grpc.add_RecommenderServicer_to_server(
        RecommenderService(holder, metrics, config.max_request_bytes, two_stage), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    address = f"{config.host}:{config.port}"
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind {address}")
    metrics_port = None
    if config.metrics_port is not None:
        http_server, _ = start_http_server(config.metrics_port, addr=config.host, registry=metrics.registry)
        metrics_port = http_server.server_port
    await server.start()
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving %s (model %s) on %s:%d", holder.target[0], holder.current.version, config.host, port)

    reload_requested = threading.Event()
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload_requested.set)
    if on_ready is not None:
        on_ready(port, metrics_port)
    last_poll = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.1)
        due = config.watch_s and time.monotonic() - last_poll >= config.watch_s
        if reload_requested.is_set() or (due and holder.changed()):
            reload_requested.clear()
            await asyncio.to_thread(holder.reload)  # loads beside the served model; requests keep flowing
        if due:
            last_poll = time.monotonic()
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.stop(grace=config.grace_s)
    if config.metrics_port is not None:
        http_server.shutdown()
    log.info("stopped")


def serve_workers(config: ServeConfig) -> None:
    """``config.workers`` processes on one port; signals are forwarded to them."""
    if config.workers <= 1:
        serve(config)
        return
    ctx = mp.get_context("spawn")
    procs = []
    for i in range(config.workers):
        metrics_port = None if config.metrics_port is None else config.metrics_port + i
        procs.append(ctx.Process(target=serve, args=(replace(config, metrics_port=metrics_port),), daemon=False))
    for p in procs:
        p.start()

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    for p in procs:
        p.join()


def _freeze_heap() -> None:
    """Move what is alive now (the model: a million-id lookup table is millions of objects) out of the
    cyclic collector's reach, so that no request waits for a full collection to walk it."""
    gc.collect()
    gc.freeze()


def _resolve(path: str) -> tuple[Path, int]:
    """What ``path`` points to now, and when its artifacts last changed (a rewrite in place counts too)."""
    real = Path(path).resolve()
    manifests = [real / "manifest.json", *real.glob("*/manifest.json")]
    return real, max((f.stat().st_mtime_ns for f in manifests if f.is_file()), default=0)
