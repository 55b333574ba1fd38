"""``ledrec serve``: the gRPC service (seed paper §6.2-§6.3), built never to answer wrong while healthy.

In parts, as TensorFlow Serving is:

* the **source** (:mod:`ledrec.serve.source`): what is published and when it changed — an export, a run or
  saved model, or a published root with one model per catalogue at its ``current`` link;
* the **loader** (:mod:`ledrec.serve.loading`): validate every array, build or verify the graphs, self-check
  the answers against exact scoring — for the native front, of the C++ model made from what was verified
  (:mod:`ledrec.serve.native`);
* the **manager** (:mod:`ledrec.serve.manager`): the swap policy — a new model loads beside the served one
  and replaces it in one assignment; one that fails is refused, counted, logged once and retried only when
  the source changes again;
* the **service**, the one part that differs between the fronts: :mod:`ledrec.serve.native_front` (C++,
  gRPC's C++ core and hnswlib, the default where it is built) or :mod:`ledrec.serve.python_front`
  (grpc.aio; also the two-stage Banner call and the faiss / usearch indexes);
* the **supervisor** (:mod:`ledrec.serve.supervisor`): processes, the per-port lock, the ready line.

This module runs one process (:func:`serve`): the service bound (health NOT_SERVING), the models loaded, health
SERVING, then the control loop — the source watched every ``--watch`` seconds, SIGHUP reloads everything,
SIGTERM/SIGINT drains: health NOT_SERVING first, the server answers what reaches it until nothing has been in
flight for a moment (at most ``--grace`` seconds), then closes. Binds 127.0.0.1 unless told otherwise; TLS
and mutual TLS with gRPC's own credentials; Prometheus metrics under the same names on both fronts.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from prometheus_client import start_http_server

from ledrec.errors import ConfigError
from ledrec.io import ArtifactError
from ledrec.serve import native
from ledrec.serve.config import ServeConfig
from ledrec.serve.loading import load_retriever, load_servable
from ledrec.serve.manager import Manager
from ledrec.serve.metrics import Metrics
from ledrec.serve.source import Source
from ledrec.serve.supervisor import run

__all__ = ["ServeConfig", "check", "choose_front", "run", "serve"]
log = logging.getLogger(__name__)


def choose_front(config: ServeConfig) -> tuple[str, str | None]:
    """The front that serves (``native`` or ``python``) and, when ``--front auto`` falls back to Python,
    why. ``--front native`` where it cannot serve is a ConfigError saying why."""
    if config.front == "python":
        return "python", None
    why = native.WHY_NOT
    if why is None and config.retriever.index not in native.NATIVE_INDEXES:
        why = f"--index {config.retriever.index} is searched by the Python front only"
    if why is None and Source(config.run_dir).two_stage:
        why = f"{config.run_dir} is a two-stage system, whose Banner call the Python front serves"
    if why is None:
        return "native", None
    if config.front == "native":
        raise ConfigError(f"--front native: {why}")
    return "python", why


def make_front(config: ServeConfig) -> Any:
    if config.front == "native":
        from ledrec.serve.native_front import NativeFront

        return NativeFront(config)
    from ledrec.serve.python_front import PythonFront

    return PythonFront(config)


def serve(
    config: ServeConfig,
    on_ready: Callable[[int, int | None], None] | None = None,
    stop: threading.Event | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Run one server process until SIGTERM/SIGINT (or ``stop`` is set, for in-process use). Port 0 picks a
    free port; ``on_listening(grpc_port)`` is called once it listens (health NOT_SERVING: the model is still
    loading), ``on_ready(grpc_port, metrics_port)`` once every model has passed its self-check and health says
    SERVING. A model that cannot serve raises ArtifactError before that. ``config.front``: ``auto`` is
    decided here (:func:`choose_front`)."""
    if config.front == "auto":
        config = replace(config, front=choose_front(config)[0])
    stop = stop or threading.Event()
    front = make_front(config)
    source = Source(config.run_dir)
    metrics = Metrics(native=getattr(front, "server", None) if config.front == "native" else None)
    manager = Manager(source, load_servable(config.retriever, config.front), metrics, on_change=front.on_change)
    front.attach(manager, metrics)
    port = front.start()  # bound; health NOT_SERVING until the models have loaded
    http_server, metrics_port = None, None
    try:
        if config.metrics:
            try:
                http_server, _ = start_http_server(
                    config.metrics_port, addr=config.metrics_host, registry=metrics.registry
                )
            except OSError as exc:
                raise ConfigError(
                    f"--metrics-port: cannot bind {config.metrics_host}:{config.metrics_port} ({exc})"
                ) from None
            metrics_port = http_server.server_port
        if on_listening is not None:
            on_listening(port)
        manager.start()
        if source.two_stage:
            front.serve_banner(config.run_dir)
    except BaseException:
        front.stop(0.0)
        _close(http_server)
        raise
    front.set_serving(True)
    metrics.serving.set(1)
    version = manager.versions()
    log.info("serving %s (model %s) on %s:%d, %s front", config.run_dir, version, config.host, port, front.name)
    reload_requested = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: reload_requested.set())
    if config.ready_fd is not None:
        ready = {"port": port, "metrics_port": metrics_port, "model_version": version, "pid": os.getpid()}
        os.write(config.ready_fd, (json.dumps(ready) + "\n").encode())
    if on_ready is not None:
        on_ready(port, metrics_port)
    del version  # (no reference to a model here: this frame lives as long as the server)
    try:
        _control(config, manager, stop, reload_requested)
    finally:
        # shutdown: say so first, then answer what is queued, then close
        deadline = time.monotonic() + config.grace_s
        front.enter_shutdown()
        metrics.serving.set(0)
        while time.monotonic() < deadline and front.busy():
            time.sleep(0.01)
        front.stop(max(0.0, deadline - time.monotonic()))
        _close(http_server)
        log.info("stopped")


