"""A trained model in the form retrieval needs (seed paper §4.2, §6.2).

LED scores s(u, i) = ⟨q(u), v_i⟩ + b_i with q(u) = (1/T · Σ_t v_{i_t}) · Q (Q = PᵀP in project mode, the
identity otherwise). Appending the bias to the item vector and a 1 to the query turns the score into one
inner product, ⟨[q; 1], [v_i; b_i]⟩ = s(u, i), so top-k is a maximum-inner-product search (MIPS).

(How an ANN library is made to search by inner product is the index's concern: ``ledrec.index.base``.)

A :class:`ServingModel` also carries the catalogues (partitions: country, merchant): the items each may
recommend. Saved as ``.npy`` + JSON manifest like every artifact, and validated in full before it is used
(:meth:`ServingModel.validate`): the service must never answer from an export it cannot trust.

Its :attr:`~ServingModel.version` is a content hash over everything it serves (ids, vectors, biases, query
map, catalogue membership, the reduction): two exports answer alike exactly when their versions agree, so
a graph cached for one can never be used for another. Only numpy here: serving never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.errors import ConfigError, check_k
from ledrec.io import MANIFEST, ArtifactError, load_artifact, read_manifest, save_artifact
from ledrec.similarity import profile_vectors, unit_rows

DEFAULT_PARTITION = ""  # a model exported without partitions serves one catalogue under this name
KIND = "serving-model"
REDUCTIONS = ("mean", "sqrt")
# the arrays of an export (encoder_vectors only when the encoder is not tied to the decoder)
REQUIRED = (
    "item_ids",
    "item_vectors",
    "item_bias",
    "query_map",
    "partition_ids",
    "partition_indptr",
    "partition_items",
)
SERVABLE_MODELS = ("led", "svd")  # models whose user vector is a mean of item vectors (no per-user parameter)


@dataclass(frozen=True)
class ServingModel:
    """Frozen: its version is a hash of its content, so a change is a new model (``dataclasses.replace``),
    never an edit that leaves the old version (or a graph cached under it) behind. Do not write into its
    arrays either."""

    item_ids: np.ndarray  # (I,) original ids, str
    encoder_vectors: np.ndarray  # (I, d) float32: u = reduce(rows of the history)
    item_vectors: np.ndarray  # (I, d) float32: the decoder's v_i (LED: the same array as the encoder's)
    item_bias: np.ndarray  # (I,) float32
    query_map: np.ndarray  # (d, d) float32: q = u · Q
    reduce: str = "mean"  # u = sum / T ("mean") or sum / √T ("sqrt")
    partitions: dict[str, np.ndarray] = field(default_factory=dict)  # name → sorted item indices
    info: dict[str, Any] = field(default_factory=dict)  # model name, dataset, params
    # (I, k) float32 or None: the rows whose cosine is the item-item similarity, where the model has its own
    # (the spectral closed form: its graph's co-occurrence profile); None: the score profile of the tables
    similarity_table: np.ndarray | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__  # (frozen) derived state, set once here
        if not self.partitions:
            put(self, "partitions", {DEFAULT_PARTITION: np.arange(len(self.item_ids), dtype=np.int64)})
        put(self, "_index", None)  # original id → index, built on first use
        put(self, "_digests", None)  # sha256 of each saved array, when loaded from disk (verified)
        # full fine-tuning (and raw SVD) has Q = I: skip the d × d product on the request path
        identity = np.array_equal(self.query_map, np.eye(len(self.query_map), dtype=self.query_map.dtype))
        put(self, "_identity_map", bool(identity))

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    @cached_property
    def version(self) -> str:
        """Content hash of everything served (16 hex digits). A loaded export takes it from its manifest's
        checksums, which loading has just verified against the files; a model built in memory hashes the
        bytes it would save. The two agree, so a model keeps its version through save and load."""
        digests = self._digests if self._digests is not None else _npy_digests(self.arrays())
        return content_version(digests, self.reduce)

    @cached_property
    def similarity(self) -> np.ndarray:
        """(I, k) float32 unit rows whose inner product is the item-item similarity the Similar call answers
        — what ``similar_items`` of the fitted model gives: its own similarity table where it has one, else
        the score profile of its tables (:mod:`ledrec.similarity`; docs/similar.md)."""
        if self.similarity_table is not None:
            return unit_rows(self.similarity_table)
        return profile_vectors(self.encoder_vectors, self.query_map, self.item_vectors)

    def validate(self, source: str = "model") -> None:
        """Refuse (:class:`~ledrec.io.ArtifactError`, naming ``source`` and what is wrong) anything that
        could make a request fail or answer wrong: shapes and dtypes that disagree (ids ↔ vectors ↔ biases ↔
        query map d × d), values that are not finite, duplicate ids, catalogue members out of range."""
        n = len(self.item_ids)

        def check(ok: bool, what: str) -> None:
            if not ok:
                raise ArtifactError(f"{source}: {what}")

        check(
            self.item_ids.ndim == 1 and self.item_ids.dtype.kind == "U",
            f"item_ids must be (I,) strings, not {self.item_ids.dtype} {self.item_ids.shape}",
        )
        for name in ("item_vectors", "encoder_vectors"):
            a = getattr(self, name)
            check(a.dtype == np.float32 and a.ndim == 2, f"{name} must be (I, d) float32, not {a.dtype} {a.shape}")
            check(a.shape[0] == n, f"{name} has {a.shape[0]} rows for {n} item ids")
        d = self.item_vectors.shape[1]
        check(d > 0, "item vectors have no dimension")
        check(
            self.encoder_vectors.shape[1] == d,
            f"encoder_vectors have d = {self.encoder_vectors.shape[1]}, item_vectors {d}",
        )
        check(
            self.item_bias.dtype == np.float32 and self.item_bias.shape == (n,),
            f"item_bias must be ({n},) float32, not {self.item_bias.dtype} {self.item_bias.shape}",
        )
        check(
            self.query_map.dtype == np.float32 and self.query_map.shape == (d, d),
            f"query_map must be ({d}, {d}) float32, not {self.query_map.dtype} {self.query_map.shape}",
        )
        table = self.similarity_table
        if table is not None:
            check(
                table.dtype == np.float32 and table.ndim == 2 and table.shape[0] == n and table.shape[1] > 0,
                f"similarity_table must be ({n}, k) float32, not {table.dtype} {table.shape}",
            )
        for name in ("item_vectors", "encoder_vectors", "item_bias", "query_map", "similarity_table"):
            if getattr(self, name) is None:
                continue
            bad = np.size(getattr(self, name)) - int(np.isfinite(getattr(self, name)).sum())
            check(bad == 0, f"{name} has {bad} values that are not finite (NaN or inf)")
        check(self.reduce in REDUCTIONS, f"reduce must be one of {REDUCTIONS}, not {self.reduce!r}")
        check(len(np.unique(self.item_ids)) == n, "item_ids has duplicates: an id would name two items")
        check(len(self.partitions) > 0, "no catalogue (partition)")
        for name, items in self.partitions.items():
            label = f"partition {name[:64]!r}"
            check(
                items.ndim == 1 and items.dtype.kind == "i" and len(items) > 0,
                f"{label} must be a non-empty list of item indices",
            )
            check(bool(items.min() >= 0 and items.max() < n), f"{label} has item indices outside 0..{n - 1}")
            check(bool(np.all(items[1:] > items[:-1])), f"{label} is not sorted and duplicate-free")

    # ---------------------------------------------------------------- requests
    def _id_map(self) -> dict[str, int]:
        if self._index is None:
            object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.item_ids.tolist())})
        return self._index  # type: ignore[return-value]

    def lookup(self, original_ids: Sequence[str]) -> tuple[np.ndarray, int]:
        """Item indices of the known ids, each once, in the order of first appearance, and the number of
        unknown ids (the request path). Once: the model was trained and is evaluated on 0/1 histories, so a
        repeated view must not weigh an item twice in the user vector."""
        get = self._id_map().get
        indices = [get(x) for x in original_ids]
        found = list(dict.fromkeys(i for i in indices if i is not None))
        return np.asarray(found, dtype=np.int64), indices.count(None)

    def indices(self, original_ids: np.ndarray) -> np.ndarray:
        """Item index of every original id, -1 where the model does not know it (bulk, aligned)."""
        get = self._id_map().get
        return np.fromiter((get(str(x), -1) for x in original_ids), dtype=np.int64, count=len(original_ids))

    def user_vector(self, items: np.ndarray) -> np.ndarray:
        """The query q (d,) of one history of item indices; the null vector for an empty history (cold start:
        every score is then the bias, so the top items are the most popular ones, §6.2). In float64, rounded
        once: the rows summed in history order, divided by T (mean) or √T, mapped row by row by the query map
        — the arithmetic the native front repeats to the bit (src/ledrec/serve/native/kernel.cc)."""
        if len(items) == 0:
            return np.zeros(self.dim, dtype=np.float32)
        total = self.encoder_vectors[items].astype(np.float64).sum(axis=0)
        u = total / (len(items) if self.reduce == "mean" else np.sqrt(len(items)))
        if not self._identity_map:
            u = (u[:, None] * self.query_map.astype(np.float64)).sum(axis=0)
        return u.astype(np.float32)

    def scores(self, query: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Exact s(u, i) of the given items (all when None)."""
        if items is None:
            return self.item_vectors @ query + self.item_bias
        return self.item_vectors[items] @ query + self.item_bias[items]

    def top_k(
        self,
        histories: sp.csr_matrix,
        k: int,
        partition: str | None = None,
        exclude: sp.csr_matrix | None = None,
        memory_mb: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` of many users at once (bulk: batch recommendations, holdout evaluation): the
        request path's rules — the catalogue's items only, the history's items excluded (or those of
        ``exclude``, same shape), an empty history answered by the highest biases — by matrix products over
        chunks of users sized to ``memory_mb`` of scores. ``histories``: (n, I) 0/1 in this model's item
        indices. Returns item indices (n, k), -1 where the catalogue has fewer items, and scores (-inf there)."""
        k = check_k(k)
        catalogue = self.partitions[_single(self.partitions) if partition is None else partition]
        n = histories.shape[0]
        histories = sp.csr_matrix(histories, dtype=np.float32)
        if histories.shape[1] != len(self.item_ids):
            raise ConfigError(f"histories have {histories.shape[1]} items, the model {len(self.item_ids)}")
        excluded = histories if exclude is None else sp.csr_matrix(exclude, dtype=np.float32)
        excluded = excluded[:, catalogue].tocsr()  # (n, |catalogue|): what may not be answered
        lengths = np.diff(histories.indptr).astype(np.float32)
        norm = np.maximum(lengths if self.reduce == "mean" else np.sqrt(lengths), 1.0)
        vectors, bias = self.item_vectors[catalogue], self.item_bias[catalogue]  # (c, d), (c,)
        kk = min(k, len(catalogue))
        items = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        step = max(1, (memory_mb << 20) // (4 * max(len(catalogue), 1)))
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            u = np.asarray(histories[lo:hi] @ self.encoder_vectors) / norm[lo:hi, None]  # (b, d)
            q = u if self._identity_map else u @ self.query_map
            s = (q.astype(np.float32) @ vectors.T + bias).astype(np.float32)  # (b, c)
            block = excluded[lo:hi]
            s[np.repeat(np.arange(hi - lo), np.diff(block.indptr)), block.indices] = -np.inf
            top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]  # (b, kk), unordered
            top_scores = np.take_along_axis(s, top, 1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            top, top_scores = np.take_along_axis(top, order, 1), np.take_along_axis(top_scores, order, 1)
            found = np.isfinite(top_scores)
            items[lo:hi, :kk] = np.where(found, catalogue[top], -1)
            scores[lo:hi, :kk] = np.where(found, top_scores, -np.inf)
        return items, scores

    # ---------------------------------------------------------------- MIPS forms
    def mips_items(self, items: np.ndarray | None = None) -> np.ndarray:
        """[v_i; b_i] (n, d + 1)."""
        sel = slice(None) if items is None else items
        return np.hstack([self.item_vectors[sel], self.item_bias[sel, None]]).astype(np.float32)

    # ---------------------------------------------------------------- persistence
    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the export, exactly as :meth:`save` writes them."""
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
        if not self.tied:
            arrays["encoder_vectors"] = self.encoder_vectors
        if self.similarity_table is not None:
            arrays["similarity_table"] = self.similarity_table
        return arrays

    @property
    def tied(self) -> bool:
        return self.encoder_vectors is self.item_vectors or np.shares_memory(self.encoder_vectors, self.item_vectors)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        self.validate(str(directory))
        config = {"reduce": self.reduce, "tied": self.tied, "content_version": self.version}
        return save_artifact(directory, KIND, self.arrays(), config=config, extra={"info": self.info})

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = False) -> ServingModel:
        """Read and validate an export (:class:`~ledrec.io.ArtifactError` naming the file and the fault)."""
        a, manifest = load_artifact(directory, kind=KIND, mmap=mmap)
        config = manifest.get("config", {})
        model = cls.from_arrays(a, config.get("reduce"), config.get("tied"), manifest.get("info", {}), str(directory))
        model.validate(str(directory))
        object.__setattr__(model, "_digests", {name: meta["sha256"] for name, meta in manifest["arrays"].items()})
        if config.get("content_version", model.version) != model.version:  # (older exports: no such key)
            raise ArtifactError(
                f"{directory}: manifest content_version {config['content_version']!r} is not the content's "
                f"{model.version!r}"
            )
        return model

    @classmethod
    def from_arrays(
        cls, a: dict[str, np.ndarray], reduce: Any, tied: Any, info: dict[str, Any] | None = None, source: str = "model"
    ) -> ServingModel:
        """A model from the arrays of :meth:`arrays` (an export's files, or a copy sent to Spark workers);
        ArtifactError naming ``source`` when they do not form one. Not validated: call :meth:`validate`."""
        missing = [n for n in (*REQUIRED, *(() if tied else ("encoder_vectors",))) if n not in a]
        if missing or not isinstance(tied, bool):
            raise ArtifactError(f"{source}: the export lacks {', '.join(missing) or 'config.tied'}")
        ptr, flat, names = a["partition_indptr"], a["partition_items"], a["partition_ids"]
        if not (
            ptr.dtype.kind == "i" and ptr.shape == (len(names) + 1,) and names.dtype.kind == "U" and flat.ndim == 1
        ) or not (ptr[0] == 0 and ptr[-1] == len(flat) and np.all(np.diff(ptr) >= 0)):
            raise ArtifactError(f"{source}: partition_indptr does not delimit partition_items by partition_ids")
        if len(np.unique(names)) != len(names):
            raise ArtifactError(f"{source}: partition_ids has duplicates")
        partitions = {str(n): np.asarray(flat[ptr[k] : ptr[k + 1]]) for k, n in enumerate(names)}
        vectors = np.asarray(a["item_vectors"])
        return cls(
            item_ids=np.asarray(a["item_ids"]),
            encoder_vectors=vectors if tied else np.asarray(a["encoder_vectors"]),
            item_vectors=vectors,
            item_bias=np.asarray(a["item_bias"]),
            query_map=np.asarray(a["query_map"]),
            reduce=reduce,
            partitions=partitions,
            info=info or {},
            similarity_table=None if "similarity_table" not in a else np.asarray(a["similarity_table"]),
        )

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike[str]) -> ServingModel:
        """The serving form of a run directory (``ledrec run --out``: ``model/`` and ``items/``) or of a saved
        model (``model.save(DIR)``, which keeps its item ids) of a servable model, one catalogue, read with
        numpy only (the arrays LED and SVD save), so that serving never needs the training stack."""
        run_dir = Path(run_dir)
        saved = (run_dir / MANIFEST).is_file()  # model.save(DIR) itself, not a run directory around it
        model_dir = run_dir if saved else run_dir / "model"
        arrays, manifest = load_artifact(model_dir, kind="model")
        name = manifest.get("model")
        if name not in SERVABLE_MODELS:
            raise ArtifactError(
                f"{model_dir}: a {name!r} model cannot be served by inner-product retrieval; export led or svd"
            )
        if saved:
            ids = {"item_ids": arrays["item_ids"]} if "item_ids" in arrays else {}
            if not ids:
                raise ArtifactError(
                    f"{run_dir}: the saved model has no item ids; fit it on ledrec.Interactions (or set "
                    "model.item_ids) before model.save"
                )
        else:
            ids, _ = load_artifact(run_dir / "items", kind="vocabulary")
        if "item_vectors_" not in arrays or "item_ids" not in ids:
            raise ArtifactError(f"{run_dir}: the run lacks item_vectors_ or its item ids")
        vectors = np.ascontiguousarray(arrays["item_vectors_"], dtype=np.float32)
        n, d = vectors.shape if vectors.ndim == 2 else (0, 0)
        encoder = arrays.get("encoder_vectors_")  # an untied LED's encoder table (absent: tied)
        table = arrays.get("similarity_table_")  # the spectral closed form's own similarity (absent: none)
        model = cls(
            item_ids=np.asarray(ids["item_ids"]).astype(str),
            encoder_vectors=vectors if encoder is None else np.ascontiguousarray(encoder, dtype=np.float32),
            item_vectors=vectors,
            item_bias=np.asarray(arrays.get("item_bias_", np.zeros(n)), dtype=np.float32),
            query_map=np.asarray(arrays.get("query_map_", np.eye(d)), dtype=np.float32),
            reduce=_fitted_reduction(manifest),
            info={
                "model": name,
                "params": manifest.get("config", {}),
                "run_dir": str(run_dir),
                "dataset": manifest.get("dataset"),
            },
            similarity_table=None if table is None else np.ascontiguousarray(table, dtype=np.float32),
        )
        model.validate(str(run_dir))
        return model


def _fitted_reduction(manifest: dict[str, Any]) -> str:
    """The user-vector reduction a saved model was fitted with: its ``reduce_`` (models of LED's family since
    they resolve presets without changing a parameter), else its ``reduce`` option, else the mean."""
    fitted = manifest.get("fitted", {}).get("reduce_")
    return fitted or manifest.get("config", {}).get("reduce") or "mean"


def _single(partitions: dict[str, np.ndarray]) -> str:
    if len(partitions) != 1:
        raise ValueError(f"name one of the {len(partitions)} partitions")
    return next(iter(partitions))


def is_export(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a serving export (a manifest of kind serving-model)."""
    try:
        return read_manifest(directory).get("kind") == KIND
    except ArtifactError:
        return False


def content_version(digests: dict[str, str], reduce: str) -> str:
    """16 hex digits of sha256 over the arrays' checksums (by name) and the reduction."""
    return hashlib.sha256(json.dumps({"arrays": digests, "reduce": reduce}, sort_keys=True).encode()).hexdigest()[:16]


class _HashingWriter:
    """A file-like sink that only hashes what is written: the sha256 of an array's .npy bytes, unsaved."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.hash.update(data)
        return len(data)


def _npy_digests(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    out = {}
    for name, array in arrays.items():
        sink = _HashingWriter()
        np.lib.format.write_array(sink, np.asarray(array), allow_pickle=False)
        out[name] = sink.hash.hexdigest()
    return out


def from_model(model: Any, item_ids: np.ndarray, partitions: dict[str, np.ndarray] | None = None) -> ServingModel:
    """The serving form of a fitted LED or raw-SVD model (the models whose user vector is a mean of item
    vectors: no per-user parameter, and one inner product per item)."""
    name = getattr(model, "name", type(model).__name__)
    encoder, table = None, None
    if name == "led":
        table = getattr(model, "similarity_table_", None)
        vectors, bias, qmap, reduce = model.item_vectors_, model.item_bias_, model.query_map_, model.reduction()
        own = getattr(model, "encoder_vectors_", None)  # untied: the encoder's own table; tied: the same array
        if own is not None and own is not vectors:
            encoder = np.ascontiguousarray(own, dtype=np.float32)
    elif name == "svd":
        vectors = model.item_vectors_
        bias, qmap, reduce = np.zeros(len(vectors), np.float32), np.eye(vectors.shape[1], dtype=np.float32), "mean"
    else:
        raise ConfigError(f"model {name!r} cannot be served by inner-product retrieval; export led or svd")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if isinstance(item_ids, str | bytes) or len(item_ids) != len(vectors):
        raise ConfigError(f"{len(item_ids)} item ids for {len(vectors)} item vectors (model.item_ids has them)")
    return ServingModel(
        item_ids=np.asarray(item_ids).astype(str),
        encoder_vectors=vectors if encoder is None else encoder,
        item_vectors=vectors,
        item_bias=np.asarray(bias, dtype=np.float32),
        query_map=np.asarray(qmap, dtype=np.float32),
        reduce=reduce,
        partitions=partitions or {},
        info={"model": name, "params": model.used_params() if hasattr(model, "used_params") else model.get_params()},
        similarity_table=None if table is None else np.ascontiguousarray(table, dtype=np.float32),
    )


def catalogues_from_events(model: ServingModel, logs: Iterable[Any]) -> dict[str, np.ndarray] | None:
    """One catalogue per value of the event logs' partition column (country, merchant): the items of the
    model that occur with it. ``logs``: :class:`~ledrec.data.interactions.Interactions` sharing their
    partition vocabulary. None when the logs have no partition column (then the model serves one
    catalogue); items of the log the model never saw cannot be served and are left out."""
    items_per_log, parts_per_log, names = [], [], None
    for log in logs:
        if log.partition is None:
            return None
        names = log.partitions.ids
        items_per_log.append(model.indices(log.items.ids)[log.item])
        parts_per_log.append(log.partition)
    if names is None:
        return None
    items, parts = np.concatenate(items_per_log), np.concatenate(parts_per_log)
    known = items >= 0
    return partition_items((items[known], parts[known]), names)


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
