"""What the transport costs on this machine, below any model: the floor under `ledrec bench serve`.

Three measurements, each against a server in its own process on loopback:

1. a raw TCP round trip (200 bytes echoed, TCP_NODELAY) between two Python processes;
2. one gRPC round trip at a time to the fixed-answer asyncio server of `ledrec bench serve` (the same
   stack as `ledrec serve`, a handler that returns a fixed 20-item answer), from a blocking client and
   from an asyncio client;
3. the open loop of `ledrec bench serve` (scheduled sends at --rate, latency from the scheduled time, the
   generator's own send lag reported) against that server with --workers processes.

Medians and 99th percentiles in microseconds, printed as JSON lines.

Usage: .venv/bin/python benchmarks/transport_floor.py [--calls 3000] [--rate 1000] [--seconds 5] [--workers 2]
       [--client python|cpp]  (cpp: the native generator of benchmarks/grpc_load, built by its build.sh)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import socket
import time

from ledrec.bench.serve import ServeBenchConfig, _fixed_answer_server, _percentiles, grpc_floor
from ledrec.serve.ports import spawn_on_port


def _echo(port: int, ready: object) -> None:
    with socket.create_server(("127.0.0.1", port), reuse_port=True) as server:  # joins the port reserved for it
        ready.put(os.getpid())  # type: ignore[attr-defined]
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(4096):
            conn.sendall(data)


def tcp_round_trip(calls: int) -> dict[str, float]:
    port, (proc,) = spawn_on_port(_echo)
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload, times = b"x" * 200, []
    for i in range(calls + 200):  # the first 200 warm up
        t0 = time.perf_counter()
        conn.sendall(payload)
        got = 0
        while got < len(payload):
            got += len(conn.recv(4096))
        if i >= 200:
            times.append(time.perf_counter() - t0)
    conn.close()
    proc.join(10)
    return _percentiles(times)


def grpc_round_trips(calls: int) -> dict[str, dict[str, float]]:
    import grpc

    from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc

    port, (proc,) = spawn_on_port(_fixed_answer_server, (20,))
    try:
        request = ledrec_pb2.RecommendRequest(item_ids=[str(i) for i in range(10)], k=20)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ledrec_pb2_grpc.RecommenderStub(channel)
            times = []
            for i in range(calls + 200):
                t0 = time.perf_counter()
                stub.Recommend(request, timeout=10)
                if i >= 200:
                    times.append(time.perf_counter() - t0)
        blocking = _percentiles(times)

        async def asyncio_client() -> list[float]:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = ledrec_pb2_grpc.RecommenderStub(channel)
                times = []
                for i in range(calls + 200):
                    t0 = time.perf_counter()
                    await stub.Recommend(request, timeout=10)
                    if i >= 200:
                        times.append(time.perf_counter() - t0)
                return times

        loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        try:
            asynchronous = _percentiles(loop.run_until_complete(asyncio_client()))
        finally:
            loop.close()
        return {"blocking_client": blocking, "asyncio_client": asynchronous}
    finally:
        proc.terminate()
        proc.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="sequential round trips per client")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop requests per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="open-loop duration")
    parser.add_argument("--workers", type=int, default=2, help="server processes for the open loop")
    parser.add_argument(
        "--client", choices=("python", "cpp"), default="python", help="load generator of the open and closed loops"
    )
    args = parser.parse_args()
    print(json.dumps({"tcp_round_trip": tcp_round_trip(args.calls)}), flush=True)
    print(json.dumps({"grpc_round_trip": grpc_round_trips(args.calls)}), flush=True)
    histories = [[str(i + j) for j in range(10)] for i in range(1000)]
    config = ServeBenchConfig(
        serving_dir="",
        histories=histories,
        workers=args.workers,
        rate=args.rate,
        seconds=args.seconds,
        client=args.client,
    )
    floor = grpc_floor(config)
    opened = floor["open"]
    print(
        json.dumps(
            {
                "open_loop": {"rate": args.rate, "workers": args.workers, "client": args.client, **opened["latency"]},
                "send_lag": opened["send_lag"],
                "errors": opened["errors"],
                "closed_loop_max_qps": round(floor["closed"]["qps"]),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
