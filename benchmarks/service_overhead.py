"""What `ledrec serve` adds per request over a do-nothing gRPC server, measured in the same run.

One sequential blocking Python client (one request in flight) sends the same requests to

* the fixed-answer asyncio server of `ledrec bench serve` (same gRPC stack, a handler that returns a
  prebuilt 20-item answer): the transport's floor, and
* `ledrec serve EXPORT` (its own process, metrics on),

alternating, ``--repeats`` times each, and reports p50/p99 of each and the difference of the medians.
Then, in this process, the handler's own stages on the same requests (decode, id lookup, user vector,
search, response building, serialisation, metrics), medians in microseconds, so the difference can be
accounted for; the same ``recommend`` call back to back and after the process idled 0.5 / 1 ms (what a
server waiting for its next request does); and the time from starting `ledrec serve` to health SERVING.
``--ladder`` adds servers that do the handler's steps one by one (fixed answer, + decode, + retrieval,
+ response built) beside `ledrec serve` itself.

Usage (the README's figures; amazon-electronics is small enough for the exact index):
    .venv/bin/ledrec run --data ../shared/data/amazon-electronics-nbpo --protocol bars --model led --init svd \\
        --dim 64 --epochs 10 --no-select --out runs/ae-led --quiet && .venv/bin/ledrec export runs/ae-led
    .venv/bin/python benchmarks/service_overhead.py --export runs/ae-led/serving
To measure another version of ledrec against the same export, put its src/ first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def _requests(export: str, n: int, seed: int) -> list[bytes]:
    from ledrec.serve import ledrec_pb2
    from ledrec.serve.loading import load_serving_model

    model = load_serving_model(export)
    rng = np.random.default_rng(seed)
    histories = [model.item_ids[rng.choice(len(model.item_ids), 10, replace=False)].tolist() for _ in range(n)]
    return [
        ledrec_pb2.RecommendRequest(partition="", item_ids=h, k=20, exclude_seen=True).SerializeToString()
        for h in histories
    ]


def _measure(port: int, requests: list[bytes], calls: int) -> list[float]:
    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary("/ledrec.v1.Recommender/Recommend")
    for raw in requests[:200]:  # warm-up
        call(raw, timeout=5)
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        call(requests[i % len(requests)], timeout=5)
        times.append(time.perf_counter() - t0)
    channel.close()
    return times


def time_to_healthy(export: str, repeats: int) -> dict[str, object]:
    """From the start of `ledrec serve EXPORT` to its ready line (health SERVING: model loaded and
    self-checked)."""
    from ledrec.serve.client import start_server, stop_server

    times = []
    for _ in range(repeats):
        t0 = time.monotonic()
        server, _ = start_server(export)
        times.append(time.monotonic() - t0)
        stop_server(server)
    return {"seconds": [round(t, 3) for t in times], "median_s": round(float(np.median(times)), 3)}


def _pct(times: list[float]) -> dict[str, float]:
    p50, p99 = np.percentile(times, [50, 99]) * 1e6
    return {"p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1)}


def over_the_wire(export: str, requests: list[bytes], calls: int, repeats: int) -> dict[str, object]:
    from ledrec.bench.serve import _fixed_answer_server
    from ledrec.serve.client import start_server, stop_server
    from ledrec.serve.ports import spawn_on_port

    runs: dict[str, list[dict[str, float]]] = {"floor": [], "serve": []}
    for _ in range(repeats):
        port, (floor,) = spawn_on_port(_fixed_answer_server, (20,))
        runs["floor"].append(_pct(_measure(port, requests, calls)))
        floor.terminate()
        floor.join(10)
        server, ready = start_server(export, "--watch", "0")
        runs["serve"].append(_pct(_measure(ready["port"], requests, calls)))
        stop_server(server)
    median = {k: {q: float(np.median([r[q] for r in v])) for q in ("p50_us", "p99_us")} for k, v in runs.items()}
    added = {q: round(median["serve"][q] - median["floor"][q], 1) for q in ("p50_us", "p99_us")}
    return {"runs": runs, "median": median, "added_by_the_service": added}


def in_process(export: str, requests: list[bytes], repeats: int = 5) -> dict[str, float]:
    """Median µs of each stage of the Recommend handler, timed separately on the same requests."""
    from ledrec.serve import ledrec_pb2
    from ledrec.serve.loading import load_retriever

    retriever = load_retriever(export)
    model = retriever.model
    from prometheus_client import CollectorRegistry, Histogram

    histogram = Histogram("x_seconds", "x", ["stage"], registry=CollectorRegistry()).labels("total")
    stages: dict[str, list[float]] = {
        k: [] for k in ("decode", "lookup", "user_vector", "search", "response", "serialize", "metrics", "handler")
    }
    for _ in range(repeats):
        for raw in requests:
            t = [time.perf_counter()]
            request = ledrec_pb2.RecommendRequest.FromString(raw)
            t.append(time.perf_counter())
            history, _ = model.lookup(request.item_ids)
            t.append(time.perf_counter())
            model.user_vector(history)
            t.append(time.perf_counter())
            rec = retriever.recommend(request.partition, request.item_ids, request.k, request.exclude_seen)
            t.append(time.perf_counter())
            response = ledrec_pb2.RecommendResponse(
                items=[
                    ledrec_pb2.ScoredItem(item_id=i, score=s) for i, s in zip(rec.item_ids, rec.scores, strict=True)
                ],
                model_version=retriever.version,
            )
            t.append(time.perf_counter())
            response.SerializeToString()
            t.append(time.perf_counter())
            for _ in range(3):
                histogram.observe(1e-4)
            t.append(time.perf_counter())
            d = np.diff(t)
            # recommend() repeats lookup and user vector: its own search share is what remains
            for key, value in zip(("decode", "lookup", "user_vector"), d[:3], strict=True):
                stages[key].append(value)
            stages["search"].append(d[3] - d[1] - d[2])
            stages["response"].append(d[4])
            stages["serialize"].append(d[5])
            stages["metrics"].append(d[6])
            stages["handler"].append(d[0] + d[3] + d[4] + d[5] + d[6])
    return {k: round(float(np.median(v)) * 1e6, 1) for k, v in stages.items()}


LADDER = ("fixed answer", "+ decode", "+ retrieval", "+ response built")


def _ladder_server(port: int, ready: object, export: str, level: int) -> None:
    """A server that does the first ``level`` steps of the Recommend handler (0: none, a fixed answer), on
    the same gRPC stack as `ledrec serve`: the cost of each step over the wire."""
    import asyncio

    import grpc

    from ledrec.serve import ledrec_pb2
    from ledrec.serve.loading import load_retriever

    retriever = load_retriever(export)
    answer = ledrec_pb2.RecommendResponse(
        items=[ledrec_pb2.ScoredItem(item_id=str(100_000 + i), score=1.0) for i in range(20)], model_version="x"
    ).SerializeToString()

    async def handle(raw: bytes, context: object) -> bytes:
        if level == 0:
            return answer
        request = ledrec_pb2.RecommendRequest.FromString(raw)
        if level == 1:
            return answer
        rec = retriever.recommend(request.partition, request.item_ids, request.k, request.exclude_seen)
        if level == 2:
            return answer
        response = ledrec_pb2.RecommendResponse(model_version=retriever.version)
        add = response.items.add
        for item, score in zip(rec.item_ids, rec.scores, strict=True):
            add(item_id=item, score=score)
        return response.SerializeToString()

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])  # joins the port reserved for it
        handler = grpc.unary_unary_rpc_method_handler(handle)  # bytes in, bytes out
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("ledrec.v1.Recommender", {"Recommend": handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.put(os.getpid())  # type: ignore[attr-defined]
        await server.wait_for_termination()

    asyncio.run(main())


def ladder(export: str, requests: list[bytes], calls: int, repeats: int) -> dict[str, float]:
    """p50 over the wire of each rung of LADDER, then `ledrec serve` itself; medians of ``repeats``."""
    from ledrec.serve.client import start_server, stop_server
    from ledrec.serve.ports import spawn_on_port

    variants = {"ledrec serve": [], "ledrec serve --max-concurrent-rpcs 0": ["--max-concurrent-rpcs", "0"]}
    p50: dict[str, list[float]] = {name: [] for name in (*LADDER, *variants)}
    for _ in range(repeats):
        for level, name in enumerate(LADDER):
            port, (proc,) = spawn_on_port(_ladder_server, (export, level))
            time.sleep(0.5)  # (measurement, not synchronisation: the model loaded just now; let the process settle)
            p50[name].append(_pct(_measure(port, requests, calls))["p50_us"])
            proc.terminate()
            proc.join(10)
        for name, flags in variants.items():
            server, ready = start_server(export, "--watch", "0", *flags)
            p50[name].append(_pct(_measure(ready["port"], requests, calls))["p50_us"])
            stop_server(server)
    return {name: round(float(np.median(v)), 1) for name, v in p50.items()}


def idle_dilation(
    export: str, requests: list[bytes], gaps: tuple[float, ...] = (0.0, 0.0005, 0.001)
) -> dict[str, float]:
    """p50 µs of the same in-process ``recommend`` call back to back and after the process idled (blocked
    in select(), as a server between requests) for each gap: how much slower this machine runs the model's
    work when it arrives after a pause."""
    import select
    import socket

    from ledrec.serve import ledrec_pb2
    from ledrec.serve.loading import load_retriever

    retriever = load_retriever(export)
    decoded = [ledrec_pb2.RecommendRequest.FromString(raw) for raw in requests]
    a, b = socket.socketpair()
    out = {}
    for gap in gaps:
        times = []
        for _ in range(4):
            for r in decoded:
                if gap:
                    select.select([a], [], [], gap)
                t0 = time.perf_counter()
                retriever.recommend(r.partition, r.item_ids, r.k, r.exclude_seen)
                times.append(time.perf_counter() - t0)
        out[f"after {gap * 1e3:g} ms idle"] = round(float(np.median(times)) * 1e6, 1)
    a.close()
    b.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", required=True, help="a serving export (or run directory)")
    parser.add_argument("--calls", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each server, alternating")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ladder", action="store_true", help="also: p50 of servers doing each handler step")
    args = parser.parse_args()
    requests = _requests(args.export, 500, args.seed)
    if args.ladder:
        print(json.dumps({"ladder_p50_us": ladder(args.export, requests, args.calls, args.repeats)}), flush=True)
    result = {"export": args.export, "wire": over_the_wire(args.export, requests, args.calls, args.repeats)}
    result["handler_stages_in_process_us"] = in_process(args.export, requests)
    result["recommend_p50_us_by_idle_gap"] = idle_dilation(args.export, requests)
    result["time_to_healthy"] = time_to_healthy(args.export, args.repeats + 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
