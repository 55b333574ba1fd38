"""The Python front: the service (request → answer) on gRPC's asyncio server, in a thread of its own.

Requests arrive as bytes and are decoded here (garbage: INVALID_ARGUMENT, not gRPC's UNKNOWN and a
traceback); oversize requests are refused before decoding; every RPC is counted by method and final code; an
unexpected exception becomes INTERNAL with no detail for the client and a rate-limited log line. The manager
says which model answers (:meth:`~ledrec.serve.manager.Manager.route`); the request path is
:meth:`~ledrec.serve.retriever.Retriever.recommend`. Also serves the two-stage ``Banner`` call and every index
of :mod:`ledrec.index`.

The server is gRPC's asyncio one: a request is handled on the event loop, without the hop to a handler thread
(and the GIL hand-over) of the threaded server; the work itself is ~0.1 ms of numpy and hnswlib.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ledrec.errors import ConfigError
from ledrec.serve import ledrec_pb2
from ledrec.serve.config import ServeConfig
from ledrec.serve.manager import Manager
from ledrec.serve.metrics import Metrics
from ledrec.serve.retriever import NotServedError, RequestError, UnknownItemError

log = logging.getLogger(__name__)
SERVICE = ledrec_pb2.DESCRIPTOR.services_by_name["Recommender"].full_name
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# drain: nothing started or finished for this long, nothing in flight: gRPC's queue is empty (a queued call is
# matched within a loop iteration once the loop is free; the chaos drain of 400 slow requests loses none)
QUIET_S = 0.1


class PythonFront:
    """The service on grpc.aio, its event loop in a thread of its own; the control plane (the caller's
    thread) starts, marks health, drains and stops it."""

    name = "python"

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ledrec-grpc-aio", daemon=True)
        self.registrar: Instrumented | None = None
        self.service: RecommenderService | None = None

    def attach(self, manager: Manager, metrics: Metrics) -> None:
        self.manager, self.metrics = manager, metrics

    def on_change(self, manager: Manager) -> None:
        """(Each request asks the manager: nothing to hand over.)"""

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def start(self) -> int:
        """Bind and serve (health NOT_SERVING); the port bound."""
        self._thread.start()
        return self._run(self._start())

    async def _start(self) -> int:
        config = self.config
        self.server = grpc.aio.server(
            options=config.grpc_options(), maximum_concurrent_rpcs=config.max_concurrent_rpcs or None
        )
        self.registrar = Instrumented(self.server, self.metrics, config.max_request_bytes)
        self.service = RecommenderService(self.manager, self.metrics, config.retriever.max_history)
        self.health = _register(self.registrar, self.service, config.reflection)
        port = _bind(self.server, config)
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        return port

    def serve_banner(self, directory: str) -> None:
        """A two-stage directory: the Banner call too."""
        from ledrec.twostage.artifact import load_system

        self.service.two_stage = load_system(directory)  # type: ignore[union-attr]
        log.info("two-stage system loaded: Banner calls enabled")

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING

        async def mark() -> None:
            for name in ("", SERVICE):
                await self.health.set(name, status)

        self._run(mark())

    def enter_shutdown(self) -> None:
        self._run(self.health.enter_graceful_shutdown())

    def busy(self) -> bool:
        """Something in flight, or something started or finished a moment ago (gRPC may still be queueing)."""
        r = self.registrar
        return r is not None and (r.in_flight > 0 or time.monotonic() - r.last_activity < QUIET_S)

    def stop(self, grace_s: float) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # (never started)
                self._run(self.server.stop(grace_s))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()


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

    def __init__(self, manager: Manager, metrics: Metrics, max_history: int) -> None:
        self.manager, self.metrics, self.max_history = manager, metrics, max_history
        self.two_stage: Any = None  # a SavedSystem when the served directory is a two-stage one

    async def Recommend(self, request: ledrec_pb2.RecommendRequest, context: grpc.aio.ServicerContext) -> Any:
        t0 = time.perf_counter()
        try:
            retriever = self.manager.route(request.partition)  # finishes on this model, whatever a reload does
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

    async def Similar(self, request: ledrec_pb2.SimilarRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            retriever = self.manager.route(request.partition)
            if retriever is None:
                raise ClientError(grpc.StatusCode.UNAVAILABLE, "no model has passed its self-check yet")
            found = retriever.similar(request.partition, request.item_id, request.k)
        except UnknownItemError as exc:
            raise ClientError(grpc.StatusCode.NOT_FOUND, str(exc)) from None
        except NotServedError as exc:
            raise ClientError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        except RequestError as exc:
            raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        response = ledrec_pb2.SimilarResponse(model_version=retriever.version)
        add = response.items.add
        for item, score in zip(found.item_ids, found.scores, strict=True):
            add(item_id=item, score=score)
        return response

    async def Banner(self, request: ledrec_pb2.BannerRequest, context: grpc.aio.ServicerContext) -> Any:
        if self.two_stage is None:
            raise ClientError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this server has no two-stage system: serve a directory of 'ledrec simulate ab --save-system'",
            )
        max_history = self.max_history
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
