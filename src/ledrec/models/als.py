"""ALS for implicit feedback (Hu, Koren & Volinsky, ICDM 2008) from the ``implicit`` library — the peer
users reach for first, measured in the same harness as LED (optional: ``pip install 'ledrec[peers]'``).

ALS has per-user factors; under this project's contract a history is scored by *folding it in*: the user's
factor is the least-squares solution given the fixed item factors (implicit's ``recalculate_user``, the
same solve as ALS's own user step), so new users need no retraining here either — at the price of a d × d
solve per user instead of LED's mean of vectors. Confidence is 1 + ``alpha`` · r (r = 1 for an event).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ledrec.data.splits import EvalSet
from ledrec.errors import ConfigError
from ledrec.models.base import Option, Recommender
from ledrec.similarity import unit_rows


class ALS(Recommender):
    """Matrix factorisation by alternating least squares with confidence weights (implicit's
    ``AlternatingLeastSquares``); histories are folded in by one least-squares user solve."""

    name = "als"
    options = (
        Option("factors", int, 128, "latent factors d", searchable=True, low=1),
        Option("regularization", float, 0.01, "L2 weight λ of both factor tables", searchable=True, low=0.0),
        Option("alpha", float, 1.0, "confidence 1 + alpha·r of an observed event", searchable=True, low=0.0),
        Option("iterations", int, 15, "alternating sweeps", searchable=True, low=1),
    )

    def fit(self, X: sp.csr_matrix, validation: EvalSet | None = None, *, show_progress: bool | None = None) -> Self:
        X = self._training_matrix(X, show_progress)
        # implicit parallelises over users itself; BLAS threads inside its threads only contend (its warning)
        with threadpool_limits(1, "blas"):
            model = self._implicit()
            model.fit(X, show_progress=self.progress)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)  # (I, d)
        self.n_items_ = X.shape[1]
        self._model = model
        return self

    def _implicit(self) -> Any:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError:
            raise ConfigError("the als model needs the implicit library: pip install 'ledrec[peers]'") from None
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
        )

    def similarity_vectors(self) -> np.ndarray:
        """The cosine of the item factors (what implicit's ``similar_items`` answers)."""
        self._check_fitted()
        return unit_rows(self.item_factors_)

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        X = self._check_input(X)
        model = getattr(self, "_model", None)
        if model is None:  # loaded from disk: the item factors are all the fold-in needs
            with threadpool_limits(1, "blas"):
                model = self._model = self._implicit()
            model.item_factors = self.item_factors_
        with threadpool_limits(1, "blas"):  # (its OpenMP loop calls BLAS: OpenBLAS threads inside would contend)
            users = model.recalculate_user(np.arange(X.shape[0]), X)  # (n, d): least squares given the items
        return np.asarray(users @ self.item_factors_.T, dtype=np.float32)  # (n, I)
