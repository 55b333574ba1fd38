"""``ledrec serve``: the gRPC service (seed paper §6.2-§6.3), built never to answer wrong while healthy.

* ``ledrec.v1.Recommender/Recommend`` (``ledrec.proto``), the standard ``grpc.health.v1`` health service and
  (unless ``--no-reflection``) server reflection; binds 127.0.0.1 unless told otherwise; optional TLS and
  mutual TLS with gRPC's own credentials.
* A model serves only after it has been validated in full (checksums, shapes, finiteness, paths: see
  ``ledrec.export.mips``) and has answered a self-check per catalogue against exact scoring. Until then
  health is NOT_SERVING and Recommend answers UNAVAILABLE.
* Hot reload (the paper retrains daily, §6.3): SIGHUP, or a change of what the served path resolves to or of
  its files, loads the new model *beside* the old one and swaps one reference: a request in flight finishes
  on the model it started with, the next one gets the new model, none fails. A new model that fails
  validation or its self-check is refused: the old one keeps serving, the failure is counted and logged
  once, and it is retried only when the files change again. ``model_version`` in every response says which
  model answered.
* Every RPC is counted by method and final status code (``ledrec_requests_total``), undecodable ones
  included (INVALID_ARGUMENT); messages to clients are bounded and never carry internal exception text;
  client errors are logged at a limited rate.
* Processes: ``--workers N`` start N processes on one port (SO_REUSEPORT among themselves only: a per-port
  lock, held by the parent and inherited by its workers, refuses a second ``ledrec serve`` on the port);
  workers exit when their parent dies; worker i exposes metrics on ``metrics_port + i``.
* SIGTERM / SIGINT: health goes NOT_SERVING first; the server keeps answering what reaches it until nothing
  has been in flight for a moment (gRPC would otherwise cancel calls still queued in its core), at most
  ``--grace`` seconds, then closes its connections and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import inspect
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ledrec.config import option
from ledrec.errors import ConfigError
from ledrec.export import publish
from ledrec.io import ArtifactError
from ledrec.serve import ledrec_pb2
from ledrec.serve.loading import EXPORT, RUN, SERVING_DIR, load_retriever, locate
from ledrec.serve.ports import PortLock, reserve_port
from ledrec.serve.retriever import RequestError, Retriever, RetrieverConfig, clip

log = logging.getLogger(__name__)
SERVICE = ledrec_pb2.DESCRIPTOR.services_by_name["Recommender"].full_name
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# latency buckets from 20 µs to 0.5 s: the interesting range is 50 µs - 2 ms (the paper's p50 / p99)
BUCKETS = (2e-5, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 7.5e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5)
# drain: nothing started or finished for this long, nothing in flight: gRPC's queue is empty (a queued call is
# matched within a loop iteration once the loop is free; the chaos drain of 400 slow requests loses none)
QUIET_S = 0.1
CRASH_LOOP_S = 10.0  # a worker that dies this soon after its start is not restarted: the whole server exits


@dataclass
class ServeConfig:
    run_dir: str
    host: str = option("127.0.0.1", "address to bind (0.0.0.0 to accept remote clients)")
    port: int = option(50051, "gRPC port")
    workers: int = option(1, "processes sharing the port (use the number of cores)")
    metrics_host: str = option("127.0.0.1", "address of the Prometheus endpoint (independent of --host)")
    metrics: bool = option(True, "expose Prometheus metrics on --metrics-host:--metrics-port")
    metrics_port: int = option(
        9100, "Prometheus port (0: one the kernel picks, named in the ready line); worker i of N: this port + i"
    )
    watch_s: float = option(2.0, "seconds between checks of RUN_DIR for a new model (0: SIGHUP only)", "--watch")
    grace_s: float = option(5.0, "seconds a SIGTERM leaves accepted requests to finish", "--grace")
    max_request_bytes: int = option(
        256 * 1024, "larger requests get INVALID_ARGUMENT; above 4x this gRPC itself refuses (RESOURCE_EXHAUSTED)"
    )
    reflection: bool = option(True, "offer gRPC server reflection")
    tls_cert: str | None = option(None, "PEM certificate chain: serve TLS (with --tls-key)")
    tls_key: str | None = option(None, "PEM private key of --tls-cert")
    tls_client_ca: str | None = option(None, "PEM CA bundle: require client certificates it signed (mutual TLS)")
    max_concurrent_rpcs: int = option(1000, "RPCs in progress at once; more get RESOURCE_EXHAUSTED (0: no limit)")
    keepalive_time_s: float = option(60.0, "ping an idle connection after this many seconds", "--keepalive-time")
    keepalive_timeout_s: float = option(20.0, "close a connection whose ping is unanswered", "--keepalive-timeout")
    max_connection_idle_s: float = option(300.0, "close connections idle this long", "--max-connection-idle")
    max_connection_age_s: float = option(
        0.0, "close connections this old, gracefully (0: never)", "--max-connection-age"
    )
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    # set by the parent of --workers, not by users
    parent_pid: int | None = None  # stop when this process is gone
    ready_fd: int | None = None  # write one JSON line here once serving

    def validate(self) -> None:
        """ConfigError naming the flag, for any value that cannot work."""

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(0 <= self.port <= 65535, f"--port must be in 0..65535, not {self.port}")
        need(0 <= self.metrics_port <= 65535, f"--metrics-port must be in 0..65535, not {self.metrics_port}")
        need(1 <= self.workers <= 256, f"--workers must be in 1..256, not {self.workers}")
        need(self.watch_s >= 0 and self.grace_s >= 0, "--watch and --grace must be >= 0")
        need(self.max_request_bytes >= 1024, "--max-request-bytes must be >= 1024")
        need(self.max_concurrent_rpcs >= 0, "--max-concurrent-rpcs must be >= 0")
        need(self.keepalive_time_s > 0 and self.keepalive_timeout_s > 0, "--keepalive-time/-timeout must be > 0")
        need(self.max_connection_idle_s > 0 and self.max_connection_age_s >= 0, "connection limits must be > 0")
        need(bool(self.tls_cert) == bool(self.tls_key), "--tls-cert and --tls-key go together")
        need(not self.tls_client_ca or bool(self.tls_cert), "--tls-client-ca needs --tls-cert and --tls-key")
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            path = getattr(self, name)
            need(not path or Path(path).is_file(), f"--{name.replace('_', '-')}: no such file {path}")
        r = self.retriever
        need(r.exact_below >= 0, "--exact-below must be >= 0")
        need(r.max_history >= 1 and r.max_allowed >= 1, "--max-history and --max-allowed must be >= 1")
        need(int(r.index_params.get("ef_search", 1)) >= 1, "--ef must be >= 1")
        need(0.0 <= r.self_check_recall <= 1.0, "--self-check-recall must be in [0, 1]")
        need(r.index in ("hnswlib", "faiss", "usearch", "exact"), f"--index: unknown index {r.index!r}")

    def grpc_options(self) -> list[tuple[str, int]]:
        ms = lambda s: int(s * 1000)  # noqa: E731
        options = [
            ("grpc.so_reuseport", 1 if self.workers > 1 else 0),
            ("grpc.max_receive_message_length", 4 * self.max_request_bytes),
            ("grpc.keepalive_time_ms", ms(self.keepalive_time_s)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout_s)),
            ("grpc.max_connection_idle_ms", ms(self.max_connection_idle_s)),
        ]
        if self.max_connection_age_s:
            options += [("grpc.max_connection_age_ms", ms(self.max_connection_age_s))]
            options += [("grpc.max_connection_age_grace_ms", ms(self.grace_s))]
        return options


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.stage = Histogram(
            "ledrec_stage_seconds", "latency of one request stage", ["stage"], buckets=BUCKETS, registry=r
        )
        self.requests = Counter(
            "ledrec_requests", "RPCs by method and final gRPC status code", ["method", "code"], registry=r
        )
        self.unknown = Counter("ledrec_unknown_items", "history item ids the model does not know", registry=r)
        self.cold = Counter("ledrec_cold_start", "requests answered with the cold-start items", registry=r)
        self.reloads = Counter("ledrec_reloads", "model loads after the first, by result", ["result"], registry=r)
        self.cache = Counter("ledrec_index_cache", "graph cache at model load, by result", ["result"], registry=r)
        self.serving = Gauge("ledrec_serving", "1 while health says SERVING", registry=r)
        self.model = Gauge("ledrec_model", "the model answering (value 1), by version", ["version"], registry=r)
        self.embed, self.knn, self.total = (self.stage.labels(s) for s in ("user_embedding", "knn", "total"))
        self._counts: dict[tuple[str, str], Any] = {}

    def count(self, method: str, code: str) -> None:
        child = self._counts.get((method, code))
        if child is None:  # label lookups cost a lock and a dict each: keep the children
            child = self._counts[(method, code)] = self.requests.labels(method, code)
        child.inc()

    def now_serving(self, retriever: Retriever, previous: str | None) -> None:
        if previous is not None and previous != retriever.version:
            self.model.remove(previous)
        self.model.labels(retriever.version).set(1)
        for result in retriever.cache_events.values():
            self.cache.labels(result.split(":")[0]).inc()


class RateLimitedLog:
    """At most ``burst`` messages per ``window_s`` (per logger call site key); then one line saying how many
    were left out. A client that sends garbage ten thousand times a second costs ten log lines a minute."""

    def __init__(self, burst: int = 10, window_s: float = 60.0) -> None:
        self.burst, self.window_s = burst, window_s
        self._start, self._count, self._dropped = 0.0, 0, 0

    def log(self, level: int, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._start >= self.window_s:
            if self._dropped:
                log.warning("%d more client errors in the last %.0f s were not logged", self._dropped, self.window_s)
            self._start, self._count, self._dropped = now, 0, 0
        if self._count < self.burst:
            self._count += 1
            log.log(level, message, *args)
        else:
            self._dropped += 1


# ------------------------------------------------------------------------------------------ the model
class ModelHolder:
    """The served model; ``current`` is swapped in one assignment (atomic in CPython)."""

    def __init__(self, run_dir: str, config: RetrieverConfig, metrics: Metrics):
        self.run_dir, self.config, self.metrics = run_dir, config, metrics
        self._lock = threading.Lock()  # one load at a time
        self.current: Retriever | None = None
        self.loaded: tuple[Any, ...] | None = None  # signature of the files current was loaded from
        self.failed: tuple[Any, ...] | None = None  # signature of the files the last refused load read

    def load(self, first: bool = False) -> bool:
        """Load what ``run_dir`` points to now, validated and self-checked, and swap it in. The first load
        raises (the server must not start); a later one that fails keeps the old model, counts and logs
        the failure once, and is not retried until the files change."""
        with self._lock:
            signature = files_signature(self.run_dir)
            try:
                fresh = load_retriever(signature[0], self.config)  # the resolved path: errors name real files
                if self.current is not None and self.current.source == EXPORT and fresh.source == RUN:
                    raise ArtifactError(
                        f"{self.run_dir}: the served model came from a serving export, this target is a run "
                        f"directory without one ('{SERVING_DIR}/'); refusing it (run 'ledrec export')"
                    )
            except Exception as exc:
                if first:
                    raise
                self.failed = signature
                self.metrics.reloads.labels("failed").inc()
                detail = str(exc) if isinstance(exc, ArtifactError) else f"{type(exc).__name__}: {exc}"
                log.error("reload refused, still serving %s: %s", self.current.version, detail)  # type: ignore[union-attr]
                fresh = None
            if fresh is None:  # (outside the except block: its traceback held the refused arrays)
                _settle_heap()  # hand the refused load's memory back too (chaos: +300 MB per 16 refusals)
                return False
            previous = self.current.version if self.current is not None else None
            self.current, self.loaded, self.failed = fresh, signature, None
            self.metrics.now_serving(fresh, previous)
            _settle_heap()  # (the old model is unreferenced now, but for requests still finishing on it)
            if not first:
                self.metrics.reloads.labels("ok").inc()
            log.info("serving model %s from %s (%s)", fresh.version, Path(self.run_dir).resolve(), fresh.source)
            return True

    def changed(self) -> bool:
        """Whether the files differ from both the served model's and the last refused ones."""
        signature = files_signature(self.run_dir)
        return signature != self.loaded and signature != self.failed


