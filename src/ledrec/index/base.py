"""The index contract, and the two ways of handing a maximum-inner-product search to an ANN library.

Forms (``ledrec.export.mips`` explains both):
* ``ip``: the library searches by inner product on [v; b] directly, queries [q; 1];
* ``nn``: the Bachrach et al. reduction — items [v; b; √(M² − ‖·‖²)], queries [q; 1; 0], searched by L2.

Whatever the form, ``search`` returns the exact inner products ⟨[q; 1], [v; b]⟩ of the items it found
(recomputed on the k rows: cheap, and it makes scores comparable across indexes), best first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ledrec.export.mips import nearest_neighbour_form

FORMS = ("ip", "nn")


class Index(ABC):
    kind: str = ""

    def __init__(self, vectors: np.ndarray, form: str = "ip") -> None:
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, not {form!r}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (n, D): MIPS item vectors [v; b]
        self.form = form
        self.data = nearest_neighbour_form(self.vectors)[0] if form == "nn" else self.vectors  # what is indexed

    def __len__(self) -> int:
        return len(self.vectors)

    def query_form(self, queries: np.ndarray) -> np.ndarray:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.form == "nn":
            queries = np.hstack([queries, np.zeros((len(queries), 1), np.float32)])
        return queries

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` positions (n, k) int64 and their inner products (n, k), best first. ``queries`` are
        MIPS queries [q; 1] (n, D). Fewer than k items: the result has ``len(self)`` columns."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self))
        if k == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        positions = self._search(self.query_form(queries), k)
        scores = np.einsum("nkd,nd->nk", self.vectors[positions], queries)
        order = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(positions, order, 1), np.take_along_axis(scores, order, 1)

    def set_ef(self, ef: int) -> None:
        """Search effort of a graph index (candidates kept while walking); the exact index ignores it."""
        self.ef_search = ef

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(n, k) positions of the k best items for queries already in this index's form."""

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, "form": self.form, "items": len(self), "dim": int(self.vectors.shape[1])}


class GraphIndex(Index):
    """An HNSW graph: degree ``M``, build-time candidate list ``ef_construction``, search effort ``ef_search``."""

    def __init__(self, vectors: np.ndarray, form: str, M: int, ef_construction: int) -> None:
        super().__init__(vectors, form)
        self.M, self.ef_construction = M, ef_construction

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "M": self.M, "ef_construction": self.ef_construction, "ef_search": self.ef_search}


def index_kinds() -> dict[str, type[Index]]:
    from ledrec.index.exact import ExactIndex
    from ledrec.index.faiss_hnsw import FaissHNSWIndex
    from ledrec.index.hnsw import HNSWIndex
    from ledrec.index.usearch_hnsw import USearchIndex

    return {c.kind: c for c in (ExactIndex, HNSWIndex, FaissHNSWIndex, USearchIndex)}


def build_index(kind: str, vectors: np.ndarray, **params: Any) -> Index:
    kinds = index_kinds()
    if kind not in kinds:
        raise ValueError(f"unknown index {kind!r}; choose one of {', '.join(kinds)}")
    return kinds[kind](vectors, **params)
