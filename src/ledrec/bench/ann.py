"""``ledrec bench ann``: which ANN library serves LED best — hnswlib, faiss or usearch, with raw inner product
(``ip``) or the MIPS→NN reduction (``nn``) — measured on our own exported embeddings.

For each (library, form): build time, memory of the built index (peak RSS of a fresh child process minus
its RSS with the data loaded), and for each ``ef_search``: recall@k against the exact top-k and the latency
of single queries on one thread (p50/p99 over the query set, after a warm-up). Each library runs in its own
child process, so one's memory does not pollute the next one's measurement.

Catalogues: a trained model's export (queries = the test users' LED vectors), or a synthetic catalogue
with the structure of trained item embeddings (clusters, unequal norms, log-popularity biases; queries =
means of a few items of one cluster, like LED's user vectors).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ledrec.errors import ConfigError
from ledrec.export.loading import load_serving_model
from ledrec.index import ExactIndex, build_index
from ledrec.io import write_json

if TYPE_CHECKING:
    from ledrec.data.splits import PreparedData

LIBRARIES = ("hnswlib", "faiss", "usearch")


def synthetic_catalogue(
    n_items: int = 1_000_000, dim: int = 100, n_queries: int = 1000, n_clusters: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """MIPS items [v; b] (n_items, dim + 1) and queries [q; 1] (n_queries, dim + 1), float32."""
    rng = np.random.default_rng(seed)
    d = dim
    centers = rng.normal(size=(n_clusters, d)).astype(np.float32)
    cluster = rng.integers(0, n_clusters, n_items)
    items = np.empty((n_items, d + 1), np.float32)
    for lo in range(0, n_items, 100_000):  # chunks: bounded temporaries at 1M × 100
        hi = min(lo + 100_000, n_items)
        v = centers[cluster[lo:hi]] + 0.6 * rng.normal(size=(hi - lo, d)).astype(np.float32)
        items[lo:hi, :d] = v * rng.lognormal(0, 0.25, size=(hi - lo, 1)).astype(np.float32) / np.sqrt(d)
    rank = rng.permutation(n_items) + 1  # Zipf popularity → bias = log-popularity, as LED's bias starts
    items[:, d] = (-np.log(rank) * 0.5).astype(np.float32)
    queries = np.ones((n_queries, d + 1), np.float32)
    members = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[members], np.arange(n_clusters + 1))
    for q in range(n_queries):
        c = rng.integers(0, n_clusters)
        pool = members[starts[c] : starts[c + 1]]
        picked = rng.choice(pool, size=min(10, len(pool)), replace=False) if len(pool) else rng.integers(0, n_items, 10)
        queries[q, :d] = items[picked, :d].mean(axis=0)
    return items, queries


def exact_top_k(items: np.ndarray, queries: np.ndarray, k: int, batch: int = 64) -> np.ndarray:
    index = ExactIndex(items)
    return np.vstack([index.search(queries[lo : lo + batch], k)[0] for lo in range(0, len(queries), batch)])


def _status_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process. Not ru_maxrss: a spawned child inherits its parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Child process: load data, build one index, measure."""
    items = np.load(spec["items"])
    queries = np.load(spec["queries"])
    truth = np.load(spec["truth"])
    k = spec["k"]
    base = _status_kib("VmRSS")
    t0 = time.perf_counter()
    index = build_index(spec["kind"], items, form=spec["form"], **spec["params"])
    build_s = time.perf_counter() - t0
    peak_kib = _status_kib("VmHWM")
    rows = []
    for ef in spec["efs"]:
        index.set_ef(ef)
        for q in queries[:50]:  # warm-up
            index.search(q, k)
        latencies, found = [], []
        for q in queries:
            t = time.perf_counter()
            positions, _ = index.search(q, k)
            latencies.append(time.perf_counter() - t)
            found.append(positions[0])
        recall = float(np.mean([len(set(f.tolist()) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]))
        lat = np.asarray(latencies) * 1e6
        rows.append(
            {
                "library": spec["kind"],
                "form": spec["form"],
                "ef_search": ef,
                f"recall@{k}": round(recall, 4),
                "p50_us": round(float(np.percentile(lat, 50)), 1),
                "p99_us": round(float(np.percentile(lat, 99)), 1),
                "build_s": round(build_s, 2),
                "index_mib": round((peak_kib - base) / 1024, 1),
            }
        )
    return {"rows": rows}


def compare(
    items: np.ndarray,
    queries: np.ndarray,
    k: int = 20,
    libraries: tuple[str, ...] = LIBRARIES,
    forms: tuple[str, ...] = ("ip", "nn"),
    efs: tuple[int, ...] = (50, 100, 200),
    params: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Every (library, form) on one catalogue; returns one row per (library, form, ef)."""
    params = {"M": 32, "ef_construction": 200, **(params or {})}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: str(Path(tmp) / f"{name}.npy") for name in ("items", "queries", "truth")}
        np.save(paths["items"], items)
        np.save(paths["queries"], queries)
        t0 = time.perf_counter()
        np.save(paths["truth"], exact_top_k(items, queries, k))
        exact_us = (time.perf_counter() - t0) / len(queries) * 1e6
        rows.append(
            {
                "library": "exact (numpy)",
                "form": "ip",
                "ef_search": None,
                f"recall@{k}": 1.0,
                "mean_us": round(exact_us, 1),
            }
        )
        ctx = mp.get_context("spawn")
        for kind in libraries:
            for form in forms:
                spec = {**paths, "kind": kind, "form": form, "k": k, "efs": list(efs), "params": params}
                with ctx.Pool(1) as pool:
                    result = pool.apply(_measure, (spec,))
                for row in result["rows"]:
                    rows.append(row)
                    if progress:
                        print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], k: int, title: str) -> str:
    lines = [
        title,
        "",
        f"| library | form | ef_search | recall@{k} | p50 | p99 | build | index memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["ef_search"] is None:
            lines.append(f"| {r['library']} | — | — | 1.0000 | {r['mean_us']:.0f} µs (batched mean) | | | |")
            continue
        lines.append(
            f"| {r['library']} | {r['form']} | {r['ef_search']} | {r[f'recall@{k}']:.4f} | {r['p50_us']:.0f} µs "
            f"| {r['p99_us']:.0f} µs | {r['build_s']:.1f} s | {r['index_mib']:.0f} MiB |"
        )
    return "\n".join(lines) + "\n"


def run_catalogue(run: str | Path, data: PreparedData, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MIPS items [v; b] of a run directory or serving export, and queries [q; 1] of ``n_queries`` of
    ``data``'s test users drawn at random (seeded; all of them if there are fewer): the export's encoder
    applied to their fold-in histories."""
    serving = load_serving_model(run)
    items = serving.mips_items()
    test = data.test.input
    rng = np.random.default_rng(seed)
    rows = rng.choice(test.shape[0], size=min(n_queries, test.shape[0]), replace=False)
    queries = np.vstack(
        [np.append(serving.user_vector(test[r].indices.astype(np.int64)), np.float32(1.0)) for r in rows]
    ).astype(np.float32)
    return items, queries


def ann_bench(
    out: str | Path | None = None,
    *,
    run: str | Path | None = None,
    data: PreparedData | None = None,
    n_items: int = 1_000_000,
    dim: int = 100,
    n_queries: int = 1000,
    k: int = 20,
    libraries: Sequence[str] = LIBRARIES,
    forms: Sequence[str] = ("ip", "nn"),
    efs: Sequence[int] = (50, 100, 200),
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> str:
    """``ledrec bench ann``: :func:`compare` on a trained model's export (``run``, with queries from
    ``data``'s test users: :func:`run_catalogue`) or on :func:`synthetic_catalogue` (``n_items`` × ``dim``).
    Writes ``ann.json`` and ``ann.md`` into ``out`` when given; returns the markdown table."""
    if run:
        if data is None:
            raise ConfigError("an ANN benchmark on a run takes its queries from a dataset's test users: give data")
        items, queries = run_catalogue(run, data, n_queries, seed=seed)
        title = f"ANN on {data.name} (LED export: {len(items)} items, d = {items.shape[1] - 1} + 1)"
    else:
        items, queries = synthetic_catalogue(n_items, dim, n_queries, seed=seed)
        title = f"ANN on a synthetic catalogue ({n_items} items, d = {dim} + 1)"
    rows = compare(items, queries, k=k, libraries=tuple(libraries), forms=tuple(forms), efs=tuple(efs), params=params)
    text = markdown(rows, k, title)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_json(Path(out) / "ann.json", {"title": title, "rows": rows})
        (Path(out) / "ann.md").write_text(text)
    return text