def _control(config: ServeConfig, manager: Manager, stop: threading.Event, reload_requested: threading.Event) -> None:
    """The control loop: watch the source (loads happen beside the served models; requests keep flowing),
    reload everything on SIGHUP, stop on SIGTERM / SIGINT or when the parent of a worker is gone."""
    last_poll = time.monotonic()
    while not stop.wait(0.1):
        if config.parent_pid is not None and os.getppid() != config.parent_pid:
            log.warning("the parent process %d is gone: stopping", config.parent_pid)
            return
        due = config.watch_s and time.monotonic() - last_poll >= config.watch_s
        if reload_requested.is_set() or due:
            everything = reload_requested.is_set()
            reload_requested.clear()
            manager.poll(everything)
        if due:
            last_poll = time.monotonic()


def _close(http_server: Any) -> None:
    if http_server is not None:
        http_server.shutdown()
        http_server.server_close()


def check(config: ServeConfig) -> dict[str, Any]:
    """``ledrec serve --check``: what serving would load, validated and self-checked on the front that would
    serve it, without binding a port (ArtifactError if it would not serve). Also the pre-publication check
    of a new export."""
    config.validate()
    front, why = choose_front(config)
    source = Source(config.run_dir)
    if source.routed:  # one check per catalogue's current version
        live = {name: target for name, target in source.targets().items() if target.exists()}
        checks = {name: _check_one(replace(config, run_dir=str(path)), front) for name, path in live.items()}
        if not checks:
            raise ArtifactError(f"{config.run_dir}: no catalogue has a published version yet")
        return {"ok": True, "published": config.run_dir, "front": front, "why_not_native": why, "catalogues": checks}
    return {**_check_one(config, front), "why_not_native": why}


def _check_one(config: ServeConfig, front: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    retriever = load_retriever(config.run_dir, config.retriever, check=False)
    recalls = retriever.self_check()
    if front == "native":
        recalls = native.load(retriever).recalls  # the C++ answers, checked the same way
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
        "front": front,
        "model_version": retriever.version,
        "content_version": retriever.model.version,
        "source": retriever.source,
        "items": len(retriever.model.item_ids),
        "dim": retriever.model.dim,
        "partitions": partitions,
        "load_s": round(time.perf_counter() - t0, 3),
    }