def files_signature(path: str) -> tuple[Any, ...]:
    """What ``path`` resolves to and (name, size, mtime) of every file under it but the graph cache: any
    rewrite, in place or by a symlink switch, changes it."""
    real = Path(path).resolve()
    entries = []
    for root, dirs, files in os.walk(real):
        dirs[:] = sorted(d for d in dirs if d != "index-cache" and not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):  # atomic writes in progress
                continue
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(root, name))
                entries.append((os.path.relpath(os.path.join(root, name), real), st.st_size, st.st_mtime_ns))
        if len(entries) > 10_000:
            break
    return (str(real), tuple(entries))


class Catalogues:
    """What answers a request's partition. A run directory or an export: one :class:`ModelHolder`, whose
    model holds its catalogues itself. A published root (``ledrec pipeline``, :mod:`ledrec.export.publish`):
    one holder per catalogue, each following its ``current`` link, loaded, refused and swapped on its own;
    catalogues published after the start are picked up by the same watch."""

    def __init__(self, path: str, config: RetrieverConfig, metrics: Metrics) -> None:
        self.path, self.config, self.metrics = path, config, metrics
        self.routed = publish.is_published(path)
        self.holders: dict[str, ModelHolder] = {} if self.routed else {"": ModelHolder(path, config, metrics)}

    def load(self, first: bool = False) -> None:
        """Load every holder (at the start: all that have a model must load, and one must)."""
        if self.routed:
            self._discover()
            if not any(Path(h.run_dir).exists() for h in self.holders.values()):
                raise ArtifactError(f"{self.path}: no catalogue has a published version yet")
        for holder in self.holders.values():
            if first and self.routed and not Path(holder.run_dir).exists():
                continue  # registered, nothing published yet: picked up when it is
            holder.load(first)

    def reload(self, everything: bool = False) -> None:
        """Reload the holders whose files changed (all of them with ``everything``: SIGHUP)."""
        if self.routed:
            for holder in self._discover():
                if Path(holder.run_dir).exists():
                    holder.load()
        for holder in self.holders.values():
            if self.routed and not Path(holder.run_dir).exists():
                continue  # a catalogue registered before its first version
            if everything or holder.changed():
                holder.load()

    def _discover(self) -> list[ModelHolder]:
        try:
            folders = publish.catalogues(self.path)
        except ArtifactError as exc:
            if not self.holders:
                raise
            log.error("%s: %s; serving the catalogues known", self.path, exc)
            return []
        fresh = []
        for name, folder in folders.items():
            if name not in self.holders:
                self.holders[name] = ModelHolder(str(folder / publish.CURRENT), self.config, self.metrics)
                fresh.append(self.holders[name])
        return fresh

    def route(self, partition: str) -> Retriever | None:
        """The model that answers ``partition`` (None: not loaded yet); RequestError for an unknown one."""
        if not self.routed:
            return self.holders[""].current
        holder = self.holders.get(partition)
        if holder is None and not partition and len(self.holders) == 1:  # one catalogue: need not be named
            holder = next(iter(self.holders.values()))
        if holder is None:
            raise RequestError(f"unknown partition {clip(partition)}; this server has {len(self.holders)} catalogues")
        return holder.current

    def versions(self) -> str | dict[str, str]:
        """The model version (one holder), or catalogue → version."""
        if not self.routed:
            return self.holders[""].current.version  # type: ignore[union-attr]
        return {name: h.current.version for name, h in sorted(self.holders.items()) if h.current is not None}


