"""The request path of the online service, without the network: history → user vector → top-k (§6.2).

One :class:`Retriever` holds one exported model and one index per catalogue (partition: country, merchant),
so a request that names a partition can only ever get that partition's items. Small catalogues get the
exact index (a matrix-vector product over a few thousand rows is as fast as a graph walk, and exact).

Nothing here trusts what it loaded: graphs cached on disk are keyed by the model's content hash and
checksummed, and :meth:`Retriever.self_check` compares served answers with exact scoring, per catalogue,
before a model may answer a request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.config import option
from ledrec.export.mips import ServingModel
from ledrec.index import ExactIndex, Index, build_index
from ledrec.index.base import canonical_dot, exact_top
from ledrec.io import ArtifactError, atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)

COLD_START_DEPTH = 1000  # the largest k a request may ask for (RecommendRequest.k ≤ 1000)
ECHO_LIMIT = 64  # characters of client input quoted back in an error message


class RequestError(ValueError):
    """A request the service must refuse (INVALID_ARGUMENT): the message says why."""


class UnknownItemError(RequestError):
    """A request about an item the model does not know (NOT_FOUND)."""


class NotServedError(RequestError):
    """A call this server was started without (FAILED_PRECONDITION): ``--no-similar``."""


class SelfCheckError(ArtifactError):
    """A loaded model answered its self-check wrong: it must not serve."""


@dataclass
class Recommendation:
    item_ids: list[str]
    scores: list[float]
    unknown_items: int  # ids of the history the model does not know (ignored)
    cold_start: bool  # no known item: the answer is the partition's highest-bias (most popular) items
    timings: dict[str, float] = field(default_factory=dict)  # seconds: embed, knn


@dataclass
class Similar:
    item_ids: list[str]  # best first; never the item itself
    scores: list[float]  # cosine similarities
    timings: dict[str, float] = field(default_factory=dict)  # seconds: knn


@dataclass
class RetrieverConfig:
    # chosen by `ledrec bench ann` (see the README)
    index: str = option("hnswlib", "ANN index for large catalogues: hnswlib, faiss, usearch, exact")
    index_params: dict[str, Any] = field(default_factory=dict)  # e.g. ef_search (ledrec serve --ef)
    # the graph's MIPS form: trained LED vectors have similar norms and search well in the nearest-neighbour
    # reduction (docs/serving.md); the spectral start's decoder rows are scaled by item degree^β (norms from
    # .8 to 202 on Gowalla) and there the reduction found recall@20 .21 at ef 100 where inner product found .99
    form: str = option(
        "auto",
        "ANN graph form: ip (inner product on [v; b]), nn (the MIPS-to-nearest-neighbour reduction), or auto: "
        "the better of the two on a seeded sample of each catalogue (2,000 items, 32 queries)",
        choices=("auto", "ip", "nn"),
    )
    exact_below: int = option(5000, "catalogues smaller than this are searched exactly")
    max_k: int = 1000
    max_history: int = option(1000, "requests with more history items are refused, not silently cut")
    max_allowed: int = option(100_000, "requests with more allowed item ids are refused (each id is looked up)")
    cache_dir: str | None = None  # keep built graphs here (keyed by model content), so restarts and workers load them
    # self-check before a model may serve: mean recall@10 of the served index against exact scoring, over a
    # few seeded queries per catalogue. A graph of other vectors (a stale cache) gives next to nothing (the
    # stale-graph test), hnswlib at its default effort .96-.99 (docs/serving.md), so .5 separates them with room
    # for a low --ef.
    self_check_queries: int = 8
    self_check_recall: float = option(0.5, "a model whose index finds less than this recall@10 does not serve")
    similar: bool = option(
        True,
        "answer the Similar call: a second index per catalogue, on the items' similarity vectors (--no-similar: "
        "no such index, its memory and build time saved, and Similar refused)",
    )


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """Client input as it may be quoted back: repr'd and cut to ``limit`` characters."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + "…" + quoted[-1]


