"""HNSW graph from faiss (``IndexHNSWFlat``), measured against hnswlib and usearch."""

from __future__ import annotations

import numpy as np

from ledrec.index.base import GraphIndex


class FaissHNSWIndex(GraphIndex):
    kind = "faiss"

    def __init__(
        self, vectors: np.ndarray, form: str = "nn", M: int = 32, ef_construction: int = 200, ef_search: int = 100
    ) -> None:
        import faiss

        super().__init__(vectors, form, M, ef_construction)
        metric = faiss.METRIC_INNER_PRODUCT if self.form == "ip" else faiss.METRIC_L2
        self.graph = faiss.IndexHNSWFlat(self.data.shape[1], M, metric)
        self.graph.hnsw.efConstruction = ef_construction
        if len(self.data):
            self.graph.add(self.data)
        self.set_ef(ef_search)

    def set_ef(self, ef: int) -> None:
        self.ef_search = ef
        self.graph.hnsw.efSearch = ef

    def _search(self, queries: np.ndarray, k: int) -> np.ndarray:
        self.graph.hnsw.efSearch = max(self.ef_search, k)
        _, labels = self.graph.search(queries, k)
        return labels.astype(np.int64)
