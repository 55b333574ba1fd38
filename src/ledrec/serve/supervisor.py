"""The process supervisor of ``ledrec serve``: one process, or a parent and ``--workers`` processes on one
port (SO_REUSEPORT among themselves only: a per-port lock, held by the parent and inherited by its workers,
refuses a second ``ledrec serve`` on the port); workers exit when their parent dies, a worker that dies later is
restarted, one that dies at start-up stops the server with its status; worker i exposes metrics on
``metrics_port + i``. One JSON line on stdout once every process serves: the address, the front, the metrics
ports. The same for both fronts (:func:`ledrec.serve.server.serve` runs one process)."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from typing import Any

from ledrec.errors import ConfigError
from ledrec.io import ArtifactError
from ledrec.serve.config import ServeConfig
from ledrec.serve.loading import locate
from ledrec.serve.ports import PortLock, reserve_port
from ledrec.serve.retriever import RetrieverConfig
from ledrec.serve.source import Source

log = logging.getLogger(__name__)
CRASH_LOOP_S = 10.0  # a worker that dies this soon after its start is not restarted: the whole server exits


def run(config: ServeConfig, out: Any = None) -> int:
    """``ledrec serve``: one process, or a parent supervising ``config.workers``. Prints one JSON line to
    ``out`` (stdout) once every process serves. Returns the exit status."""
    from ledrec.serve.server import choose_front, serve

    config.validate()
    out = out or sys.stdout
    front, why = choose_front(config)
    if why:
        print(f"ledrec serve: note: serving on the Python front: {why}", file=sys.stderr)
    config = replace(config, front=front)
    if config.workers == 1:
        if config.port:
            lock = PortLock(config.port)  # noqa: F841 (held for the life of the process)

        def ready(port: int, metrics_port: int | None) -> None:
            print(json.dumps({"serving": config.run_dir, "address": f"{config.host}:{port}", "front": front,
                              "workers": 1, "metrics_ports": [metrics_port]}), file=out, flush=True)  # fmt: skip

        serve(config, on_ready=ready)
        return 0
    return _supervise(config, out)


def _supervise(config: ServeConfig, out: Any) -> int:
    """Start the workers (the first alone: it builds and caches the graphs, the others load them), forward
    signals, restart a worker that dies, and exit with the first one's status if it dies at start-up."""
    source = Source(config.run_dir)  # a missing or foreign directory: one error, not one per worker
    source.targets() if source.routed else locate(config.run_dir, "ledrec serve")
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
                                          "front": config.front, "workers": config.workers,
                                          "metrics_ports": metrics_ports}), file=out, flush=True)  # fmt: skip
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
    from ledrec.serve.server import serve

    try:
        serve(config)
    except (ArtifactError, ConfigError) as exc:
        print(f"ledrec serve: error: {exc}", file=sys.stderr)
        return 2
    return 0
