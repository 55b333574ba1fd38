"""The index contract, and the two ways of handing a maximum-inner-product search to an ANN library.

Forms:
* ``ip``: the library searches by inner product on [v; b] directly, queries [q; 1];
* ``nn``: the reduction of MIPS to nearest-neighbour search (Bachrach et al., RecSys 2014) — items
  [v; b; √(M² − ‖·‖²)], queries [q; 1; 0], searched by L2. ANN libraries lose recall on raw inner product
  with vectors of unequal norms (hnswlib issues #74, #214, #570); after the reduction every item has norm M
  and ‖q̃ − x̃‖² = ‖q‖² + M² − 2⟨q, x⟩, so the nearest item is the one with the largest inner product.

Whatever the form, ``search`` returns the exact inner products ⟨[q; 1], [v; b]⟩ of the items it found
(recomputed on the k rows: cheap, and it makes scores comparable across indexes), best first. The request path
(``search_excluding``) scores with :func:`canonical_dot`, the arithmetic the native front repeats to the bit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

FORMS = ("ip", "nn")
EPS32 = 2.0**-24  # float32's unit roundoff


def canonical_dot(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The served score of each row, ⟨row, query⟩ (float32 (n, D) and (D,) → float32 (n,)), as both fronts
    compute it, to the bit: products in float64 (exact for float32 factors), summed in numpy's pairwise order,
    rounded once to float32 (src/ledrec/serve/native/kernel.cc repeats it; tests/serve/test_native.py)."""
    return np.multiply(rows, query, dtype=np.float64).sum(axis=1).astype(np.float32)


def exact_top(
    rows: np.ndarray, query: np.ndarray, k: int, exclude: np.ndarray | None = None, max_norm: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows with the best :func:`canonical_dot` (ties: the lower position), the positions
    ``exclude`` left out: positions and scores, best first. A float32 product finds the candidates — every row
    within twice its rounding bound of the k-th (|error| ≤ (D + 2)·2⁻²⁴·‖row‖·‖query‖ in any summation
    order) — and only those are scored canonically: the answer of scoring every row, at the cost of one
    float32 product. ``max_norm``: the largest row norm, when known."""
    n, width = rows.shape
    k = min(k, n - (0 if exclude is None else len(exclude)))
    if k <= 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    approx = rows @ query
    if exclude is not None and len(exclude):
        approx[exclude] = -np.inf
    largest = float(np.sqrt(np.einsum("ij,ij->i", rows, rows).max())) if max_norm is None else max_norm
    bound = 2.0 * (width + 2) * EPS32 * largest * float(np.linalg.norm(query.astype(np.float64)))
    kth = np.partition(approx, n - k)[n - k]
    candidates = np.flatnonzero(approx >= kth - 2 * bound)
    scores = canonical_dot(rows[candidates], query)
    order = np.argsort(-scores, kind="stable")[:k]
    return candidates[order], scores[order]


def nearest_neighbour_form(mips_items: np.ndarray) -> tuple[np.ndarray, float]:
    """Bachrach et al.'s reduction: items [x; √(M² − ‖x‖²)] (n, D + 1), and M. Queries get a 0 appended."""
    norms2 = np.einsum("ij,ij->i", mips_items, mips_items)
    m2 = float(norms2.max()) if len(norms2) else 0.0
    extra = np.sqrt(np.maximum(m2 - norms2, 0.0))[:, None]
    return np.hstack([mips_items, extra]).astype(np.float32), float(np.sqrt(m2))


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

    def search_excluding(self, query: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The top-``k`` of one MIPS query (D,) leaving out the positions ``exclude`` (a user's history, each
        position once): positions (≤ k,) and their exact scores, best first. The request path: asks for one
        more per excluded item, drops those with a set (a handful of ints: cheaper than np.isin), and scores
        only the survivors."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        n = min(k + len(exclude), len(self))
        if n == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        positions = self._search(self.query_form(query), n)[0]
        if len(exclude):
            excluded = set(exclude.tolist())
            positions = np.fromiter((p for p in positions.tolist() if p not in excluded), np.int64)
        scores = canonical_dot(self.vectors[positions], query)  # exact ⟨[q; 1], [v; b]⟩ of what was found
        order = np.argsort(-scores, kind="stable")[:k]
        return positions[order], scores[order]

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
