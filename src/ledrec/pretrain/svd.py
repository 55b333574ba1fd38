"""Randomized SVD of the sparse PMI matrix → item embeddings (seed paper §4.1, Algorithm 1).

scikit-learn's ``randomized_svd`` (Halko, Martinsson & Tropp 2011) works on the sparse matrix directly:
its cost is a few sparse × dense products with d + oversampling columns, never a dense I × I matrix.
With PMI ≈ U·S·Vᵀ, the item embeddings are U·S^power (power 1 as in criteo/deepr, 0.5 as in Levy et al.),
optionally L2-normalised per row (deepr normalises before fine-tuning).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from ledrec.errors import ConfigError


def item_embeddings(
    M: sp.spmatrix,
    dim: int,
    power: float = 1.0,
    normalize: bool = True,
    n_iter: int = 5,
    oversamples: int = 20,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``dim`` randomized SVD of ``M``; returns (embeddings (I, dim) float32, singular values (dim,)).

    Rows of items with no co-occurrence are zero (and stay zero when normalised).
    """
    n = min(M.shape)
    if not 1 <= dim < n:
        raise ConfigError(f"dim must be in [1, {n - 1}] for a {M.shape} matrix, got {dim}")
    U, S, _ = randomized_svd(
        sp.csr_matrix(M, dtype=np.float32),
        n_components=dim,
        n_oversamples=oversamples,
        n_iter=n_iter,
        random_state=random_state,
    )
    emb = (U * S**power).astype(np.float32)  # (I, d)
    if normalize:
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        emb /= np.maximum(norms, 1e-8)
    return emb, S.astype(np.float32)