class Retriever:
    def __init__(
        self, model: ServingModel, config: RetrieverConfig | None = None, indexes: dict[str, Index] | None = None
    ):
        self.model = model
        self.config = config or RetrieverConfig()
        self.source = "memory"  # or what it was loaded from: "export", "run" (ledrec.serve.loading)
        self.partitions = model.partitions
        self.cache_events: dict[str, str] = {}  # partition → hit / built / rebuilt (why) / uncached
        self.indexes = indexes if indexes is not None else build_indexes(model, self.config, self.cache_events)
        # Similar: per catalogue, its items with a similarity vector (a zero one is alike to nothing) and an
        # index of their rows [w; 0] — the recommend index's row layout, so both fronts search them alike
        self.similar_items: dict[str, np.ndarray] = {}
        self.similar_indexes: dict[str, Index] = {}
        if self.config.similar:
            self.similar_items, self.similar_indexes = build_similar_indexes(model, self.config, self.cache_events)
        # what answered a request: the model's content and how it is searched (same export, other --ef: other
        # answers, other version)
        self.version = retriever_version(model, self.config)
        # cold start (§6.2): with a null user vector every score is the bias; precomputed per partition
        self.cold = {}
        for name, items in self.partitions.items():
            depth = min(COLD_START_DEPTH, len(items))
            top = np.argsort(-model.item_bias[items], kind="stable")[:depth]
            self.cold[name] = items[top]

    def recommend(
        self,
        partition: str,
        item_ids: list[str],
        k: int,
        exclude_seen: bool = True,
        allowed_item_ids: list[str] | None = None,
    ) -> Recommendation:
        cfg = self.config
        if isinstance(item_ids, str | bytes) or isinstance(allowed_item_ids, str | bytes):
            raise RequestError("item ids come as a list: a single string would be read as one id per character")
        if not 0 < k <= cfg.max_k:
            raise RequestError(f"k must be in 1..{cfg.max_k}, not {k}")
        if len(item_ids) > cfg.max_history:
            raise RequestError(f"{len(item_ids)} history items; at most {cfg.max_history} are accepted")
        if allowed_item_ids is not None and len(allowed_item_ids) > cfg.max_allowed:
            raise RequestError(f"{len(allowed_item_ids)} allowed items; at most {cfg.max_allowed} are accepted")
        partition = self._partition(partition)
        catalogue = self.partitions[partition]
        t0 = time.perf_counter()
        history, unknown = self.model.lookup(item_ids)
        query = self.model.user_vector(history)  # (d,)
        t1 = time.perf_counter()
        cold = len(history) == 0
        if allowed_item_ids is not None:
            candidates = self._allowed(catalogue, allowed_item_ids)
            if exclude_seen and len(history):
                candidates = candidates[~np.isin(candidates, history)]
            rows = self.model.mips_items(candidates)
            positions, scores = exact_top(rows, np.append(query, np.float32(1.0)), k)
            items = candidates[positions]
        elif cold:
            items = self.cold[partition][:k]
            scores = self.model.item_bias[items]
        else:
            # positions of the history in this catalogue (sorted), to be left out of the answer
            seen = _positions(catalogue, history) if exclude_seen else np.empty(0, np.int64)
            mips_query = np.append(query, np.float32(1.0))  # [q; 1]
            positions, scores = self.indexes[partition].search_excluding(mips_query, k, seen)
            items = catalogue[positions]
        t2 = time.perf_counter()
        ids = self.model.item_ids[items].tolist()
        return Recommendation(ids, scores.tolist(), unknown, cold, {"embed": t1 - t0, "knn": t2 - t1})

    def similar(self, partition: str, item_id: str, k: int) -> Similar:
        """The ``k`` items of ``partition`` most alike to ``item_id`` (an item of any catalogue of the model),
        by the cosine of the model's similarity vectors, best first, the item itself never; no items for an
        item without a similarity vector. :class:`UnknownItemError` for an id the model does not know."""
        if not self.config.similar:
            raise NotServedError("this server answers no Similar call (started with --no-similar)")
        if not isinstance(item_id, str):
            raise RequestError(f"item_id must be one id (a string), not {type(item_id).__name__}")
        if not 0 < k <= self.config.max_k:
            raise RequestError(f"k must be in 1..{self.config.max_k}, not {k}")
        partition = self._partition(partition)
        t0 = time.perf_counter()
        item = self.model._id_map().get(item_id)
        if item is None:
            raise UnknownItemError(f"unknown item {clip(item_id)}")
        row = self.model.similarity[item]
        if not row.any():
            return Similar([], [], {"knn": time.perf_counter() - t0})
        items = self.similar_items[partition]
        itself = _positions(items, np.array([item], dtype=np.int64))
        positions, scores = self.similar_indexes[partition].search_excluding(np.append(row, np.float32(0.0)), k, itself)
        ids = self.model.item_ids[items[positions]].tolist()
        return Similar(ids, scores.tolist(), {"knn": time.perf_counter() - t0})

    def _partition(self, partition: str) -> str:
        """The catalogue a request names ("" names the only one: a client need not name it); RequestError for
        another."""
        if not partition and len(self.partitions) == 1:
            return next(iter(self.partitions))
        if partition not in self.partitions:
            raise RequestError(
                f"unknown partition {clip(partition)}; this model serves {len(self.partitions)} partitions"
            )
        return partition

    def recommend_many(
        self, partition: str, histories: sp.csr_matrix, k: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend` for many users at once (batch recommendations): ``histories`` (n, I) 0/1 in
        the model's item indices (known items only); the same index, exclusions and cold start, queries
        searched together (a graph index on all cores). Returns item indices (n, k), -1 where fewer were
        found, and their scores (-inf there)."""
        model, catalogue = self.model, self.partitions[partition]
        histories = sp.csr_matrix(histories, dtype=np.float32)
        n = histories.shape[0]
        lengths = np.diff(histories.indptr).astype(np.float32)
        norm = np.maximum(lengths if model.reduce == "mean" else np.sqrt(lengths), 1.0)
        queries = np.asarray(histories @ model.encoder_vectors) / norm[:, None]  # (n, d)
        if not np.array_equal(model.query_map, np.eye(model.dim, dtype=model.query_map.dtype)):
            queries = queries @ model.query_map
        position = np.full(len(model.item_ids), -1, dtype=np.int64)
        position[catalogue] = np.arange(len(catalogue))
        seen = sp.csr_matrix(histories.shape if not exclude_seen else histories)
        seen_pos = position[seen.indices]
        rows = np.repeat(np.arange(n), np.diff(seen.indptr))[seen_pos >= 0]
        seen_codes = rows * len(catalogue) + seen_pos[seen_pos >= 0]  # (user, catalogue position) excluded
        extra = int(np.bincount(rows, minlength=n).max()) if len(rows) else 0
        index = self.indexes[partition]
        mips = np.hstack([queries, np.ones((n, 1))]).astype(np.float32)  # [q; 1]
        # an exact index scores (queries × catalogue): queries in groups of at most 256 MB of scores (4,096
        # users × 330k items at once took 22 GB); a graph search needs no such bound
        step = max(1, (256 << 20) // (4 * len(catalogue))) if index.kind == "exact" else max(n, 1)
        parts = [index.search(mips[lo : lo + step], min(k + extra, len(catalogue))) for lo in range(0, n, step)]
        found = np.vstack([f for f, _ in parts]) if parts else np.empty((0, 0), np.int64)
        scores = np.vstack([s for _, s in parts]) if parts else np.empty((0, 0), np.float32)
        dropped = np.isin(np.arange(n)[:, None] * len(catalogue) + found, seen_codes)
        scores = np.where(dropped, -np.inf, scores).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # the kept ones, still best first
        found, scores = np.take_along_axis(found, order, 1), np.take_along_axis(scores, order, 1)
        items = np.where(np.isfinite(scores), catalogue[found], -1)
        cold = lengths == 0  # no known item: the partition's highest-bias items, as one request would get
        if cold.any():
            top = self.cold[partition][:k]
            items[cold], scores[cold] = -1, -np.inf
            items[np.ix_(cold, np.arange(len(top)))] = top
            scores[np.ix_(cold, np.arange(len(top)))] = model.item_bias[top]
        if items.shape[1] < k:  # a catalogue smaller than k
            pad = k - items.shape[1]
            items = np.hstack([items, np.full((n, pad), -1)])
            scores = np.hstack([scores, np.full((n, pad), -np.inf, np.float32)])
        return items, scores

    def _allowed(self, catalogue: np.ndarray, allowed_item_ids: list[str]) -> np.ndarray:
        allowed, _ = self.model.lookup(allowed_item_ids)
        return np.intersect1d(allowed, catalogue)  # never an item of another partition

    # ---------------------------------------------------------------- self-check
    def self_check(self, k: int = 10, seed: int = 0, recommend: Any = None, similar: Any = None) -> dict[str, float]:
        """Ask every catalogue a few seeded questions and compare with exact scoring; raise
        :class:`SelfCheckError` on any wrong answer. A catalogue whose graph came from the cache and fails
        gets its graph rebuilt once (a cache is never trusted over the vectors). Returns recall per partition.
        ``recommend``, ``similar``: another request path over this model's arrays (the native front's) to
        check instead. The Similar call is checked the same way (recall of its own index, the lower of the two
        returned)."""
        recalls = {}
        for name in self.partitions:
            try:
                recalls[name] = self._check_partition(name, k, seed, recommend or self.recommend)
            except SelfCheckError as exc:
                if self.cache_events.get(name) != "hit" or recommend is not None:
                    raise
                log.warning("cached graph of partition %s failed the self-check (%s): rebuilding it", clip(name), exc)
                self.indexes[name] = _cached_hnsw(self.model, name, self.config, self.cache_events, trust=False)
                recalls[name] = self._check_partition(name, k, seed, self.recommend)
            if self.config.similar:
                recalls[name] = min(recalls[name], self._check_similar_or_rebuild(name, k, seed, similar))
        return recalls

    def _check_similar_or_rebuild(self, name: str, k: int, seed: int, similar: Any) -> float:
        """:meth:`_check_similar`; a graph from the cache that fails is rebuilt once, as for Recommend."""
        try:
            return self._check_similar(name, k, seed, similar or self.similar)
        except SelfCheckError as exc:
            if self.cache_events.get(f"{name} (similar)") != "hit" or similar is not None:
                raise
            log.warning(
                "cached Similar graph of partition %s failed the self-check (%s): rebuilding it", clip(name), exc
            )
            items = self.similar_items[name]
            self.similar_indexes[name] = _similar_index(
                self.model, name, items, self.config, self.cache_events, trust=False
            )
            return self._check_similar(name, k, seed, self.similar)

    def _check_similar(self, name: str, k: int, seed: int, similar: Any) -> float:
        """The Similar call of a few seeded items of the catalogue against the exact cosine ranking."""
        model, items = self.model, self.similar_items[name]
        label = f"self-check of Similar in partition {clip(name)}"
        rows = self.similar_indexes[name].vectors  # [w; 0]
        rng = np.random.default_rng(seed)
        recalls = []
        for item in rng.choice(items, size=min(4, len(items)), replace=False) if len(items) > 1 else []:
            kk = min(k, len(items) - 1)
            got = similar(name, str(model.item_ids[item]), kk)
            found = model.indices(np.asarray(got.item_ids, dtype=str))
            itself = _positions(items, np.array([item]))
            positions, _ = exact_top(rows, rows[itself[0]], kk, itself)
            scores = np.asarray(got.scores, dtype=np.float32)
            want = canonical_dot(rows[_positions(items, found)], rows[itself[0]]) if len(found) else scores
            problems = {
                f"{len(found)} distinct items for k = {kk}": len(set(found.tolist())) != kk or len(found) != kk,
                "an item outside the catalogue, or the item itself": not np.isin(found, items).all() or item in found,
                "scores not sorted, or not the exact cosines": not (
                    np.all(scores[:-1] >= scores[1:]) and np.allclose(scores, want, rtol=1e-4, atol=1e-5)
                ),
            }
            for what, wrong in problems.items():
                if wrong:
                    raise SelfCheckError(f"{label}: {what}")
            recalls.append(len(set(found.tolist()) & set(items[positions].tolist())) / kk)
        recall = float(np.mean(recalls)) if recalls else 1.0
        if recall < self.config.self_check_recall:
            raise SelfCheckError(f"{label}: recall@{k} {recall:.3f} against exact scoring")
        return recall

    def _check_partition(self, name: str, k: int, seed: int, recommend: Any = None) -> float:
        model, catalogue = self.model, self.partitions[name]
        label = f"self-check of partition {clip(name)}"

        def check(ok: bool, what: str) -> None:
            if not ok:
                raise SelfCheckError(f"{label}: {what}")

        recommend = recommend or self.recommend
        cold = recommend(name, [], k)
        expected = model.item_ids[self.cold[name][:k]].tolist()
        check(cold.item_ids == expected, "the cold-start answer is not the highest-bias items")
        rng = np.random.default_rng(seed)
        recalls = []
        for _ in range(self.config.self_check_queries):
            history = rng.choice(catalogue, size=min(3, len(catalogue)), replace=False)
            kk = min(k, len(catalogue) - len(history))
            if kk <= 0:
                break
            rec = recommend(name, model.item_ids[history].tolist(), kk, exclude_seen=True)
            # exact scores from the model's own arrays (not the index's copy), over all items, then the catalogue's
            exact = model.scores(model.user_vector(np.sort(history)))[catalogue]  # (n,)
            exact[_positions(catalogue, history)] = -np.inf
            truth = catalogue[np.argsort(-exact, kind="stable")[:kk]]
            got = model.indices(np.asarray(rec.item_ids))
            check(len(got) == kk and len(set(got.tolist())) == kk, f"{len(got)} distinct items for k = {kk}")
            check(bool(np.isin(got, catalogue).all()), "an item outside the catalogue")
            check(not set(got.tolist()) & set(history.tolist()), "an item of the history although excluded")
            scores = np.asarray(rec.scores)
            check(bool(np.all(np.isfinite(scores)) and np.all(scores[:-1] >= scores[1:])), "scores not finite/sorted")
            want = exact[_positions(catalogue, got)] if len(got) else scores
            check(bool(np.allclose(scores, want, rtol=1e-4, atol=1e-4)), "scores differ from the exact ones")
            recalls.append(len(set(got.tolist()) & set(truth.tolist())) / kk)
        recall = float(np.mean(recalls)) if recalls else 1.0
        check(recall >= self.config.self_check_recall, f"recall@{k} {recall:.3f} against exact scoring")
        return recall


def retriever_version(model: ServingModel, config: RetrieverConfig) -> str:
    """The model's content hash with the index settings that search it (16 hex digits)."""
    search = {"index": config.index, "params": config.index_params, "exact_below": config.exact_below}
    return hashlib.sha256(json.dumps([model.version, search], sort_keys=True).encode()).hexdigest()[:16]


def build_indexes(model: ServingModel, config: RetrieverConfig, events: dict[str, str]) -> dict[str, Index]:
    out: dict[str, Index] = {}
    for name, items in model.partitions.items():
        if len(items) < config.exact_below:
            out[name] = ExactIndex(model.mips_items(items))
        elif config.index == "hnswlib" and config.cache_dir:
            out[name] = _cached_hnsw(model, name, config, events)
        else:
            out[name] = build_index(config.index, model.mips_items(items), **graph_params(model, name, config))
            events[name] = "uncached"
    if config.index == "hnswlib" and config.cache_dir:
        keep = {_cache_key(model, n, config) for n in out}
        if config.similar:  # (built after these: not pruned now, not pruned later)
            keep |= {_similar_key(model, n, config) for n in out}
        _prune_cache(Path(config.cache_dir), keep=keep)
    return out


SIMILAR_PARAMS = {"form": "ip"}  # unit rows: inner product is cosine, no reduction needed


def build_similar_indexes(
    model: ServingModel, config: RetrieverConfig, events: dict[str, str]
) -> tuple[dict[str, np.ndarray], dict[str, Index]]:
    """Per catalogue: its items with a non-zero similarity vector, and an index of their rows [w; 0] — exact
    below ``exact_below`` items, else a graph (cached like the recommend graphs, keyed by content)."""
    has_row = model.similarity.any(axis=1)
    items_of, indexes = {}, {}
    for name, catalogue in model.partitions.items():
        items_of[name] = catalogue[has_row[catalogue]]
        indexes[name] = _similar_index(model, name, items_of[name], config, events)
    return items_of, indexes


def _similar_index(
    model: ServingModel,
    name: str,
    items: np.ndarray,
    config: RetrieverConfig,
    events: dict[str, str],
    trust: bool = True,
) -> Index:
    rows = np.hstack([model.similarity[items], np.zeros((len(items), 1), np.float32)])
    if len(items) < config.exact_below or config.index == "exact":
        return ExactIndex(rows)
    params = {**config.index_params, **SIMILAR_PARAMS}
    if config.index == "hnswlib" and config.cache_dir:
        key, label = _similar_key(model, name, config), f"{name} (similar)"
        return _cached_graph(rows, key, params, label, config, events, trust)
    events[f"{name} (similar)"] = "uncached"
    return build_index(config.index, rows, **params)


def _similar_key(model: ServingModel, partition: str, config: RetrieverConfig) -> str:
    build = {k: v for k, v in config.index_params.items() if k != "ef_search"}
    parts = [model.version, partition, "similar", config.index, build, package_version("hnswlib")]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _cache_key(model: ServingModel, partition: str, config: RetrieverConfig) -> str:
    """Everything a graph depends on: the model's content (vectors, biases, membership), the partition, the
    build parameters and the library that wrote the file."""
    build = {k: v for k, v in graph_params(model, partition, config).items() if k != "ef_search"}  # (search-time)
    parts = [model.version, partition, config.index, build, package_version("hnswlib")]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _cached_hnsw(
    model: ServingModel, partition: str, config: RetrieverConfig, events: dict[str, str], trust: bool = True
) -> Index:
    """The recommend graph of ``partition`` (:func:`_cached_graph`)."""
    vectors = model.mips_items(model.partitions[partition])
    key, params = _cache_key(model, partition, config), graph_params(model, partition, config)
    return _cached_graph(vectors, key, params, partition, config, events, trust)


def _cached_graph(
    vectors: np.ndarray,
    key: str,
    params: dict[str, Any],
    label: str,
    config: RetrieverConfig,
    events: dict[str, str],
    trust: bool = True,
) -> Index:
    """An hnswlib graph of ``vectors`` loaded from ``cache_dir`` when one was built under ``key`` (the model
    content, catalogue and parameters) and its checksum verifies; built and saved (atomically) otherwise.
    Building a 1M-item graph takes minutes; loading it, seconds. ``trust=False`` rebuilds whatever is there.
    ``events[label]`` says which happened."""
    graph, sidecar = Path(config.cache_dir) / f"hnsw-{key}.bin", Path(config.cache_dir) / f"hnsw-{key}.json"  # type: ignore[arg-type]
    expected = {"key": key, "items": len(vectors), "dim": int(vectors.shape[1])}
    why = "no cached graph" if trust else "failed the self-check"
    if trust and graph.is_file():
        try:
            meta = json.loads(sidecar.read_text())
            if not isinstance(meta, dict) or {k: meta.get(k) for k in expected} != expected:
                raise ValueError("its description does not match this model")
            if sha256_file(graph) != meta.get("sha256"):
                raise ValueError("sha256 does not match")
            index = build_index("hnswlib", vectors, path=graph, **params)
            labels = np.sort(np.asarray(index.graph.get_ids_list(), dtype=np.int64))  # type: ignore[attr-defined]
            if not np.array_equal(labels, np.arange(len(vectors))):
                raise ValueError("its labels are not the catalogue's positions")
            events[label] = "hit"
            return index
        except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: hnswlib cannot read the file
            why = f"cached graph {graph.name} does not verify ({exc})"
            log.warning("partition %s: %s; rebuilding it", clip(label), why)
    index = build_index("hnswlib", vectors, **params)
    events[label] = "built" if why == "no cached graph" else f"rebuilt: {why}"
    try:
        _store(index, graph, sidecar, expected, label)
    except OSError as exc:  # a read-only export: serve from memory, rebuild at the next start
        log.warning("cannot cache the graph of partition %s in %s: %s", clip(label), config.cache_dir, exc)
    return index


def _store(index: Index, graph: Path, sidecar: Path, expected: dict[str, Any], partition: str) -> None:
    with atomic_path(graph) as tmp:
        index.save(tmp)  # type: ignore[attr-defined]
    write_json(sidecar, {**expected, "sha256": sha256_file(graph), "partition": partition[:200]})


def extend_cached_graph(
    old: ServingModel, new: ServingModel, partition: str, config: RetrieverConfig, old_cache: Path, new_cache: Path
) -> str:
    """Put ``new``'s graph of ``partition`` into ``new_cache`` by extending ``old``'s cached graph with the
    items ``new`` appends (hnswlib ``add_items``) instead of building it again. ``new`` must be ``old`` with
    rows appended to this catalogue and no other change to it (what a fold-in makes), and the appended rows
    must not exceed the catalogue's largest [v; b] norm (the MIPS→NN reduction of the stored graph).
    Returns "extended", or why not ("no cached graph", "not an extension", …): the retriever then builds it."""
    before, after = old.partitions[partition], new.partitions[partition]
    n = len(before)
    if len(after) < n or not np.array_equal(after[:n], before):
        return "not an extension"
    vectors = new.mips_items(after)
    if not np.array_equal(vectors[:n], old.mips_items(before)):
        return "not an extension: the catalogue's rows changed"
    if len(after) < config.exact_below or config.index != "hnswlib":
        return "no graph: exact index"
    key = _cache_key(old, partition, config)
    graph, sidecar = old_cache / f"hnsw-{key}.bin", old_cache / f"hnsw-{key}.json"
    try:
        meta = json.loads(sidecar.read_text())
        if meta.get("items") != n or sha256_file(graph) != meta.get("sha256"):
            return "no verified cached graph"
    except (OSError, ValueError):
        return "no cached graph"
    norms = np.linalg.norm(vectors, axis=1)
    if len(after) > n and norms[n:].max() > norms[:n].max():
        return "not an extension: an added row is longer than the catalogue's longest"
    if graph_params(old, partition, config) != graph_params(new, partition, config):
        return "not an extension: the graph's MIPS form changed"
    index = build_index("hnswlib", vectors, path=graph, **graph_params(old, partition, config))  # capacity: all
    if len(after) > n:
        index.graph.set_num_threads(os.cpu_count() or 1)  # type: ignore[attr-defined]
        index.graph.add_items(index.data[n:], np.arange(n, len(after)))  # type: ignore[attr-defined]
        index.graph.set_num_threads(1)  # type: ignore[attr-defined]
    new_key = _cache_key(new, partition, config)
    expected = {"key": new_key, "items": len(vectors), "dim": int(vectors.shape[1])}
    _store(index, new_cache / f"hnsw-{new_key}.bin", new_cache / f"hnsw-{new_key}.json", expected, partition)
    return "extended"


# (model version, partition, index, params) → chosen form, most recent last. Bounded: a long-running server
# meets a new version per catalogue every day, and an entry for a version no longer served is dead weight.
_FORMS: OrderedDict[tuple[str, str, str, str], str] = OrderedDict()
FORMS_KEPT = 1024


def graph_params(model: ServingModel, partition: str, config: RetrieverConfig) -> dict[str, Any]:
    """The index's build parameters for one catalogue: ``index_params`` with the MIPS ``form`` decided
    (given, or chosen by :func:`choose_form` once per model content and catalogue)."""
    if "form" in config.index_params or config.index == "exact":
        return dict(config.index_params)
    if config.form != "auto":
        return {**config.index_params, "form": config.form}
    # the graph's build parameters only: another --ef searches the same graph (the cache key leaves it out too)
    build = {k: v for k, v in config.index_params.items() if k != "ef_search"}
    key = (model.version, partition, config.index, json.dumps(build, sort_keys=True))
    if key in _FORMS:
        _FORMS.move_to_end(key)
    else:
        _FORMS[key] = choose_form(model, model.partitions[partition], config.index, build)
        while len(_FORMS) > FORMS_KEPT:
            _FORMS.popitem(last=False)  # the least recently used
    return {**config.index_params, "form": _FORMS[key]}


def choose_form(
    model: ServingModel, catalogue: np.ndarray, index: str, params: dict[str, Any], sample: int = 2000, seed: int = 0
) -> str:
    """ "ip" or "nn": the form whose graph finds more of the exact top-10 on a seeded sample of the catalogue
    (``sample`` items, 32 queries of 3 random items each, the index's own build parameters, searched at its
    default effort; the same answer every time); "nn", the measured default for trained vectors, unless "ip"
    is ahead by more than .02."""
    rng = np.random.default_rng(seed)
    items = catalogue if len(catalogue) <= sample else np.sort(rng.choice(catalogue, sample, replace=False))
    vectors = model.mips_items(items)
    queries = np.stack(
        [np.append(model.user_vector(np.sort(rng.choice(items, 3, replace=False))), 1.0) for _ in range(32)]
    ).astype(np.float32)
    k = min(10, len(items))
    truth, _ = ExactIndex(vectors).search(queries, k)
    recall = {}
    one_thread = {"threads": 1} if index == "hnswlib" else {}  # (a graph built on one thread is reproducible)
    for form in ("nn", "ip"):
        found, _ = build_index(index, vectors, **{**params, **one_thread, "form": form}).search(queries, k)
        recall[form] = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))
    chosen = "ip" if recall["ip"] > recall["nn"] + 0.02 else "nn"
    log.info("MIPS form %s (sample recall@%d: nn %.3f, ip %.3f)", chosen, k, recall["nn"], recall["ip"])
    return chosen


def _prune_cache(cache_dir: Path, keep: set[str]) -> None:
    """Drop graphs of other model contents (a re-export in place leaves its predecessor's behind)."""
    for path in cache_dir.glob("hnsw-*"):
        if path.suffix in (".bin", ".json") and path.stem.removeprefix("hnsw-") not in keep:
            path.unlink(missing_ok=True)


def _positions(catalogue: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Positions in the sorted ``catalogue`` of those ``items`` that belong to it."""
    pos = np.searchsorted(catalogue, items)
    inside = pos < len(catalogue)
    pos, items = pos[inside], items[inside]
    return pos[catalogue[pos] == items]