def _settle_heap() -> None:
    """After a (re)load: collect, hand freed memory back to the OS, then move what is alive now (the model:
    a million-id lookup table is millions of objects) out of the cyclic collector's reach, so that no request
    waits for a full collection to walk it. Without the trim, glibc kept the replaced models' memory: four
    reloads of the Gowalla export grew one process from 396 to 641 MB (one model alive; 386 MB after trim)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    gc.freeze()


# ------------------------------------------------------------------------------------------ the RPCs
class ClientError(Exception):
    """End an RPC with this status and message (bounded, ours: never an internal exception's text)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message[:500]


class Instrumented:
    """Stands in for the server when servicers are registered, and wraps every method handler: requests
    arrive as bytes and are decoded here (garbage: INVALID_ARGUMENT, not gRPC's UNKNOWN and a traceback);
    oversize requests are refused before decoding; every RPC is counted by method and final code; an
    unexpected exception becomes INTERNAL with no detail for the client and a rate-limited log line."""

    def __init__(self, server: grpc.aio.Server, metrics: Metrics, max_request_bytes: int) -> None:
        self.server, self.metrics, self.max_request_bytes = server, metrics, max_request_bytes
        self.in_flight, self.last_activity = 0, 0.0  # unary RPCs: what a drain waits for
        self.client_log = RateLimitedLog()
        self._services: set[str] = set()

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Generated code registers twice: a generic handler and the method table. The table is wrapped."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        if service in self._services:  # ledrec_pb2_grpc registers the same table twice
            return
        self._services.add(service)
        wrapped = {name: self._wrap(f"{service}/{name}", h) for name, h in handlers.items()}
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        self.server.add_registered_method_handlers(service, wrapped)

    def _decode(self, method: str, deserialize: Callable[[bytes], Any] | None, raw: bytes) -> Any:
        if len(raw) > self.max_request_bytes:
            raise ClientError(
                grpc.StatusCode.INVALID_ARGUMENT, f"request of {len(raw)} bytes; at most {self.max_request_bytes}"
            )
        try:
            return deserialize(raw) if deserialize else raw
        except Exception:  # protobuf's DecodeError, or anything a hostile payload makes a parser raise
            raise ClientError(
                grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {method} message"
            ) from None

    async def _fail(self, method: str, exc: BaseException, context: grpc.aio.ServicerContext) -> None:
        """Count, log (rate-limited) and abort the RPC for ``exc`` (the abort raises)."""
        if isinstance(exc, ClientError):
            self.client_log.log(logging.INFO, "%s: %s: %s", method, exc.code.name, exc.message)
            code, message = exc.code, exc.message
        else:
            self.client_log.log(logging.ERROR, "%s failed: %s: %s", method, type(exc).__name__, exc)
            code, message = grpc.StatusCode.INTERNAL, "internal error"
        self.metrics.count(method, code.name)
        await context.abort(code, message)

    @contextlib.asynccontextmanager
    async def _accounted(self, method: str, context: grpc.aio.ServicerContext) -> Any:
        """Count a streaming RPC by its final code, and turn an unexpected exception into INTERNAL. (The
        unary path does the same inline: it is the hot one.)"""
        try:
            yield
        except (grpc.aio.AbortError, asyncio.CancelledError):
            self.metrics.count(method, _code_name(context, "CANCELLED"))
            raise
        except Exception as exc:
            await self._fail(method, exc, context)
        else:
            self.metrics.count(method, _code_name(context))

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        deserialize = handler.request_deserializer
        if not handler.request_streaming and not handler.response_streaming:
            behaviour = handler.unary_unary

            async def unary_unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
                self.in_flight += 1
                self.last_activity = time.monotonic()
                try:
                    response = await behaviour(self._decode(method, deserialize, raw), context)
                except grpc.aio.AbortError:  # the servicer aborted with its own code (health: NOT_FOUND)
                    self.metrics.count(method, _code_name(context))
                    raise
                except asyncio.CancelledError:
                    self.metrics.count(method, "CANCELLED")
                    raise
                except Exception as exc:
                    await self._fail(method, exc, context)
                else:
                    self.metrics.count(method, _code_name(context))
                    return response
                finally:
                    self.in_flight -= 1
                    self.last_activity = time.monotonic()  # (a request can take longer than QUIET_S)

            return handler._replace(request_deserializer=None, unary_unary=unary_unary)
        kind = (
            ("stream" if handler.request_streaming else "unary")
            + "_"
            + ("stream" if handler.response_streaming else "unary")
        )
        behaviour = getattr(handler, kind)

        def prepare(arg: Any) -> Any:
            if not handler.request_streaming:
                return self._decode(method, deserialize, arg)

            async def decoded() -> Any:
                async for raw in arg:
                    yield self._decode(method, deserialize, raw)

            return decoded()

        if inspect.isasyncgenfunction(behaviour):  # reflection: an async generator

            async def streaming_gen(arg: Any, context: grpc.aio.ServicerContext) -> Any:
                async with self._accounted(method, context):
                    async for response in behaviour(prepare(arg), context):
                        yield response

            return handler._replace(request_deserializer=None, **{kind: streaming_gen})

        async def streaming(arg: Any, context: grpc.aio.ServicerContext) -> Any:  # health Watch: context.write
            async with self._accounted(method, context):
                return await behaviour(prepare(arg), context)

        return handler._replace(request_deserializer=None, **{kind: streaming})


def _code_name(context: grpc.aio.ServicerContext, default: str = "OK") -> str:
    code = context.code()
    return default if code is None else code.name


class RecommenderService:
    """The ``ledrec.v1.Recommender`` methods, on decoded requests (decoding and counting: :class:`Instrumented`)."""

    def __init__(self, catalogues: Catalogues, metrics: Metrics) -> None:
        self.catalogues, self.metrics = catalogues, metrics
        self.two_stage: Any = None  # a SavedSystem when the served directory is a two-stage one

    async def Recommend(self, request: ledrec_pb2.RecommendRequest, context: grpc.aio.ServicerContext) -> Any:
        t0 = time.perf_counter()
        try:
            retriever = self.catalogues.route(request.partition)  # finishes on this model, whatever a reload does
        except RequestError as exc:
            raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        if retriever is None:
            raise ClientError(grpc.StatusCode.UNAVAILABLE, "no model has passed its self-check yet")
        try:
            rec = retriever.recommend(
                request.partition,
                request.item_ids,
                request.k,
                exclude_seen=request.exclude_seen,
                allowed_item_ids=request.allowed_item_ids or None,
            )
        except RequestError as exc:
            raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        response = ledrec_pb2.RecommendResponse(
            model_version=retriever.version, unknown_items=rec.unknown_items, cold_start=rec.cold_start
        )
        add = response.items.add  # half the cost of a list of ScoredItem(...) (7 vs 15 µs for 20, timeit)
        for item, score in zip(rec.item_ids, rec.scores, strict=True):
            add(item_id=item, score=score)
        m = self.metrics
        m.embed.observe(rec.timings["embed"])
        m.knn.observe(rec.timings["knn"])
        m.total.observe(time.perf_counter() - t0)
        if rec.unknown_items:
            m.unknown.inc(rec.unknown_items)
        if rec.cold_start:
            m.cold.inc()
        return response

    async def Banner(self, request: ledrec_pb2.BannerRequest, context: grpc.aio.ServicerContext) -> Any:
        if self.two_stage is None:
            raise ClientError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this server has no two-stage system: serve a directory of 'ledrec simulate ab --save-system'",
            )
        max_history = self.catalogues.config.max_history
        if len(request.item_ids) > max_history:
            raise ClientError(
                grpc.StatusCode.INVALID_ARGUMENT, f"{len(request.item_ids)} history items; at most {max_history}"
            )
        try:
            items, unknown = self.two_stage.banner(request.merchant, list(request.item_ids), request.size)
        except ValueError as exc:  # the system's own refusals (unknown merchant, size): bounded below
            raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        return ledrec_pb2.BannerResponse(
            items=[ledrec_pb2.BannerItem(item_id=i, score=s, sources=src) for i, s, src in items],
            unknown_items=unknown,
        )


