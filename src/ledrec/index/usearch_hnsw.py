"""HNSW graph from usearch (Unum), measured against hnswlib and faiss."""

from __future__ import annotations

import numpy as np

from ledrec.index.base import GraphIndex


class USearchIndex(GraphIndex):
    kind = "usearch"

    def __init__(
        self, vectors: np.ndarray, form: str = "nn", M: int = 32, ef_construction: int = 200, ef_search: int = 100
    ) -> None:
        from usearch.index import Index as UIndex

        super().__init__(vectors, form, M, ef_construction)
        metric = "ip" if self.form == "ip" else "l2sq"
        self.graph = UIndex(
            ndim=self.data.shape[1], metric=metric, dtype="f32", connectivity=M, expansion_add=ef_construction
        )
        if len(self.data):
            self.graph.add(np.arange(len(self.data)), self.data)
        self.set_ef(ef_search)

    def set_ef(self, ef: int) -> None:
        self.ef_search = ef
        self.graph.expansion_search = ef

    def _search(self, queries: np.ndarray, k: int) -> np.ndarray:
        self.graph.expansion_search = max(self.ef_search, k)
        matches = self.graph.search(queries, k, threads=1)
        keys = np.atleast_2d(matches.keys)
        return keys.astype(np.int64)
