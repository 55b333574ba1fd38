"""Top-k retrieval over exported item vectors: an exact index (the test oracle, and the right choice for
small catalogues) and approximate ones (HNSW graphs from hnswlib, faiss and usearch), behind one tiny API:
``build_index(kind, vectors) → index``, ``index.search(queries, k) → (positions, scores)``.

The implementations are imported when asked for: a server that uses hnswlib never loads faiss."""

from __future__ import annotations

from typing import Any

import numpy as np

from ledrec.index.base import FORMS, Index, nearest_neighbour_form
from ledrec.index.exact import ExactIndex

__all__ = ["FORMS", "ExactIndex", "Index", "build_index", "index_kinds", "nearest_neighbour_form"]


def index_kinds() -> dict[str, type[Index]]:
    from ledrec.index.faiss_hnsw import FaissHNSWIndex
    from ledrec.index.hnsw import HNSWIndex
    from ledrec.index.usearch_hnsw import USearchIndex

    return {c.kind: c for c in (ExactIndex, HNSWIndex, FaissHNSWIndex, USearchIndex)}


def build_index(kind: str, vectors: np.ndarray, **params: Any) -> Index:
    kinds = index_kinds()
    if kind not in kinds:
        raise ValueError(f"unknown index {kind!r}; choose one of {', '.join(kinds)}")
    return kinds[kind](vectors, **params)