def _register(registrar: Instrumented, service: RecommenderService, reflection_on: bool) -> Any:
    from ledrec.serve import ledrec_pb2_grpc

    ledrec_pb2_grpc.add_RecommenderServicer_to_server(service, registrar)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
    if reflection_on:
        from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
        from grpc_reflection.v1alpha._async import ReflectionServicer

        names = (SERVICE, HEALTH, reflection.SERVICE_NAME)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(ReflectionServicer(names), registrar)
    return health_servicer


# ------------------------------------------------------------------------------------------ one process
def serve(
    config: ServeConfig,
    on_ready: Callable[[int, int | None], None] | None = None,
    stop: threading.Event | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Run one server process until SIGTERM/SIGINT (or ``stop`` is set, for in-process use). Port 0 picks a
    free port; ``on_listening(grpc_port)`` is called once it listens (health NOT_SERVING: the model is still
    loading), ``on_ready(grpc_port, metrics_port)`` once a model has passed its self-check and health says
    SERVING. A model that cannot serve raises ArtifactError before that.

    The server is gRPC's asyncio one: a request is handled on the event loop, without the hop to a handler
    thread (and the GIL hand-over) of the threaded server; the work itself is ~0.1 ms of numpy and hnswlib."""
    asyncio.run(_serve(config, on_ready, stop or threading.Event(), on_listening))


async def _serve(
    config: ServeConfig,
    on_ready: Callable[[int, int | None], None] | None,
    stop: threading.Event,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    metrics = Metrics()
    catalogues = Catalogues(config.run_dir, config.retriever, metrics)
    server = grpc.aio.server(options=config.grpc_options(), maximum_concurrent_rpcs=config.max_concurrent_rpcs or None)
    registrar = Instrumented(server, metrics, config.max_request_bytes)
    service = RecommenderService(catalogues, metrics)
    health_servicer = _register(registrar, service, config.reflection)
    port = _bind(server, config)
    http_server = None
    metrics_port = None
    if config.metrics:
        try:
            http_server, _ = start_http_server(config.metrics_port, addr=config.metrics_host, registry=metrics.registry)
        except OSError as exc:
            raise ConfigError(
                f"--metrics-port: cannot bind {config.metrics_host}:{config.metrics_port} ({exc})"
            ) from None
        metrics_port = http_server.server_port
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    if on_listening is not None:
        on_listening(port)
    try:
        await asyncio.to_thread(catalogues.load, True)  # health answers NOT_SERVING meanwhile
        if (Path(config.run_dir) / "system").is_dir():  # a two-stage directory: the Banner call too
            from ledrec.twostage.artifact import load_system

            service.two_stage = load_system(config.run_dir)
            log.info("two-stage system loaded: Banner calls enabled")
    except BaseException:
        await server.stop(0)
        if http_server is not None:
            http_server.shutdown()
            http_server.server_close()
        raise
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics.serving.set(1)
    # (no local reference to the model: this coroutine lives as long as the server, and a reference here
    # kept the first model in memory after every reload — found by the chaos suite's RSS column)
    version = catalogues.versions()
    log.info("serving %s (model %s) on %s:%d", config.run_dir, version, config.host, port)

    reload_requested = threading.Event()
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload_requested.set)
    if config.ready_fd is not None:
        ready = {"port": port, "metrics_port": metrics_port, "model_version": version, "pid": os.getpid()}
        os.write(config.ready_fd, (json.dumps(ready) + "\n").encode())
    if on_ready is not None:
        on_ready(port, metrics_port)
    last_poll = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.1)
        if config.parent_pid is not None and os.getppid() != config.parent_pid:
            log.warning("the parent process %d is gone: stopping", config.parent_pid)
            break
        due = config.watch_s and time.monotonic() - last_poll >= config.watch_s
        if reload_requested.is_set() or due:
            everything = reload_requested.is_set()
            reload_requested.clear()
            # loads beside the served models; requests keep flowing
            await asyncio.to_thread(catalogues.reload, everything)
        if due:
            last_poll = time.monotonic()
    # shutdown: say so first, then answer what is queued, then close
    deadline = time.monotonic() + config.grace_s
    try:
        await health_servicer.enter_graceful_shutdown()
        metrics.serving.set(0)
        while time.monotonic() < deadline and (
            registrar.in_flight or time.monotonic() - registrar.last_activity < QUIET_S
        ):
            await asyncio.sleep(0.01)
    finally:
        await server.stop(max(0.0, deadline - time.monotonic()))
        if http_server is not None:
            http_server.shutdown()
            http_server.server_close()
    log.info("stopped")


def _bind(server: grpc.aio.Server, config: ServeConfig) -> int:
    address = f"{config.host}:{config.port}"
    try:
        if config.tls_cert:
            key, cert = Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes()  # type: ignore[arg-type]
            ca = Path(config.tls_client_ca).read_bytes() if config.tls_client_ca else None
            credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=bool(ca))
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc: "Failed to bind to address"
        raise ConfigError(f"cannot bind {address} ({exc}): is another server on this port?") from None
    if port == 0:
        raise ConfigError(f"cannot bind {address}: is another server on this port?")
    return port


# ------------------------------------------------------------------------------------------ processes
def check(config: ServeConfig) -> dict[str, Any]:
    """``ledrec serve --check``: what serving would load, validated and self-checked, without binding a port
    (ArtifactError if it would not serve). Also the pre-publication check of a new export."""
    config.validate()
    if publish.is_published(config.run_dir):  # one check per catalogue's current version
        catalogues = publish.catalogues(config.run_dir)
        live = {name: folder / publish.CURRENT for name, folder in catalogues.items()}
        checks = {name: check(replace(config, run_dir=str(path))) for name, path in live.items() if path.exists()}
        if not checks:
            raise ArtifactError(f"{config.run_dir}: no catalogue has a published version yet")
        return {"ok": True, "published": config.run_dir, "catalogues": checks}
    t0 = time.perf_counter()
    retriever = load_retriever(config.run_dir, config.retriever, check=False)
    recalls = retriever.self_check()
    partitions = {
        name: {
            "items": len(items),
            "index": retriever.indexes[name].kind,
            "cache": retriever.cache_events.get(name, "none"),
            "self_check_recall@10": round(recalls[name], 4),
        }
        for name, items in retriever.partitions.items()
    }
    return {
        "ok": True,
        "model_version": retriever.version,
        "content_version": retriever.model.version,
        "source": retriever.source,
        "items": len(retriever.model.item_ids),
        "dim": retriever.model.dim,
        "partitions": partitions,
        "load_s": round(time.perf_counter() - t0, 3),
    }


def run(config: ServeConfig, out: Any = None) -> int:
    """``ledrec serve``: one process, or a parent supervising ``config.workers``. Prints one JSON line to
    ``out`` (stdout) once every process serves. Returns the exit status."""
    config.validate()
    out = out or sys.stdout
    if config.workers == 1:
        if config.port:
            lock = PortLock(config.port)  # noqa: F841 (held for the life of the process)

        def ready(port: int, metrics_port: int | None) -> None:
            print(json.dumps({"serving": config.run_dir, "address": f"{config.host}:{port}", "workers": 1,
                              "metrics_ports": [metrics_port]}), file=out, flush=True)  # fmt: skip

        serve(config, on_ready=ready)
        return 0
    return _supervise(config, out)


def _supervise(config: ServeConfig, out: Any) -> int:
    """Start the workers (the first alone: it builds and caches the graphs, the others load them), forward
    signals, restart a worker that dies, and exit with the first one's status if it dies at start-up."""
    # a missing or foreign directory: one error, not one per worker
    publish.catalogues(config.run_dir) if publish.is_published(config.run_dir) else locate(config.run_dir)
    reserve = reserve_port(config.host, config.port)  # holds the port (and picks it, for port 0)
    port = reserve.getsockname()[1]
    lock = PortLock(port)
    ready_r, ready_w = os.pipe()
    stopping = threading.Event()
    procs: list[subprocess.Popen | None] = [None] * config.workers
    started = [0.0] * config.workers

    def start(i: int) -> None:
        metrics_port = config.metrics_port and config.metrics_port + i
        worker = replace(config, port=port, metrics_port=metrics_port, parent_pid=os.getpid(), ready_fd=ready_w)
        level = str(logging.getLogger().getEffectiveLevel())
        cmd = [sys.executable, "-m", "ledrec.serve.worker", json.dumps(asdict(worker)), level]
        procs[i] = subprocess.Popen(cmd, pass_fds=(lock.fd, ready_w))
        started[i] = time.monotonic()

    def forward(signum: int, _frame: Any) -> None:
        if signum != signal.SIGHUP:
            stopping.set()
        for p in procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM if signum != signal.SIGHUP else signal.SIGHUP)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    readies: list[dict[str, Any]] = []
    status = 0
    try:
        start(0)
        while not stopping.is_set():
            if len(readies) == 1 and procs[1] is None:
                for i in range(1, config.workers):
                    start(i)
            if select.select([ready_r], [], [], 0.1)[0]:
                for line in os.read(ready_r, 65536).decode().splitlines():
                    readies.append(json.loads(line))
                    if len(readies) == config.workers:
                        metrics_ports = [r["metrics_port"] for r in readies]
                        print(json.dumps({"serving": config.run_dir, "address": f"{config.host}:{port}",
                                          "workers": config.workers, "metrics_ports": metrics_ports}),
                              file=out, flush=True)  # fmt: skip
            for i, p in enumerate(procs):
                if p is None or p.poll() is None or stopping.is_set():
                    continue
                if time.monotonic() - started[i] < CRASH_LOOP_S:
                    # (the worker said why on stderr: one line, not two)
                    log.info("worker %d exited with status %d at start-up: stopping", i, p.returncode)
                    status = p.returncode or 1
                    forward(signal.SIGTERM, None)
                    break
                log.error("worker %d exited with status %d: restarting it", i, p.returncode)
                start(i)
    finally:
        deadline = time.monotonic() + config.grace_s + 5
        for p in procs:
            if p is not None:
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
        reserve.close()
    return status


def worker_main(argv: list[str]) -> int:
    """Entry of one worker process (``python -m ledrec.serve.worker CONFIG_JSON``)."""
    raw = json.loads(argv[0])
    config = ServeConfig(**{**raw, "retriever": RetrieverConfig(**raw["retriever"])})
    logging.basicConfig(
        level=int(argv[1]) if len(argv) > 1 else logging.WARNING,
        format=f"%(asctime)s %(name)s[worker {os.getpid()}]: %(message)s",
        stream=sys.stderr,
    )
    try:
        serve(config)
    except (ArtifactError, ConfigError) as exc:
        print(f"ledrec serve: error: {exc}", file=sys.stderr)
        return 2
    return 0
