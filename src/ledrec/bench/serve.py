"""``ledrec bench serve``: the seed paper's Table 4 — the online service measured over loopback gRPC.

One run of the benchmark:

1. **Stages, in process** (one thread, the same requests): user embedding (history ids → q) and KNN
   (index search + exclusions) per request, p50/p99; and recall@k of the served top-k against the exact
   top-k of the same model and catalogue.
2. **End to end, over gRPC**: ``ledrec serve`` in its own process(es); a load generator in another process.
   Closed loop (C clients, each sending its next request when the last one returns) gives the max QPS;
   open loop (requests sent on a fixed schedule at R per second, whether or not earlier ones returned, so
   a slow server cannot slow the clock down — no coordinated omission) gives the latency p50/p99 at R.
   The same two loads then hit a server of the same gRPC stack whose handler returns a fixed answer: the
   floor the transport alone sets on this machine, under any model.
3. **Side by side**: the same histories answered by Mult-VAE with exact full scoring over the same number
   of items (an untrained network of the paper's shape: the cost does not depend on the weights), against
   LED's embedding + KNN, in this process; the ratio of medians.

Histories are drawn from a dataset's test users (most recent items, at most ``max_history``) or, for a
synthetic catalogue, from its cluster structure (like users who browse one topic).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ledrec.bench.ann import synthetic_catalogue
from ledrec.errors import ConfigError
from ledrec.export.mips import ServingModel
from ledrec.io import write_json
from ledrec.serve import native
from ledrec.serve.client import start_server, stop_server
from ledrec.serve.loading import load_retriever
from ledrec.serve.ports import spawn_on_port
from ledrec.serve.retriever import Retriever, RetrieverConfig

if TYPE_CHECKING:
    from ledrec.data.splits import PreparedData


@dataclass
class ServeBenchConfig:
    serving_dir: str  # a serving export (or run directory)
    histories: list[list[str]] = field(default_factory=list)
    partition: str = ""
    k: int = 20
    ef: int = 100
    workers: int = 2
    clients: int = 4  # closed loop
    rate: float = 1000.0  # open loop, requests per second
    seconds: float = 10.0  # per load phase
    exclude_seen: bool = True
    # load generator: "python" (grpc.aio, needs nothing more) or "cpp" (benchmarks/grpc_load, built separately;
    # at 1M items and 1,000 QPS it measured p50 912 µs where the Python generator measured 1,353 µs: README)
    client: str = "python"
    cpp_client: str = str(Path(__file__).resolve().parents[3] / "benchmarks" / "grpc_load" / "build" / "ledrec-load")
    # the fronts measured, in one run (repeats alternate their order): each against its own do-nothing floor
    fronts: tuple[str, ...] = ("python",)

    def validate(self) -> None:
        """ConfigError for what cannot run, before any work (building a catalogue takes minutes)."""
        if self.client not in ("python", "cpp"):
            raise ConfigError(f"--client must be python or cpp, not {self.client!r}")
        unknown = set(self.fronts) - {"python", "native"}
        if unknown or not self.fronts:
            raise ConfigError(f"--front: python, native or both (python,native), not {','.join(self.fronts)}")
        if "native" in self.fronts and not native.available():
            raise ConfigError(f"--front native: {native.WHY_NOT}")
        if self.client == "cpp" and not os.access(self.cpp_client, os.X_OK):
            raise ConfigError(
                f"--client cpp: no load generator at {self.cpp_client}; build it (bash benchmarks/grpc_load/build.sh) "
                "or give --cpp-client PATH"
            )


def synthetic_export(out: str | Path, n_items: int, dim: int, seed: int = 0) -> tuple[ServingModel, list[list[str]]]:
    """A 1M-item catalogue with the structure of trained embeddings, exported as a servable model, and
    histories of 10 items of one cluster each (the queries of ``synthetic_catalogue`` are their means)."""
    items, _ = synthetic_catalogue(n_items, dim, n_queries=1, seed=seed)
    vectors = np.ascontiguousarray(items[:, :dim])
    serving = ServingModel(
        item_ids=np.arange(n_items).astype(str),
        encoder_vectors=vectors,
        item_vectors=vectors,
        item_bias=np.ascontiguousarray(items[:, dim]),
        query_map=np.eye(dim, dtype=np.float32),
        info={"model": "synthetic", "items": n_items, "dim": dim, "seed": seed},
    )
    serving.save(out)
    rng = np.random.default_rng(seed + 1)
    # neighbours in vector space stand in for a topic: a random item and its 9 exact nearest (by cosine
    # within a random sample), cheap at 1M items and with the same statistics as the generator's clusters
    norms = np.linalg.norm(vectors, axis=1)
    histories = []
    for _ in range(2000):
        anchor = int(rng.integers(n_items))
        sample = rng.integers(0, n_items, 20_000)
        sims = vectors[sample] @ vectors[anchor] / (norms[sample] * norms[anchor] + 1e-9)
        picked = sample[np.argsort(-sims)[:9]]
        histories.append([str(anchor), *map(str, picked.tolist())])
    return serving, histories


def held_out_histories(data: PreparedData, max_history: int = 50) -> list[list[str]]:
    """The item-id histories of ``data``'s test users (their fold-in input), the last ``max_history`` items
    of each; users without any are left out."""
    test = data.test.input
    ids = data.items.ids.astype(str)
    return [ids[test[r].indices].tolist()[-max_history:] for r in range(test.shape[0]) if test[r].nnz]


def serve_bench(
    config: ServeBenchConfig,
    out: str | Path,
    *,
    data: PreparedData | None = None,
    n_items: int = 1_000_000,
    dim: int = 100,
    max_history: int = 50,
    seed: int = 0,
    repeats: int = 3,
) -> dict[str, Any]:
    """``ledrec bench serve``: :func:`run_bench` on ``config``, written to ``out/serve.json`` and
    ``out/serve.md``; returns the summary (what the command prints: medians per front, the acceptance
    ratios, the paper's figures, where the files are). With ``data``, ``config.serving_dir`` is a trained run (or its
    export) and the requests are its test users' histories (:func:`held_out_histories`); without, a
    synthetic catalogue of ``n_items`` × ``dim`` is exported into ``out`` (once: a second call reuses it and
    its histories) and served."""
    config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if data is not None:
        histories = held_out_histories(data, max_history)
        title = f"Serving {data.name} LED ({len(data.items.ids)} items), {config.serving_dir}"
    else:
        config = replace(config, serving_dir=str(out / "synthetic-export"))
        histories_file = out / "synthetic-histories.json"
        if not histories_file.is_file():
            _, histories = synthetic_export(config.serving_dir, n_items, dim, seed=seed)
            write_json(histories_file, histories)
        histories = json.loads(histories_file.read_text())
        title = f"Serving a synthetic catalogue of {n_items} items, d = {dim}"
    result = run_bench(replace(config, histories=histories), repeats=repeats)
    write_json(out / "serve.json", {"title": title, **result})
    (out / "serve.md").write_text(markdown(result, title))
    keep = ("median", "acceptance", "paper_table4")
    return {"title": title, **{k: result[k] for k in keep}, "files": [str(out / "serve.json"), str(out / "serve.md")]}


def stage_latencies(config: ServeBenchConfig, front: str = "python", n: int = 2000) -> dict[str, Any]:
    """Per-request user-embedding and KNN latency in this process — the model's own work, the front's own
    request path (``native``: the C++ one, its internal timings) — and recall@k of the served top-k."""
    retriever = load_retriever(config.serving_dir, RetrieverConfig(index_params={"ef_search": config.ef}))
    model, index = retriever.model, retriever.indexes[config.partition or next(iter(retriever.partitions))]
    serving: Any = retriever
    if front == "native":
        from ledrec.serve import native

        serving = native.load(retriever)
    histories = config.histories[:n]
    for h in histories[:100]:  # warm-up
        serving.recommend(config.partition, h, config.k, exclude_seen=config.exclude_seen)
    # timing pass: requests back to back, as a server sees them (no exact scan in between to flush caches)
    embed, knn, model_work, answers = [], [], [], []
    for h in histories:
        rec = serving.recommend(config.partition, h, config.k, exclude_seen=config.exclude_seen)
        embed.append(rec.timings["embed"])
        knn.append(rec.timings["knn"])
        model_work.append(rec.timings["embed"] + rec.timings["knn"])
        answers.append(rec.item_ids)
    del serving
    # accuracy pass: the same answers against the same request path over exact indexes
    exact = Retriever(model, RetrieverConfig(exact_below=len(model.item_ids) + 1))
    recall = []
    for h, ids in zip(histories, answers, strict=True):
        truth = exact.recommend(config.partition, h, config.k, exclude_seen=config.exclude_seen).item_ids
        recall.append(len(set(ids) & set(truth)) / max(len(truth), 1))
    return {
        "embed": _percentiles(embed),
        "knn": _percentiles(knn),
        "in_process_total": _percentiles(model_work),
        f"recall@{config.k}": float(np.mean(recall)),
        "index": index.stats(),
    }


def vae_side_by_side(serving: ServingModel, histories: list[list[str]], n: int = 30, seed: int = 0) -> dict[str, Any]:
    """Mult-VAE (I → 600 → 200 → 600 → I) answering the same histories by exact full scoring, per request."""
    rng = np.random.default_rng(seed)
    n_items = len(serving.item_ids)
    hidden, latent = 600, 200
    w_in = rng.standard_normal((n_items, hidden), dtype=np.float32) * 0.01  # (I, 600)
    w_enc = rng.standard_normal((hidden, 2 * latent), dtype=np.float32) * 0.05
    w_dec = rng.standard_normal((latent, hidden), dtype=np.float32) * 0.05
    w_out = rng.standard_normal((n_items, hidden), dtype=np.float32) * 0.01  # (I, 600)
    b_out = np.zeros(n_items, np.float32)
    times = []
    for h in histories[:n]:
        t0 = time.perf_counter()
        known, _ = serving.lookup(h)
        h = np.tanh(w_in[known].sum(axis=0) / np.sqrt(max(len(known), 1)))  # (600,): L2-normalised input
        mu = (h @ w_enc)[:latent]  # (200,): the mean, no sampling at inference
        scores = w_out @ np.tanh(mu @ w_dec) + b_out  # (I,): every item scored
        scores[known] = -np.inf
        top = np.argpartition(-scores, 20)[:20]
        _ = top[np.argsort(-scores[top])]  # the top-20, sorted
        times.append(time.perf_counter() - t0)
    return {"vae_exact": _percentiles(times), "items": n_items}


# ------------------------------------------------------------------------------ load generation (child)
def _load_phase(args: dict[str, Any]) -> dict[str, Any]:
    """Runs in a separate process: closed loop (max QPS) or open loop (fixed rate) against the server.
    One asyncio event loop with grpc.aio: no client threads competing for the GIL."""
    import asyncio
    import selectors

    # asyncio's default epoll selector rounds every timeout up to a whole millisecond (epoll_wait takes ms):
    # the open-loop sender, sleeping until each send time, overslept by 0.4-1 ms (median; measured with
    # asyncio.sleep of 0.1-1.2 ms), and that lag counted as server latency. select() takes microseconds
    # (oversleep ~0.09 ms), and the generator holds only a few sockets.
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        return loop.run_until_complete(_load_phase_async(args))
    finally:
        loop.close()


async def _load_phase_async(args: dict[str, Any]) -> dict[str, Any]:
    import asyncio
    import gc

    import grpc

    from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc

    requests = _requests(ledrec_pb2, args["histories"], args["partition"], args["k"], args["exclude_seen"])
    latencies: list[float] = []
    errors = 0
    # several connections: SO_REUSEPORT spreads connections (not requests) over the server's processes, so
    # one channel would load one worker only; a local subchannel pool keeps each channel's own connection
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{args['port']}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(args["connections"])
    ]
    stubs = [ledrec_pb2_grpc.RecommenderStub(c) for c in channels]
    try:
        for i in range(200 * len(stubs)):  # warm-up: every connection
            await stubs[i % len(stubs)].Recommend(requests[i % len(requests)], timeout=10)
        # the requests are millions of objects for a real dataset's histories: a full collection of them
        # stalled this generator for 100+ ms (p99 of a do-nothing server: 130 ms at 1,000 QPS on Gowalla);
        # frozen, the collector skips them
        gc.collect()
        gc.freeze()
        seconds = args["seconds"]
        if args["mode"] == "closed":
            stop = time.perf_counter() + seconds

            async def client(c: int) -> None:
                nonlocal errors
                i = c
                while time.perf_counter() < stop:
                    t0 = time.perf_counter()
                    try:
                        await stubs[i % len(stubs)].Recommend(requests[i % len(requests)], timeout=10)
                        latencies.append(time.perf_counter() - t0)
                    except grpc.RpcError:
                        errors += 1
                    i += args["clients"]

            t0 = time.perf_counter()
            await asyncio.gather(*(client(c) for c in range(args["clients"])))
            elapsed = time.perf_counter() - t0
            return {"qps": len(latencies) / elapsed, "latency": _percentiles(latencies), "errors": errors}

        # open loop: every request has a scheduled send time; a late client sends what is due at once, and
        # latency is counted from the scheduled time (no coordinated omission)
        rate = args["rate"]
        n = int(rate * seconds)

        send_lags: list[float] = []  # the generator's own timing error, reported beside the latency

        async def one(i: int, scheduled: float) -> None:
            nonlocal errors
            send_lags.append(time.perf_counter() - scheduled)
            try:
                await stubs[i % len(stubs)].Recommend(requests[i % len(requests)], timeout=10)
                latencies.append(time.perf_counter() - scheduled)
            except grpc.RpcError:
                errors += 1

        ports = args.get("metrics_ports")
        before = _scrape_stages(ports) if ports else None  # after the warm-up: only the measured requests count
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
        lag = time.perf_counter() - (start + n / rate)
        server = stage_quantiles(before, _scrape_stages(ports)) if before is not None else {}
        return {
            "server": server,
            "rate": rate,
            "sent": n,
            "latency": _percentiles(latencies),
            "send_lag": _percentiles(send_lags),
            "errors": errors,
            "drain_s": lag,
        }
    finally:
        for c in channels:
            await c.close()


def _requests(pb2: Any, histories: list[list[str]], partition: str, k: int, exclude_seen: bool) -> list[Any]:
    """One RecommendRequest per history, as both load generators send them (``pb2``: the generated module,
    imported by the caller, which may be a freshly spawned process)."""
    return [pb2.RecommendRequest(partition=partition, item_ids=h, k=k, exclude_seen=exclude_seen) for h in histories]


def _percentiles(seconds: list[float] | np.ndarray) -> dict[str, float]:
    if not len(seconds):
        return {"p50_us": float("nan"), "p99_us": float("nan"), "n": 0}
    us = np.asarray(seconds) * 1e6
    return {"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)), "n": len(us)}


def end_to_end(config: ServeBenchConfig, front: str = "python") -> dict[str, Any]:
    """Start ``ledrec serve --front FRONT`` (its own processes, on ports it binds itself), then drive it from
    a load-generator process."""
    flags = ["--workers", str(config.workers), "--ef", str(config.ef), "--watch", "0", "--front", front]
    # every worker serving; a first start builds the graph (its log: on our stderr)
    server, ready = start_server(config.serving_dir, *flags, timeout=900, stderr=None)
    try:
        return _drive(config, ready["port"], ready["metrics_ports"])
    finally:
        stop_server(server)


def grpc_floor(config: ServeBenchConfig, front: str = "python") -> dict[str, Any]:
    """The same load against the same gRPC stack (as many processes on one port) whose handler decodes the
    request and returns a fixed k-item answer: what the transport alone costs on this machine, the floor
    under any model — grpc.aio's for the Python front, gRPC C++'s for the native one."""
    target = _fixed_answer_server if front == "python" else _native_floor_server
    port, procs = spawn_on_port(target, (config.k,), processes=config.workers)
    try:
        return _drive(config, port)
    finally:
        for p in procs:
            p.terminate()
            p.join(10)


def _fixed_answer_server(port: int, ready: Any, k: int) -> None:
    """A Recommend handler that returns a fixed k-item answer, on ``port`` (SO_REUSEPORT: see
    :func:`ledrec.serve.ports.spawn_on_port`)."""
    import asyncio

    import grpc

    from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc

    answer = ledrec_pb2.RecommendResponse(
        items=[ledrec_pb2.ScoredItem(item_id=str(100_000 + i), score=1.0) for i in range(k)], model_version="floor"
    )

    class FixedAnswer(ledrec_pb2_grpc.RecommenderServicer):
        async def Recommend(self, request, context):  # gRPC calls it with these two
            return answer

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
        ledrec_pb2_grpc.add_RecommenderServicer_to_server(FixedAnswer(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.put(os.getpid())
        await server.wait_for_termination()

    asyncio.run(main())


def _native_floor_server(port: int, ready: Any, k: int) -> None:
    """The native front's server whose handler decodes the request and answers a fixed k-item response."""
    from ledrec.serve import _native  # type: ignore[attr-defined]

    server = _native.Server(address=f"127.0.0.1:{port}", reuseport=True, floor_k=k)
    server.start()
    server.set_serving(True)
    ready.put(os.getpid())
    threading.Event().wait()  # until terminated


