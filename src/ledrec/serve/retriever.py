"""The request path of the online service, without the network: history → user vector → top-k (§6.2).

One :class:`Retriever` holds one exported model and one index per catalogue (partition: country, merchant),
so a request that names a partition can only ever get that partition's items. Small catalogues get the
exact index (a matrix-vector product over a few thousand rows is as fast as a graph walk, and exact).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ledrec.export.mips import ServingModel
from ledrec.index import ExactIndex, Index, build_index

COLD_START_DEPTH = 1000  # the largest k a request may ask for (RecommendRequest.k ≤ 1000)


class RequestError(ValueError):
    """A request the service must refuse (INVALID_ARGUMENT): the message says why."""


@dataclass
class Recommendation:
    item_ids: list[str]
    scores: list[float]
    unknown_items: int  # ids of the history the model does not know (ignored)
    cold_start: bool  # no known item: the answer is the partition's highest-bias (most popular) items
    timings: dict[str, float] = field(default_factory=dict)  # seconds: embed, knn


@dataclass
class RetrieverConfig:
    index: str = "hnswlib"  # chosen by `ledrec bench ann` (see the README)
    index_params: dict[str, Any] = field(default_factory=dict)
    exact_below: int = 5000  # catalogues smaller than this use the exact index
    max_k: int = 1000
    max_history: int = 1000  # longer histories are refused, not silently cut
    cache_dir: str | None = None  # keep built graphs here (per model version), so restarts and workers load them


class Retriever:
    def __init__(
        self, model: ServingModel, config: RetrieverConfig | None = None, indexes: dict[str, Index] | None = None
    ):
        self.model = model
        self.config = config or RetrieverConfig()
        self.version = model.version
        self.partitions = model.partitions
        self.indexes = indexes if indexes is not None else build_indexes(model, self.config)
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
        if not 0 < k <= cfg.max_k:
            raise RequestError(f"k must be in 1..{cfg.max_k}, not {k}")
        if len(item_ids) > cfg.max_history:
            raise RequestError(f"{len(item_ids)} history items; at most {cfg.max_history} are accepted")
        if partition not in self.partitions:
            raise RequestError(f"unknown partition {partition!r}; this model serves {len(self.partitions)} partitions")
        t0 = time.perf_counter()
        history, unknown = self.model.lookup(item_ids)
        query = self.model.user_vector(history)  # (d,)
        t1 = time.perf_counter()
        seen = set(history.tolist()) if exclude_seen else set()
        cold = len(history) == 0
        if allowed_item_ids is not None:
            candidates = self._allowed(partition, allowed_item_ids)
            items, scores = _top_exact(self.model.scores(query, candidates), candidates, k, seen)
        elif cold:
            items = self.cold[partition][:k]
            scores = self.model.item_bias[items]
        else:
            items, scores = self._search(partition, query, k, seen)
        t2 = time.perf_counter()
        ids = self.model.item_ids[items].tolist()
        return Recommendation(ids, [float(s) for s in scores], unknown, cold, {"embed": t1 - t0, "knn": t2 - t1})

    def _search(self, partition: str, query: np.ndarray, k: int, seen: set[int]) -> tuple[np.ndarray, np.ndarray]:
        index, catalogue = self.indexes[partition], self.partitions[partition]
        mips_query = np.append(query, np.float32(1.0))  # [q; 1]
        # ask for enough to still have k after dropping the history's own items
        positions, scores = index.search(mips_query, k + len(seen))
        items, scores = _drop_seen(catalogue[positions[0]], scores[0], seen)
        return items[:k], scores[:k]

    def _allowed(self, partition: str, allowed_item_ids: list[str]) -> np.ndarray:
        allowed, _ = self.model.lookup(allowed_item_ids)
        return np.intersect1d(allowed, self.partitions[partition])  # never an item of another partition


def build_indexes(model: ServingModel, config: RetrieverConfig) -> dict[str, Index]:
    out: dict[str, Index] = {}
    for name, items in model.partitions.items():
        vectors = model.mips_items(items)
        if len(items) < config.exact_below:
            out[name] = ExactIndex(vectors)
        elif config.index == "hnswlib" and config.cache_dir:
            out[name] = _cached_hnsw(model, name, vectors, config)
        else:
            out[name] = build_index(config.index, vectors, **config.index_params)
    return out


def _cached_hnsw(model: ServingModel, partition: str, vectors: np.ndarray, config: RetrieverConfig) -> Index:
    """An hnswlib graph loaded from ``cache_dir`` when one was built for this model, partition and parameters;
    built and saved (atomically) otherwise. Building a 1M-item graph takes minutes; loading it, seconds."""
    from ledrec.io import atomic_path

    params = dict(config.index_params)
    key = hashlib.sha256(json.dumps([model.version, partition, params], sort_keys=True).encode()).hexdigest()[:16]
    path = Path(config.cache_dir) / f"hnsw-{key}.bin"  # type: ignore[arg-type]
    if path.is_file():
        return build_index("hnswlib", vectors, path=path, **params)
    index = build_index("hnswlib", vectors, **params)
    with atomic_path(path) as tmp:
        index.save(tmp)  # type: ignore[attr-defined]
    return index


def _drop_seen(items: np.ndarray, scores: np.ndarray, seen: set[int]) -> tuple[np.ndarray, np.ndarray]:
    if not seen:
        return items, scores
    keep = np.fromiter((i not in seen for i in items.tolist()), bool, len(items))
    return items[keep], scores[keep]


def _top_exact(scores: np.ndarray, items: np.ndarray, k: int, seen: set[int]) -> tuple[np.ndarray, np.ndarray]:
    items, scores = _drop_seen(items, scores, seen)
    order = np.argsort(-scores, kind="stable")[:k]
    return items[order], scores[order]
