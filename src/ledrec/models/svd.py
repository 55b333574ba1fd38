"""The raw pre-trained embeddings as a recommender: PMI + randomized SVD, no fine-tuning.

user vector u = mean of the history's item vectors (as in LED), score s(u, i) = ⟨u, v_i⟩. A useful
baseline on its own (seed paper §4.1): it shows what pre-training alone gives before any fine-tuning.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from ledrec.data.splits import EvalSet
from ledrec.models.base import Option, Recommender
from ledrec.pretrain import PretrainConfig, pretrain
from ledrec.similarity import profile_vectors


class SVD(Recommender):
    name = "svd"
    options = (
        Option("dim", int, 128, "embedding dimension d", searchable=True, low=1),
        Option("svd_alpha", float, 0.75, "PMI context smoothing exponent", searchable=True, low=0.0, high=1.0),
        Option("svd_shift", float, 1.0, "shifted PMI: subtract log(k)", searchable=True, low=0.0, low_open=True),
        Option("svd_min_count", int, 1, "drop items with fewer co-occurrences from pre-training", low=1),
        Option("svd_power", float, 1.0, "SVD embeddings = U·S^power", searchable=True, low=0.0),
    )

    def fit(self, X: sp.csr_matrix, validation: EvalSet | None = None, *, show_progress: bool | None = None) -> Self:
        X = self._training_matrix(X, show_progress)
        emb = pretrain(X, self.pretrain_config())
        self.item_vectors_ = emb.vectors  # (I, d)
        self.pretrain_stats_ = emb.stats
        self.n_items_ = X.shape[1]
        return self

    def similarity_vectors(self) -> np.ndarray:
        """The score profile of the tied tables it is served as (E = V, Q = I; :mod:`ledrec.similarity`)."""
        self._check_fitted()
        return profile_vectors(self.item_vectors_, np.eye(self.item_vectors_.shape[1]), self.item_vectors_)

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(
            dim=self.dim,
            alpha=self.svd_alpha,
            shift=self.svd_shift,
            min_count=self.svd_min_count,
            power=self.svd_power,
            seed=self.random_state,
        )

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        X = self._check_input(X)
        lengths = np.maximum(np.diff(X.indptr), 1).astype(np.float32)
        users = np.asarray(X @ self.item_vectors_) / lengths[:, None]  # (n, d): mean of history vectors
        return (users @ self.item_vectors_.T).astype(np.float32)  # (n, I)
