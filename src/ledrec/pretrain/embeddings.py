"""Pre-training end to end: timelines → co-occurrence → PMI → randomized SVD → item embeddings artifact."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.config import check_fields, option
from ledrec.io import load_artifact, save_artifact
from ledrec.pretrain.cooccurrence import cooccurrence, windowed_cooccurrence
from ledrec.pretrain.pmi import filter_items, pmi
from ledrec.pretrain.svd import item_embeddings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """How item embeddings are pre-trained; each field is also a flag of ``ledrec pretrain``."""

    dim: int = option(128, "embedding dimension", low=1)
    alpha: float = option(0.75, "context-count smoothing exponent (§9.3)", low=0.0, high=1.0)
    shift: float = option(1.0, "k of shifted PMI: log k is subtracted; 1 = plain PMI", low=0.0, low_open=True)
    positive: bool = option(True, "clip PMI at 0 (--no-positive keeps negative values)")
    min_count: int = option(1, "drop items whose total co-occurrence count is below this", low=1)
    window: int | None = option(None, "count pairs within W positions of a time-ordered timeline only", low=1)
    power: float = option(1.0, "embeddings = U·S^power", low=0.0)
    normalize: bool = option(True, "L2-normalise each item vector")
    n_iter: int = option(5, "power iterations of the randomized SVD", low=0)
    seed: int = option(0, "seed of the randomized SVD", low=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class ItemEmbeddings:
    """Pre-trained item vectors; rows of items without co-occurrences are zero."""

    vectors: np.ndarray  # (I, d) float32
    singular_values: np.ndarray  # (d,)
    item_counts: np.ndarray  # (I,) timelines containing each item
    config: PretrainConfig
    item_ids: np.ndarray | None = None  # (I,) original ids, when known
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def aligned_to(self, item_ids: np.ndarray | None, n_items: int) -> ItemEmbeddings:
        """The same embeddings with rows in the order of ``item_ids`` (zero rows for unknown items).

        Without ids on either side, rows are taken as they are, which needs the same number of items.
        """
        if item_ids is None or self.item_ids is None:
            if len(self.vectors) != n_items:
                raise ValueError(f"embeddings have {len(self.vectors)} items, the data {n_items}; no ids to align")
            return self
        position = {str(i): k for k, i in enumerate(self.item_ids.tolist())}
        rows = np.array([position.get(str(i), -1) for i in item_ids.tolist()])
        vectors = np.where((rows >= 0)[:, None], self.vectors[np.maximum(rows, 0)], 0.0).astype(np.float32)
        counts = np.where(rows >= 0, self.item_counts[np.maximum(rows, 0)], 0)
        stats = {**self.stats, "aligned_items_found": int((rows >= 0).sum()), "aligned_items": len(rows)}
        return ItemEmbeddings(vectors, self.singular_values, counts, self.config, np.asarray(item_ids), stats)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        arrays = {"vectors": self.vectors, "singular_values": self.singular_values, "item_counts": self.item_counts}
        if self.item_ids is not None:
            arrays["item_ids"] = self.item_ids
        return save_artifact(directory, "embeddings", arrays, config=asdict(self.config), extra={"stats": self.stats})

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ItemEmbeddings:
        a, manifest = load_artifact(directory, kind="embeddings")
        return cls(
            vectors=a["vectors"],
            singular_values=a["singular_values"],
            item_counts=a["item_counts"],
            config=PretrainConfig(**manifest["config"]),
            item_ids=a.get("item_ids"),
            stats=manifest.get("stats", {}),
        )


def pretrain(
    X: sp.csr_matrix | None = None,
    config: PretrainConfig | None = None,
    *,
    events: tuple[np.ndarray, np.ndarray] | None = None,
    n_items: int | None = None,
    item_ids: np.ndarray | None = None,
    progress: bool = False,
) -> ItemEmbeddings:
    """Item embeddings from a binary user × item matrix ``X`` (all pairs) or, for a ``window``, from
    ``events`` = (users, items) sorted by user then time, with ``n_items``."""
    config = config or PretrainConfig()
    start = time.perf_counter()
    if config.window is not None:
        if events is None or n_items is None:
            raise ValueError("a co-occurrence window needs time-ordered events (users, items) and n_items")
        users, items = events
        C = windowed_cooccurrence(users, items, n_items, config.window, progress=progress)
        counts = np.bincount(np.unique(np.stack([users, items]), axis=1)[1], minlength=n_items)
    else:
        if X is None:
            raise ValueError("pretrain needs a user × item matrix X")
        C = cooccurrence(X, progress=progress)
        counts = np.diff(sp.csc_matrix(X).indptr)
    cooc_s = time.perf_counter() - start
    C, kept = filter_items(C, config.min_count) if config.min_count > 1 else (C, np.ones(C.shape[0], bool))
    M = pmi(C, alpha=config.alpha, shift=config.shift, positive=config.positive)
    pmi_s = time.perf_counter() - start - cooc_s
    vectors, singular = item_embeddings(
        M, config.dim, power=config.power, normalize=config.normalize, n_iter=config.n_iter, random_state=config.seed
    )
    stats = {
        "items": int(C.shape[0]),
        "items_kept": int(kept.sum()),
        "cooccurrence_nnz": int(C.nnz),
        "pmi_nnz": int(M.nnz),
        "cooccurrence_s": round(cooc_s, 3),
        "pmi_s": round(pmi_s, 3),
        "svd_s": round(time.perf_counter() - start - cooc_s - pmi_s, 3),
    }
    log.info("pretrain: %s", stats)
    return ItemEmbeddings(vectors, singular, counts.astype(np.int64), config, item_ids, stats)
