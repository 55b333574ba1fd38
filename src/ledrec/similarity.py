"""Item-item similarity of the models served as one inner product, shared by the models (``similar_items``)
and the service (the Similar call), so that the two answer alike.

An LED scores item j for a one-item history {i} as S_ij = E_i Q v_jᵀ (+ b_j). Its *score profile* similarity
calls two items alike when the model, shown either one, scores every item alike: the cosine of rows S_i and
S_j, which is the cosine of W_i and W_j for W = E Q (VᵀV)^½ — d-dimensional vectors, so an index answers it.
docs/similar.md compares it on held-out users and MovieLens genres with the decoder's and the encoder's own
cosines, the one-item-history score, PMI-SVD vectors and item-kNN cosine: of what LED's tables can give, the
profile recovers held-out co-occurrence best for both LED variants on both datasets measured, and it needs no
table beyond the served ones. A model with a similarity of its own (the closed form: its graph's V Σ² rows,
better still) carries it as a table instead (``similarity_table_``, ``ServingModel.similarity_table``).
"""

from __future__ import annotations

import numpy as np


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to norm 1; a zero row (an item never seen) stays zero: it is alike to nothing."""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.where(norms > 0, v / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)


def profile_vectors(encoder: np.ndarray, query_map: np.ndarray, decoder: np.ndarray) -> np.ndarray:
    """Unit rows W_i ∝ E_i Q (VᵀV)^½: ⟨W_i, W_j⟩ is the cosine of the one-item score rows of i and j
    (float64 inside: VᵀV's square root from its eigen-decomposition)."""
    gram = decoder.T.astype(np.float64) @ decoder.astype(np.float64)
    values, basis = np.linalg.eigh(gram)
    root = (basis * np.sqrt(np.maximum(values, 0.0))) @ basis.T
    return unit_rows((encoder.astype(np.float64) @ query_map.astype(np.float64)) @ root)


def exact_similar(
    unit: np.ndarray, item: int, k: int, candidates: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` items (indices into ``unit``, best first, ties by index) of highest cosine with ``item``
    among ``candidates`` (default: all), never ``item`` itself nor an item with a zero row; empty when
    ``item``'s own row is zero."""
    pool = np.arange(len(unit)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    query = unit[item]
    if not query.any():
        return np.empty(0, np.int64), np.empty(0, np.float32)
    rows = unit[pool]
    keep = (pool != item) & rows.any(axis=1)
    pool, scores = pool[keep], rows[keep] @ query
    order = np.lexsort((pool, -scores))[:k]
    return pool[order], scores[order].astype(np.float32)
