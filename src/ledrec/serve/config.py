"""``ledrec serve``'s options, declared once: the flags of the command and the settings of both fronts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ledrec.config import option
from ledrec.errors import ConfigError
from ledrec.serve.retriever import RetrieverConfig


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
    front: str = option(
        "auto",
        "what answers requests: native (the C++ data plane, scripts/build_native.sh builds it), python (grpc.aio; "
        "also serves the two-stage Banner call, faiss and usearch indexes) or auto: native where it is built "
        "and can serve the directory, python otherwise (one line on stderr says why)",
        choices=("auto", "native", "python"),
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
