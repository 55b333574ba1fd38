"""HNSW graph from hnswlib (Malkov & Yashunin), the seed paper's choice (§6.2)."""

from __future__ import annotations

import os

import numpy as np

from ledrec.index.base import GraphIndex


class HNSWIndex(GraphIndex):
    kind = "hnswlib"

    def __init__(
        self,
        vectors: np.ndarray,
        form: str = "nn",
        M: int = 32,
        ef_construction: int = 200,
        ef_search: int = 100,
        threads: int = 0,
        seed: int = 0,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        import hnswlib

        super().__init__(vectors, form, M, ef_construction)
        space = "ip" if self.form == "ip" else "l2"
        self.graph = hnswlib.Index(space=space, dim=self.data.shape[1])
        if path is not None and os.path.exists(path):  # a graph saved by save(): no rebuild
            self.graph.load_index(str(path), max_elements=len(self.data))
        else:
            self.graph.init_index(
                max_elements=max(len(self.data), 1), ef_construction=ef_construction, M=M, random_seed=seed
            )
            self.graph.set_num_threads(threads or os.cpu_count() or 1)
            if len(self.data):
                self.graph.add_items(self.data, np.arange(len(self.data)))
        self.graph.set_num_threads(1)  # one query, one thread: the service parallelises across requests
        self.set_ef(ef_search)

    def set_ef(self, ef: int) -> None:
        self.ef_search = ef
        self.graph.set_ef(ef)

    def _search(self, queries: np.ndarray, k: int) -> np.ndarray:
        self.graph.set_ef(max(self.ef_search, k))
        labels, _ = self.graph.knn_query(queries, k=k)
        return labels.astype(np.int64)

    def save(self, path: str | os.PathLike[str]) -> None:
        self.graph.save_index(str(path))
