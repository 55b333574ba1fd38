"""The one protocol every recommender follows (the contract test in ``tests/models`` checks each).

* ``fit(X)`` learns from a training user × item matrix and returns ``self``; learned attributes end in
  ``_`` (scikit-learn style). Models that tune themselves during training (early stopping) may also take
  ``validation``, an :class:`EvalSet` of held-out users.
* ``score(H)`` scores every item for a batch of *histories* ``H`` (n × I, users never seen in training:
  fold-in). No model keeps per-user parameters, so a new user needs no retraining.
* ``recommend(H, k)`` is the top-k of ``score`` without the history's own items.
* ``save(dir)`` / ``load(dir)`` round-trip the learned state as ``.npy`` arrays plus a JSON manifest.

Hyper-parameters are declared once per model as :class:`Option` objects; the CLI builds its flags from them.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from ledrec.data.splits import EvalSet
from ledrec.evaluate.ranking import top_k
from ledrec.io import load_artifact, save_artifact


@dataclass(frozen=True)
class Option:
    """A hyper-parameter: CLI flag ``--name`` (underscores become dashes). ``searchable`` options accept a
    comma-separated list on the command line, and ``ledrec run`` picks the best value on validation."""

    name: str
    type: type
    default: Any
    help: str
    searchable: bool = False
    choices: tuple[Any, ...] | None = None


class Recommender(ABC):
    name: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()
    uses_validation: ClassVar[bool] = False  # True: fit() selects checkpoints on a validation EvalSet
    # True: fit() also takes ``targets=`` and ``pretrain_matrix=`` (multi-feedback data, seed paper §4.3)
    accepts_side_matrices: ClassVar[bool] = False
    progress: bool = False  # show progress bars while fitting
    item_ids: np.ndarray | None = None  # original ids of the columns, when the caller knows them

    def __init__(self, **params: Any) -> None:
        known = {o.name: o for o in self.options}
        unknown = set(params) - set(known) - {"random_state"}
        if unknown:
            raise TypeError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        for o in self.options:
            value = params.get(o.name, o.default)
            if o.choices is not None and value not in o.choices:
                raise ValueError(f"{self.name}: {o.name} must be one of {o.choices}, not {value!r}")
            setattr(self, o.name, value)
        self.random_state = params.get("random_state", 0)

    def refit_params(self) -> dict[str, Any]:
        """Parameters for refitting on a bigger training matrix after selection (e.g. with the number of
        epochs that validation chose); by default the same parameters."""
        return self.get_params()

    def get_params(self) -> dict[str, Any]:
        return {o.name: getattr(self, o.name) for o in self.options} | {"random_state": self.random_state}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({inner})"

    # ------------------------------------------------------------------ the protocol
    @abstractmethod
    def fit(self, X: sp.csr_matrix, validation: EvalSet | None = None) -> Self:
        """Learn from a (n_users, n_items) 0/1 matrix; return self."""

    @abstractmethod
    def score(self, X: sp.csr_matrix) -> np.ndarray:
        """(n, n_items) float32 scores for the histories in ``X`` (rows = users not seen in training)."""

    def recommend(self, X: sp.csr_matrix, k: int = 20, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices (n, k), best first, and their scores; the history's items excluded."""
        X = sp.csr_matrix(X, dtype=np.float32)
        scores = np.array(self.score(X), dtype=np.float32, copy=True)
        idx = top_k(scores, k, exclude=X if exclude_seen else None)
        return idx, np.take_along_axis(scores, idx, axis=1)

    @property
    def n_items(self) -> int:
        return int(self.n_items_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{self.name} is not fitted; call fit() first")

    def _check_input(self, X: sp.csr_matrix) -> sp.csr_matrix:
        self._check_fitted()
        X = sp.csr_matrix(X, dtype=np.float32)
        if X.shape[1] != self.n_items_:
            raise ValueError(f"{self.name}: histories have {X.shape[1]} items, the model {self.n_items_}")
        return X

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (default: every attribute ending in ``_`` that is an array)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and isinstance(v, np.ndarray)}

    def save(self, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        self._check_fitted()
        scalars = {k: v for k, v in vars(self).items() if k.endswith("_") and isinstance(v, int | float | str)}
        return save_artifact(
            directory,
            "model",
            self.state(),
            config=self.get_params(),
            extra={"model": self.name, "fitted": scalars, **(extra or {})},
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = False) -> Self:
        arrays, manifest = load_artifact(directory, kind="model", mmap=mmap)
        if manifest["model"] != cls.name:
            raise ValueError(f"{directory} holds a {manifest['model']!r} model, not {cls.name!r}")
        model = cls(**manifest["config"])
        for k, v in {**manifest["fitted"], **arrays}.items():
            setattr(model, k, v)
        return model
