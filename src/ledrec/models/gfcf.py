"""GF-CF (Shen et al., "How Powerful is Graph Convolution for Recommendation?", CIKM 2021): a training-free
item-item graph filter, the strongest no-per-user-parameter family on the BARS boards (with BSPM).

With R the user × item matrix and R̃ = D_U^{-1/2} R D_I^{-1/2} (degree-normalised), a history r is scored

    s(r) = r · R̃ᵀR̃  +  alpha · r · D_I^{-1/2} V_k V_kᵀ D_I^{1/2}

the first term a linear low-pass filter of the item graph (the normalised item-item co-occurrence), the
second the *ideal* low-pass filter onto the top-k right singular vectors V_k of R̃ (the paper: k = 256,
alpha = 0.3). Nothing is learned per user; scoring needs the training matrix itself (R̃ᵀR̃ is applied as
two sparse products, never formed: an I × I matrix would not fit at a million items), so it is a peer to
measure against, not a model the MIPS service can serve.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from ledrec.data.splits import EvalSet
from ledrec.models.base import Option, Recommender
from ledrec.pretrain.spectral import normalized_adjacency


class GFCF(Recommender):
    """The GF-CF graph filter: a linear low-pass filter of the normalised item graph plus ``alpha`` times
    the ideal low-pass filter onto its top-``k`` singular vectors. Training-free (one truncated SVD)."""

    name = "gfcf"
    options = (
        Option("k", int, 256, "singular vectors of the ideal low-pass filter", searchable=True, low=1),
        Option("alpha", float, 0.3, "weight of the ideal low-pass filter", searchable=True, low=0.0),
        Option("svd_iter", int, 7, "power iterations of the randomized SVD", low=0),
    )

    def fit(self, X: sp.csr_matrix, validation: EvalSet | None = None, *, show_progress: bool | None = None) -> Self:
        X = self._training_matrix(X, show_progress)
        norm, item_degree = normalized_adjacency(X)  # R̃ (U, I), the spectral start's matrix too
        self.item_scale_ = (np.where(item_degree > 0, item_degree, np.inf) ** -0.5).astype(np.float32)  # (I,)
        k = min(self.k, min(norm.shape) - 1)
        _, _, vt = randomized_svd(norm, k, n_iter=self.svd_iter, random_state=self.random_state)
        self.vt_ = vt.astype(np.float32)  # (k, I)
        self.norm_indptr_, self.norm_indices_, self.norm_data_ = norm.indptr, norm.indices, norm.data
        self.n_users_fit_ = norm.shape[0]
        self.n_items_ = X.shape[1]
        return self

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        X = self._check_input(X)
        norm = sp.csr_matrix(
            (self.norm_data_, self.norm_indices_, self.norm_indptr_), shape=(int(self.n_users_fit_), self.n_items)
        )
        linear = np.asarray((X @ norm.T @ norm).todense())  # (n, I): r R̃ᵀR̃, two sparse products
        scale = self.item_scale_
        inverse = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)  # D_I^{1/2}, 0 for unseen items
        ideal = ((X @ sp.diags(scale)) @ self.vt_.T) @ self.vt_ * inverse  # (n, I)
        return (linear + self.alpha * ideal).astype(np.float32)
