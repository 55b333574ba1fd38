"""Client-side helpers for ``ledrec serve``: start one on port 0 and learn its address from its ready line
(what benchmarks, the chaos suite, the demo and tests use: nothing picks a "free" port and hopes it stays
free), and wait until an address serves (a bound port is not a serving model: health is NOT_SERVING until
the self-check)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import IO, Any


def read_ready_line(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    """The JSON line ``ledrec serve`` prints on stdout once every process serves (``proc`` started with
    ``stdout=PIPE, text=True``), with ``port`` added (the one its ``address`` names). RuntimeError if it exits
    or stays silent for ``timeout`` seconds."""
    if select.select([proc.stdout], [], [], timeout)[0]:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if line:
            ready = json.loads(line)
            ready["port"] = int(ready["address"].rsplit(":", 1)[1])
            return ready
        raise RuntimeError(f"ledrec serve exited with status {proc.wait(30)} before serving")
    raise RuntimeError(f"ledrec serve did not report serving within {timeout:.0f} s")


def start_server(
    path: str | os.PathLike[str],
    *flags: str,
    timeout: float = 120,
    stderr: int | IO[Any] | None = subprocess.PIPE,
) -> tuple[subprocess.Popen, dict[str, Any]]:
    """``ledrec serve PATH FLAGS`` in its own process group, on ports it binds itself (``--port 0
    --metrics-port 0`` unless ``flags`` name them), and its ready line (:func:`read_ready_line`: ``port``,
    ``address``, ``metrics_ports``). RuntimeError, with what it said on stderr when that was piped, if it
    does not serve."""
    given = set(flags)
    cmd = [sys.executable, "-m", "ledrec.cli", "serve", str(path), *flags]
    cmd += [] if "--port" in given else ["--port", "0"]
    cmd += [] if "--metrics-port" in given else ["--metrics-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
    try:
        return proc, read_ready_line(proc, timeout)
    except RuntimeError as exc:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        said = proc.stderr.read().strip() if stderr == subprocess.PIPE and proc.stderr else ""
        proc.wait()
        raise RuntimeError(f"{exc}{': ' + said[-2000:] if said else ''}") from None


def stop_server(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM to the server's process group, then its exit status (SIGKILL after ``timeout`` s)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
    finally:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def wait_serving(address: str, timeout: float, service: str = "") -> None:
    """Poll ``grpc.health.v1`` at ``address`` until it says SERVING (TimeoutError after ``timeout`` s)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass  # not listening yet
            time.sleep(0.01)
    raise TimeoutError(f"{address} did not report SERVING within {timeout:.0f} s")
