"""Popularity: the seed paper's "Global Best Of" (GBO). Every user gets the most-interacted items."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from ledrec.data.splits import EvalSet
from ledrec.errors import ConfigError
from ledrec.models.base import Recommender


class Popularity(Recommender):
    """Score of item i = number of training users who interacted with i (the same for every user)."""

    name = "pop"

    def fit(self, X: sp.csr_matrix, validation: EvalSet | None = None, *, show_progress: bool | None = None) -> Self:
        X = self._training_matrix(X, show_progress)
        self.item_counts_ = np.asarray((X > 0).sum(axis=0), dtype=np.float32).ravel()  # (I,)
        self.n_items_ = X.shape[1]
        return self

    def similar_items(self, items: Any, k: int = 10) -> Any:
        """Refused: popularity has no item-item relation (every item would get the same list)."""
        raise ConfigError(f"{self.name} has no item-item relation; similar items need a model that relates items")

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        X = self._check_input(X)
        return np.broadcast_to(self.item_counts_, (X.shape[0], self.n_items_))  # (n, I) read-only view