def _drive(config: ServeBenchConfig, port: int, metrics_ports: list[int] | None = None) -> dict[str, Any]:
    """Closed loop (max QPS), then open loop at ``config.rate``, from one load-generator process. With the
    server's metrics ports, the open loop's per-stage latencies inside the server are read from them too."""
    if config.client == "cpp":
        return _drive_native(config, port, metrics_ports)
    if config.client != "python":
        raise ValueError(f"client must be 'python' or 'cpp', not {config.client!r}")
    common = {
        "port": port,
        "partition": config.partition,
        "k": config.k,
        "exclude_seen": config.exclude_seen,
        "histories": config.histories,
        "seconds": config.seconds,
        "connections": max(2, 2 * config.workers),
    }
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        closed = pool.apply(_load_phase, ({**common, "mode": "closed", "clients": config.clients, "rate": 0},))
        open_args = {**common, "mode": "open", "clients": 4, "rate": config.rate, "metrics_ports": metrics_ports}
        opened = pool.apply(_load_phase, (open_args,))
    return {"closed": closed, "open": opened}


def _drive_native(config: ServeBenchConfig, port: int, metrics_ports: list[int] | None) -> dict[str, Any]:
    """:func:`_drive` with the native generator (benchmarks/grpc_load/load.cc): the same requests, connections,
    phases and result keys."""
    import tempfile

    from ledrec.serve import ledrec_pb2

    binary = Path(config.cpp_client)
    if not binary.is_file():
        raise FileNotFoundError(f"{binary}: the C++ load generator is not built (bash benchmarks/grpc_load/build.sh)")
    with tempfile.TemporaryDirectory(prefix="ledrec-load-") as tmp:
        requests = Path(tmp) / "requests.bin"
        with open(requests, "wb") as f:  # length-prefixed serialized RecommendRequest messages
            for request in _requests(ledrec_pb2, config.histories, config.partition, config.k, config.exclude_seen):
                message = request.SerializeToString()
                f.write(len(message).to_bytes(4, "little") + message)
        common = [str(binary), "--target", f"127.0.0.1:{port}", "--requests", str(requests)]
        common += ["--seconds", str(config.seconds), "--connections", str(max(2, 2 * config.workers)), "--wait"]
        timeout = 3 * config.seconds + 120  # the phase, its warm-up and start-up, with room to spare
        closed_cmd = [*common, "--mode", "closed", "--clients", str(config.clients)]
        closed = _native_phase(closed_cmd, Path(tmp) / "closed", timeout)
        open_cmd = [*common, "--mode", "open", "--rate", str(config.rate)]
        opened = _native_phase(open_cmd, Path(tmp) / "open", timeout, metrics_ports)
    closed["qps"] = closed.pop("completed") / closed.pop("elapsed_s")
    n = opened["sent"]
    opened.update(rate=config.rate, drain_s=opened.pop("elapsed_s") - n / config.rate)
    return {"closed": closed, "open": opened}


