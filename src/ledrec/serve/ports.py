"""Ports without races: a port is reserved by binding it (port 0: the kernel picks one) and held until the
processes that serve on it have joined it, never picked, closed and handed on as a number (another process
could take it in between); and a lock per port, so no second ``ledrec serve`` joins one."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledrec.errors import ConfigError


def reserve_port(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket bound (never listening) to ``host:port`` with SO_REUSEPORT: processes that set SO_REUSEPORT
    too can join the port (gRPC's ``grpc.so_reuseport``), nothing else can take it while the socket is open.
    ``reserved.getsockname()[1]`` is the port (the one the kernel chose, for port 0)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot bind {host}:{port} ({exc.strerror})") from None
    return sock


class PortLock:
    """An exclusive lock per port, so that no second ``ledrec serve`` joins a port (SO_REUSEPORT would let
    it, silently splitting the traffic between two models). The parent takes it; its workers inherit the
    descriptor, so it holds until the last process of the group has exited."""

    def __init__(self, port: int) -> None:
        self.path = Path(tempfile.gettempdir()) / f"ledrec-serve-{os.getuid()}-{port}.lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise ConfigError(
                f"port {port} is already served by another 'ledrec serve' (pid {holder}); stop it or choose "
                "another --port"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)


def spawn_on_port(
    target: Callable[..., None], args: tuple[Any, ...] = (), processes: int = 1, timeout: float = 60
) -> tuple[int, list[Any]]:
    """Start ``processes`` spawned processes running ``target(port, ready, *args)`` on one port reserved here
    (loopback, chosen by the kernel); each must listen on ``port`` with SO_REUSEPORT and then call
    ``ready.put(os.getpid())``. Returns the port and the processes once all are ready (TimeoutError after
    ``timeout`` s, RuntimeError if one exits first). For the benchmarks' fixture servers."""
    import queue

    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    with reserve_port() as reserved:
        port = reserved.getsockname()[1]
        procs = [ctx.Process(target=target, args=(port, ready, *args), daemon=True) for _ in range(processes)]
        for p in procs:
            p.start()
        try:
            for _ in procs:
                ready.get(timeout=timeout)
        except queue.Empty:
            for p in procs:
                p.terminate()
            dead = [p.exitcode for p in procs if p.exitcode is not None]
            raise (RuntimeError(f"a server exited with {dead}") if dead else TimeoutError(f"port {port}")) from None
    return port, procs
