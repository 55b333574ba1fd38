"""BPR matrix factorisation (Rendle et al., UAI 2009) from the ``implicit`` library — the second peer of
issue 19 (optional: ``pip install 'ledrec[peers]'``).

BPR has per-user factors and no fold-in of its own. A history is scored with the factor of the training
user whose training row it is exactly (the BARS boards score training users on their training rows: BPR
as published); any other history — a new user — gets the least-squares user vector that best reproduces
it from the item factors, u = (Y_hᵀY_h + λI)⁻¹ Y_hᵀ1 (ALS's fold-in without confidence weights), so new
users need no retraining here either. implicit appends an item-bias column to the item factors (and a
constant 1 to the user factors); it is kept in both.
"""

from __future__ import annotations

import hashlib
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ledrec.data.splits import EvalSet
from ledrec.errors import ConfigError
from ledrec.models.base import Option, Recommender
from ledrec.similarity import unit_rows


def _row_key(indices: np.ndarray) -> str:
    return hashlib.blake2b(np.sort(indices).astype(np.int64).tobytes(), digest_size=16).hexdigest()


class BPRMF(Recommender):
    """Matrix factorisation trained by Bayesian personalised ranking (implicit's
    ``BayesianPersonalizedRanking``); known users keep their factor, new histories are folded in."""

    name = "bprmf"
    options = (
        Option("factors", int, 128, "latent factors d", searchable=True, low=1),
        Option("learning_rate", float, 0.05, "SGD learning rate", searchable=True, low=0.0, low_open=True),
        Option("regularization", float, 0.01, "L2 weight of the factors", searchable=True, low=0.0),
        Option("iterations", int, 100, "epochs of sampled (user, positive, negative) triples", searchable=True, low=1),
    )

    def fit(self, X: sp.csr_matrix, validation: EvalSet | None = None, *, show_progress: bool | None = None) -> Self:
        X = self._training_matrix(X, show_progress)
        try:
            from implicit.cpu.bpr import BayesianPersonalizedRanking
        except ImportError:
            raise ConfigError("the bprmf model needs the implicit library: pip install 'ledrec[peers]'") from None
        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=1,  # its threads update shared factors unsynchronised (Hogwild): seeded runs would differ
        )
        with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads inside them only contend
            model.fit(X, show_progress=self.progress)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)  # (I, d + 1)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)  # (U, d + 1)
        # row content → training user (rows of equal content: the first; their factors differ by noise only)
        keys = [_row_key(X.indices[X.indptr[u] : X.indptr[u + 1]]) for u in range(X.shape[0])]
        self.row_keys_ = np.asarray(keys)
        self.n_items_ = X.shape[1]
        return self

    def similarity_vectors(self) -> np.ndarray:
        """The cosine of the item factors without their last column (implicit's item bias)."""
        self._check_fitted()
        return unit_rows(self.item_factors_[:, :-1])

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        X = self._check_input(X)
        known: dict[str, int] = getattr(self, "_known", None) or {}
        if not known:
            for u, key in enumerate(np.asarray(self.row_keys_).tolist()):
                known.setdefault(key, u)
            self._known = known
        Y = self.item_factors_
        users = np.empty((X.shape[0], Y.shape[1]), dtype=np.float32)
        gram = self.regularization * np.eye(Y.shape[1], dtype=np.float64)
        for row in range(X.shape[0]):
            items = X.indices[X.indptr[row] : X.indptr[row + 1]]
            u = known.get(_row_key(items))
            if u is not None:
                users[row] = self.user_factors_[u]
            elif len(items) == 0:
                users[row] = 0.0
                users[row, -1] = 1.0  # the constant user coordinate: the item bias alone (cold start)
            else:
                Yh = Y[items].astype(np.float64)
                users[row] = np.linalg.solve(Yh.T @ Yh + gram + 1e-9 * np.eye(len(gram)), Yh.sum(axis=0))
        return users @ Y.T  # (n, I)

    def state(self) -> dict[str, Any]:
        return {"item_factors_": self.item_factors_, "user_factors_": self.user_factors_, "row_keys_": self.row_keys_}
