"""A trained model in the form retrieval needs (seed paper §4.2, §6.2).

LED scores s(u, i) = ⟨q(u), v_i⟩ + b_i with q(u) = (1/T · Σ_t v_{i_t}) · Q (Q = PᵀP in project mode, the
identity otherwise). Appending the bias to the item vector and a 1 to the query turns the score into one
inner product, ⟨[q; 1], [v_i; b_i]⟩ = s(u, i), so top-k is a maximum-inner-product search (MIPS).

ANN libraries lose recall on raw inner product with vectors of unequal norms (hnswlib issues #74, #214,
#570), so we also offer the standard reduction of MIPS to nearest-neighbour search (Bachrach et al.,
RecSys 2014): items x ↦ [x; √(M² − ‖x‖²)] with M = max ‖x‖, queries q ↦ [q; 0]. Then every item has norm
M and ‖q̃ − x̃‖² = ‖q‖² + M² − 2⟨q, x⟩: the nearest item is the one with the largest inner product.

A :class:`ServingModel` also carries the catalogues (partitions: country, merchant): the items each may
recommend. Saved as ``.npy`` + JSON manifest like every artifact.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ledrec.io import load_artifact, save_artifact

DEFAULT_PARTITION = ""  # a model exported without partitions serves one catalogue under this name


@dataclass
class ServingModel:
    item_ids: np.ndarray  # (I,) original ids, str
    encoder_vectors: np.ndarray  # (I, d) float32: u = reduce(rows of the history)
    item_vectors: np.ndarray  # (I, d) float32: the decoder's v_i (LED: the same array as the encoder's)
    item_bias: np.ndarray  # (I,) float32
    query_map: np.ndarray  # (d, d) float32: q = u · Q
    reduce: str = "mean"  # u = sum / T ("mean") or sum / √T ("sqrt")
    partitions: dict[str, np.ndarray] = field(default_factory=dict)  # name → sorted item indices
    info: dict[str, Any] = field(default_factory=dict)  # model name, dataset, params

    def __post_init__(self) -> None:
        if not self.partitions:
            self.partitions = {DEFAULT_PARTITION: np.arange(len(self.item_ids), dtype=np.int64)}
        self._index: dict[str, int] | None = None
        # full fine-tuning (and raw SVD) has Q = I: skip the d × d product on the request path
        self._identity_map = bool(
            np.array_equal(self.query_map, np.eye(len(self.query_map), dtype=self.query_map.dtype))
        )

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    @cached_property
    def version(self) -> str:
        """A short content hash: which model answered a request (hashed once: 400 MB at 1M items)."""
        h = hashlib.sha256()
        for a in (self.item_vectors, self.item_bias, self.query_map):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:12]

    # ---------------------------------------------------------------- requests
    def _id_map(self) -> dict[str, int]:
        if self._index is None:
            self._index = {s: i for i, s in enumerate(self.item_ids.tolist())}
        return self._index

    def lookup(self, original_ids: list[str]) -> tuple[np.ndarray, int]:
        """Item indices of the known ids (order kept) and the number of unknown ids (the request path)."""
        get = self._id_map().get
        found = [i for i in (get(x) for x in original_ids) if i is not None]
        return np.asarray(found, dtype=np.int64), len(original_ids) - len(found)

    def indices(self, original_ids: np.ndarray) -> np.ndarray:
        """Item index of every original id, -1 where the model does not know it (bulk, aligned)."""
        get = self._id_map().get
        return np.fromiter((get(str(x), -1) for x in original_ids), dtype=np.int64, count=len(original_ids))

    def user_vector(self, items: np.ndarray) -> np.ndarray:
        """The query q (d,) of one history of item indices; the null vector for an empty history (cold start:
        every score is then the bias, so the top items are the most popular ones, §6.2)."""
        if len(items) == 0:
            return np.zeros(self.dim, dtype=np.float32)
        total = self.encoder_vectors[items].sum(axis=0)
        u = total / np.float32(len(items) if self.reduce == "mean" else np.sqrt(len(items)))
        return u if self._identity_map else (u @ self.query_map).astype(np.float32)

    def scores(self, query: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Exact s(u, i) of the given items (all when None)."""
        if items is None:
            return self.item_vectors @ query + self.item_bias
        return self.item_vectors[items] @ query + self.item_bias[items]

    # ---------------------------------------------------------------- MIPS forms
    def mips_items(self, items: np.ndarray | None = None) -> np.ndarray:
        """[v_i; b_i] (n, d + 1)."""
        sel = slice(None) if items is None else items
        return np.hstack([self.item_vectors[sel], self.item_bias[sel, None]]).astype(np.float32)

    # ---------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        names = sorted(self.partitions)
        sizes = [len(self.partitions[n]) for n in names]
        arrays = {
            "item_ids": self.item_ids.astype(str),
            "item_vectors": self.item_vectors,
            "item_bias": self.item_bias,
            "query_map": self.query_map,
            "partition_ids": np.asarray(names, dtype=str),
            "partition_indptr": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "partition_items": np.concatenate([self.partitions[n] for n in names]).astype(np.int64),
        }
        tied = self.encoder_vectors is self.item_vectors or np.shares_memory(self.encoder_vectors, self.item_vectors)
        if not tied:
            arrays["encoder_vectors"] = self.encoder_vectors
        config = {"reduce": self.reduce, "tied": bool(tied), "version": self.version}
        return save_artifact(directory, "serving-model", arrays, config=config, extra={"info": self.info})

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = False) -> ServingModel:
        a, manifest = load_artifact(directory, kind="serving-model", mmap=mmap)
        ptr, flat = a["partition_indptr"], a["partition_items"]
        partitions = {str(n): np.asarray(flat[ptr[k] : ptr[k + 1]]) for k, n in enumerate(a["partition_ids"])}
        vectors = np.asarray(a["item_vectors"], dtype=np.float32)
        return cls(
            item_ids=np.asarray(a["item_ids"]).astype(str),
            encoder_vectors=vectors if manifest["config"]["tied"] else np.asarray(a["encoder_vectors"]),
            item_vectors=vectors,
            item_bias=np.asarray(a["item_bias"], dtype=np.float32),
            query_map=np.asarray(a["query_map"], dtype=np.float32),
            reduce=manifest["config"]["reduce"],
            partitions=partitions,
            info=manifest.get("info", {}),
        )