def _native_phase(cmd: list[str], out: Path, timeout: float, metrics_ports: list[int] | None = None) -> dict[str, Any]:
    proc = subprocess.Popen([*cmd, "--out", str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    if proc.stdout.readline().strip() != "warm":  # it prints "warm" after its warm-up calls, then waits
        proc.kill()
        raise RuntimeError(f"{cmd[0]} failed during its warm-up (exit status {proc.wait()})")
    before = _scrape_stages(metrics_ports) if metrics_ports else None  # only the measured requests count
    stdout, _ = proc.communicate("go\n", timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} exited with status {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["latency"] = _percentiles(np.fromfile(f"{out}.latency.f64"))
    if result["mode"] == "open":
        result["send_lag"] = _percentiles(np.fromfile(f"{out}.lag.f64"))
        result["server"] = stage_quantiles(before, _scrape_stages(metrics_ports)) if before is not None else {}
    return result


def _scrape_stages(ports: list[int]) -> dict[str, dict[float, float]]:
    """The servers' cumulative ``ledrec_stage_seconds`` bucket counts per stage, summed over workers."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, dict[float, float]] = {}
    for port in ports:
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "ledrec_stage_seconds_bucket":
                    stage = counts.setdefault(sample.labels["stage"], {})
                    le = float(sample.labels["le"])
                    stage[le] = stage.get(le, 0.0) + sample.value
    return counts


def stage_quantiles(
    before: dict[str, dict[float, float]], after: dict[str, dict[float, float]], qs: tuple[float, ...] = (0.5, 0.99)
) -> dict[str, dict[str, float]]:
    """p50/p99 (µs) per stage of the requests counted between two scrapes, interpolated linearly inside the
    histogram bucket the quantile falls in (so as exact as the buckets: 100, 200, 300, 500, 750 µs...)."""
    out = {}
    for stage, cumulative in after.items():
        edges = sorted(cumulative)
        counts = np.array([cumulative[e] - before.get(stage, {}).get(e, 0.0) for e in edges])  # cumulative
        if counts[-1] <= 0:
            continue
        row = {"n": float(counts[-1])}
        for q in qs:
            target = q * counts[-1]
            i = int(np.searchsorted(counts, target))
            lower, below = (edges[i - 1], counts[i - 1]) if i > 0 else (0.0, 0.0)
            upper = edges[i]
            if np.isinf(upper) or counts[i] == below:
                value = lower
            else:
                value = lower + (upper - lower) * (target - below) / (counts[i] - below)
            row[f"p{round(100 * q)}_us"] = 1e6 * value
        out[stage] = row
    return out


def run_bench(config: ServeBenchConfig, repeats: int = 3, progress: bool = True) -> dict[str, Any]:
    """Each front in turn (the order alternates between repeats, so neither always runs on a warmer or a
    colder machine): in-process model work, the service under load, its stack's floor. Medians per front,
    and the native front's ratios to the Python front and to its floor."""
    runs: dict[str, list[dict[str, Any]]] = {front: [] for front in config.fronts}
    for r in range(repeats):
        for front in config.fronts if r % 2 == 0 else config.fronts[::-1]:
            run = {
                "stages": stage_latencies(config, front),
                "e2e": end_to_end(config, front),
                "floor": grpc_floor(config, front),
            }
            runs[front].append(run)
            if progress:
                print(json.dumps({"repeat": r + 1, "front": front, **_row(run)}), file=sys.stderr, flush=True)
    serving = load_retriever(config.serving_dir).model
    side = vae_side_by_side(serving, config.histories)
    medians = {
        front: {k: float(np.median([_row(run)[k] for run in rs])) for k in _row(rs[0])} for front, rs in runs.items()
    }
    side["ratio_vae_over_led_p50"] = side["vae_exact"]["p50_us"] / medians[config.fronts[0]]["in_process_p50_us"]
    return {
        "config": {k: v for k, v in vars(config).items() if k != "histories"},
        "runs": runs,
        "median": medians,
        "acceptance": acceptance(medians),
        "paper_table4": PAPER,
        "side_by_side": side,
    }


# the seed paper's Table 4: one 4-CPU instance (deserialization and network included)
PAPER = {"max_qps": 3200, "p50_us": 500, "p99_us": 2000, "user_embedding_us": 30, "knn_us": 160}


def acceptance(medians: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The native front against the Python front and against its own floor (issue 26's criteria)."""
    if "native" not in medians:
        return {}
    n = medians["native"]
    out: dict[str, Any] = {
        "native_over_floor_qps": n["max_qps"] / n["floor_max_qps"],
        "p50_over_floor_plus_model_us": n["total_p50_us"] - n["floor_p50_us"] - n["in_process_p50_us"],
        "p99_over_floor_us": n["total_p99_us"] - n["floor_p99_us"],
    }
    if "python" in medians:
        out["native_over_python_qps"] = n["max_qps"] / medians["python"]["max_qps"]
    return out


def _row(run: dict[str, Any]) -> dict[str, float]:
    s, e, f = run["stages"], run["e2e"], run["floor"]
    k = next(key for key in s if key.startswith("recall@"))
    return {
        "floor_max_qps": f["closed"]["qps"],
        "floor_p50_us": f["open"]["latency"]["p50_us"],
        "floor_p99_us": f["open"]["latency"]["p99_us"],
        "max_qps": e["closed"]["qps"],
        "total_p50_us": e["open"]["latency"]["p50_us"],
        "total_p99_us": e["open"]["latency"]["p99_us"],
        "send_lag_p50_us": e["open"]["send_lag"]["p50_us"],
        "send_lag_p99_us": e["open"]["send_lag"]["p99_us"],
        **{
            f"server_{stage}_{q}": e["open"]["server"][stage][q]
            for stage in ("total", "knn", "user_embedding")
            for q in ("p50_us", "p99_us")
            if stage in e["open"].get("server", {})
        },
        "embed_p50_us": s["embed"]["p50_us"],
        "embed_p99_us": s["embed"]["p99_us"],
        "knn_p50_us": s["knn"]["p50_us"],
        "knn_p99_us": s["knn"]["p99_us"],
        "in_process_p50_us": s["in_process_total"]["p50_us"],
        "recall": s[k],
        "open_loop_errors": e["open"]["errors"],
        "closed_loop_errors": e["closed"]["errors"],
    }


def markdown(result: dict[str, Any], title: str) -> str:
    c, side = result["config"], result["side_by_side"]
    fronts = list(result["median"])
    us = lambda v: f"{v:.0f} µs"  # noqa: E731
    lines = [
        title,
        "",
        f"medians of {len(result['runs'][fronts[0]])} runs per front (alternated); {c['workers']} server processes, "
        f"k = {c['k']}, ef = {c['ef']}, open loop at {c['rate']:.0f} QPS, {c['client']} load generator on the same "
        "machine",
        "",
        "| front | max QPS | p50 | p99 | floor max QPS | floor p50 | floor p99 | model in process p50 | "
        "handler p50 (server) | user embedding p50 | KNN p50 | ANN recall@k |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for front in fronts:
        m = result["median"][front]
        lines.append(
            f"| {front} | {m['max_qps']:.0f} | {us(m['total_p50_us'])} | {us(m['total_p99_us'])} | "
            f"{m['floor_max_qps']:.0f} | {us(m['floor_p50_us'])} | {us(m['floor_p99_us'])} | "
            f"{us(m['in_process_p50_us'])} | {us(m.get('server_total_p50_us', float('nan')))} | "
            f"{us(m['embed_p50_us'])} | {us(m['knn_p50_us'])} | {m['recall']:.4f} |"
        )
    p = result["paper_table4"]
    lines.append(
        f"| paper, Table 4 (4 CPUs) | {p['max_qps']} | {p['p50_us']} µs | {p['p99_us']} µs | | | | | | "
        f"{p['user_embedding_us']} µs | {p['knn_us']} µs | |"
    )
    a = result["acceptance"]
    if a:
        lines += [
            "",
            "Native front: max QPS "
            + (f"{a['native_over_python_qps']:.2f}× the Python front's, " if "native_over_python_qps" in a else "")
            + f"{100 * a['native_over_floor_qps']:.0f}% of its floor's; p50 "
            f"{a['p50_over_floor_plus_model_us']:+.0f} µs over floor p50 + model p50; p99 "
            f"{a['p99_over_floor_us']:+.0f} µs over floor p99.",
        ]
    lines += [
        "",
        f"Side by side (in process, same histories): Mult-VAE exact full scoring over {side['items']} items p50 "
        f"{side['vae_exact']['p50_us'] / 1000:.1f} ms, {side['ratio_vae_over_led_p50']:.0f}× LED's model work p50.",
        "",
        "The floor of a front: the same server stack and load, a handler that decodes the request and returns a "
        f"fixed {c['k']}-item answer. Latency counts from each request's scheduled send time (the load generator "
        "sent p50 "
        + ", ".join(f"{result['median'][f]['send_lag_p50_us']:.0f} µs ({f})" for f in fronts)
        + " late: included in the totals).",
    ]
    return "\n".join(lines) + "\n"
