"""Client-side helpers for a started ``ledrec serve``: wait until it serves (what benchmarks, the chaos
suite and tests use; a bound port is not a serving model: health is NOT_SERVING until the self-check)."""

from __future__ import annotations

import json
import select
import subprocess
import time
from typing import Any


def read_ready_line(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    """The JSON line ``ledrec serve`` prints on stdout once every process serves (``proc`` started with
    ``stdout=PIPE, text=True``). RuntimeError if it exits or stays silent for ``timeout`` seconds."""
    if select.select([proc.stdout], [], [], timeout)[0]:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if line:
            return json.loads(line)
        raise RuntimeError(f"ledrec serve exited with status {proc.wait(30)} before serving")
    raise RuntimeError(f"ledrec serve did not report serving within {timeout:.0f} s")


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
