"""Exact top-k by a full matrix-vector product: the oracle every approximate index is measured against."""

from __future__ import annotations

import numpy as np

from ledrec.index.base import Index


class ExactIndex(Index):
    kind = "exact"

    def __init__(self, vectors: np.ndarray, form: str = "ip") -> None:
        super().__init__(vectors, "ip")  # the reduction changes nothing for an exact search

    def _search(self, queries: np.ndarray, k: int) -> np.ndarray:
        scores = queries @ self.vectors.T  # (n, I)
        if k < scores.shape[1]:
            return np.argpartition(-scores, k - 1, axis=1)[:, :k].astype(np.int64)
        return np.tile(np.arange(scores.shape[1], dtype=np.int64), (len(queries), 1))

    def search_excluding(self, query: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One query, scored once: the excluded positions (distinct) are masked instead of searched past,
        and the top k found by the k-th largest value (np.partition on values is twice as fast as
        np.argpartition on 1,522 scores: 8 vs 16 µs, one-off timeit)."""
        scores = self.vectors @ np.asarray(query, dtype=np.float32)  # (n,)
        if len(exclude):
            scores[exclude] = -np.inf
        k = min(k, len(scores) - len(exclude))
        if k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        top = np.flatnonzero(scores >= kth)  # ≥ k positions (more on ties at the k-th value)
        top = top[np.argsort(-scores[top], kind="stable")[:k]]
        return top.astype(np.int64), scores[top]
