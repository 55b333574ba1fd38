"""Exact top-k by a full matrix-vector product: the oracle every approximate index is measured against."""

from __future__ import annotations

import numpy as np

from ledrec.index.base import Index, exact_top


class ExactIndex(Index):
    kind = "exact"

    def __init__(self, vectors: np.ndarray, form: str = "ip") -> None:
        super().__init__(vectors, "ip")  # the reduction changes nothing for an exact search
        self._max_norm: float | None = None  # the largest row norm (exact_top's bound), at the first search

    def _search(self, queries: np.ndarray, k: int) -> np.ndarray:
        scores = queries @ self.vectors.T  # (n, I)
        if k < scores.shape[1]:
            return np.argpartition(-scores, k - 1, axis=1)[:, :k].astype(np.int64)
        return np.tile(np.arange(scores.shape[1], dtype=np.int64), (len(queries), 1))

    def search_excluding(self, query: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One query: the excluded positions (distinct) masked instead of searched past, the top k by the
        served score (:func:`~ledrec.index.base.exact_top`)."""
        if self._max_norm is None:
            self._max_norm = float(np.sqrt(np.einsum("ij,ij->i", self.vectors, self.vectors).max(initial=0.0)))
        return exact_top(self.vectors, np.asarray(query, dtype=np.float32), k, exclude, self._max_norm)