def from_model(model: Any, item_ids: np.ndarray, partitions: dict[str, np.ndarray] | None = None) -> ServingModel:
    """The serving form of a fitted LED or raw-SVD model (the models whose user vector is a mean of item
    vectors: no per-user parameter, and one inner product per item)."""
    name = getattr(model, "name", type(model).__name__)
    if name == "led":
        vectors, bias, qmap, reduce = model.item_vectors_, model.item_bias_, model.query_map_, model.reduce
    elif name == "svd":
        vectors = model.item_vectors_
        bias, qmap, reduce = np.zeros(len(vectors), np.float32), np.eye(vectors.shape[1], dtype=np.float32), "mean"
    else:
        raise ValueError(f"model {name!r} cannot be served by inner-product retrieval; export led or svd")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(item_ids) != len(vectors):
        raise ValueError(f"{len(item_ids)} item ids for {len(vectors)} item vectors")
    return ServingModel(
        item_ids=np.asarray(item_ids).astype(str),
        encoder_vectors=vectors,
        item_vectors=vectors,
        item_bias=np.asarray(bias, dtype=np.float32),
        query_map=np.asarray(qmap, dtype=np.float32),
        reduce=reduce,
        partitions=partitions or {},
        info={"model": name, "params": model.get_params()},
    )


def nearest_neighbour_form(mips_items: np.ndarray) -> tuple[np.ndarray, float]:
    """Bachrach et al.'s reduction: items [x; √(M² − ‖x‖²)] (n, D + 1), and M. Queries get a 0 appended."""
    norms2 = np.einsum("ij,ij->i", mips_items, mips_items)
    m2 = float(norms2.max()) if len(norms2) else 0.0
    extra = np.sqrt(np.maximum(m2 - norms2, 0.0))[:, None]
    return np.hstack([mips_items, extra]).astype(np.float32), float(np.sqrt(m2))


def partition_items(
    item_partition_pairs: tuple[np.ndarray, np.ndarray], partition_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Catalogues from (item index, partition index) pairs of the event log: each partition's distinct items."""
    items, parts = item_partition_pairs
    out = {}
    order = np.argsort(parts, kind="stable")
    items, parts = items[order], parts[order]
    bounds = np.searchsorted(parts, np.arange(len(partition_ids) + 1))
    for k, name in enumerate(partition_ids):
        out[str(name)] = np.unique(items[bounds[k] : bounds[k + 1]]).astype(np.int64)
    return {k: v for k, v in out.items() if len(v)}
