"""The native front: the service (request → answer) in C++ (``ledrec.serve._native``: gRPC C++, hnswlib),
with Python as its control plane in the same process. The manager's models are handed over after every
swap (:meth:`NativeFront.on_change`: one routing table, swapped whole); health, draining and stopping are
asked of it from here; its counters are exported by :class:`~ledrec.serve.metrics.NativeCollector`. Its
threads never take the GIL: nothing of Python is on the request path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ledrec.errors import ConfigError
from ledrec.serve import native
from ledrec.serve.config import ServeConfig
from ledrec.serve.manager import Manager
from ledrec.serve.metrics import BUCKETS, Metrics

log = logging.getLogger(__name__)
QUIET_S = 0.1  # (as the Python front's drain: nothing started or finished for this long)


class NativeFront:
    name = "native"

    def __init__(self, config: ServeConfig, floor_k: int = 0) -> None:
        """``floor_k`` > 0: the native floor, a server whose handler parses the request and answers a fixed
        k-item response (``ledrec bench serve``'s do-nothing server of this stack)."""
        if native._native is None:
            raise ConfigError(f"--front native: {native.WHY_NOT}")
        read = lambda p: Path(p).read_text() if p else ""  # noqa: E731
        ms = lambda s: int(s * 1000)  # noqa: E731
        self.server = native._native.Server(
            address=f"{config.host}:{config.port}",
            reuseport=config.workers > 1,
            max_request_bytes=config.max_request_bytes,
            reflection=config.reflection,
            tls_cert=read(config.tls_cert),
            tls_key=read(config.tls_key),
            tls_client_ca=read(config.tls_client_ca),
            max_concurrent_rpcs=config.max_concurrent_rpcs,
            keepalive_time_ms=ms(config.keepalive_time_s),
            keepalive_timeout_ms=ms(config.keepalive_timeout_s),
            max_connection_idle_ms=ms(config.max_connection_idle_s),
            max_connection_age_ms=ms(config.max_connection_age_s),
            max_connection_age_grace_ms=ms(config.grace_s),
            buckets=list(BUCKETS),
            floor_k=floor_k,
        )
        self.address = f"{config.host}:{config.port}"
        self._started = False

    def attach(self, manager: Manager, metrics: Metrics) -> None:
        """(The native server counts its own requests: the metrics read them at each scrape.)"""

    def on_change(self, manager: Manager) -> None:
        """Hand the manager's models over as one routing table (requests in flight finish on the old one)."""
        served = manager.served()
        if manager.source.routed:
            tables = {name: (m.model if m is not None else None) for name, m in served.items()}
            self.server.set_routes(True, None, tables)
        else:
            self.server.set_routes(False, served[""].model, {})

    def start(self) -> int:
        try:
            port = self.server.start()
        except RuntimeError as exc:
            raise ConfigError(f"cannot bind {self.address} ({exc}): is another server on this port?") from None
        self._started = True
        return port

    def serve_banner(self, directory: str) -> None:
        raise ConfigError(
            f"{directory} is a two-stage system: its Banner call is served by the Python front (--front python)"
        )

    def set_serving(self, serving: bool) -> None:
        self.server.set_serving(serving)

    def enter_shutdown(self) -> None:
        self.server.enter_shutdown()

    def busy(self) -> bool:
        return self.server.in_flight > 0 or self.server.idle_s < QUIET_S

    def stop(self, grace_s: float) -> None:
        if self._started:
            self.server.stop(grace_s)
            self._started = False


def metrics_source(front: Any) -> Any:
    """What :class:`~ledrec.serve.metrics.Metrics` reads the request counters from: the native server, or
    None for a front that observes its own."""
    return front.server if isinstance(front, NativeFront) else None
