"""What LED's family shares: the presets (one table of plain values), the serving tables every member learns,
and the scale of a solved start.

Every member — the spectral closed form (:mod:`~ledrec.models.led_spectral`), ALS's weighted square loss in
LED's form (:mod:`~ledrec.models.led_wls`), the paper's trained LED (:mod:`~ledrec.models.led_trained`) —
learns the same four things, served as one inner product:

    encoder_vectors_ (I, d)   the table a user vector averages: u = T^-γ Σ_t E[i_t]   (γ 1: mean, ½: sqrt)
    item_vectors_    (I, d)   the decoder's item vectors V
    item_bias_       (I,)     b
    query_map_       (d, d)   Q: s(u, i) = ⟨u Q, V[i]⟩ + b_i  (PᵀP in project mode, I otherwise)

Options a member leaves at None take their preset's value for the catalogue's size at fit (``"auto"``:
small below :data:`LARGE_CATALOGUE` items, large from there); ``fit`` records what it used in ``params_`` and
never changes a parameter. Which values, and the measurements behind them: docs/led.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.config import Option
from ledrec.models.base import Recommender
from ledrec.similarity import profile_vectors, unit_rows

LARGE_CATALOGUE = 20_000  # items from which "auto" is "large"
COLD_START_BIAS = 0.1  # a solved start's bias: 0.1 × centred log-popularity (orders the cold start, breaks ties)

# member → preset → the values of the options left at None (docs/led.md: where each comes from)
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "spectral": {
        "small": {"dim": 256, "spectral_exponent": 0.25, "spectral_order": 4.0, "svd_iter": 4, "reduce": "mean"},
        "large": {"dim": 1024, "spectral_exponent": 0.5, "spectral_order": 0.0, "svd_iter": 2, "reduce": "mean"},
    },
    "wls": {
        "small": {"dim": 256, "epochs": 10, "svd_iter": 4, "reduce": "sqrt"},
        "large": {"dim": 512, "epochs": 4, "svd_iter": 2, "reduce": "sqrt"},
    },
    "trained": {
        "small": {"dim": 128, "loss": "mult", "share_negatives": "user", "negatives": 1000, "negative_power": 0.0,
                  "mult_after": 0, "dropout": 0.5, "lr": 1e-2, "epochs": 50, "patience": 5, "svd_iter": 5,
                  "reduce": "mean"},
        "large": {"dim": 256, "loss": "mult-css", "share_negatives": "batch", "negatives": 4096,
                  "negative_power": 0.75, "mult_after": 21, "dropout": 0.8, "lr": 3e-3, "epochs": 25, "patience": 0,
                  "svd_iter": 2, "reduce": "mean"},
    },
}  # fmt: skip

PRESET = Option(
    "preset",
    str,
    "auto",
    "the values of the options left unset (docs/led.md): small or large, or auto: by catalogue size (large from "
    f"{LARGE_CATALOGUE:,} items)",
    choices=("auto", "small", "large"),
)
REDUCE = Option(
    "reduce", str, None, "user vector = 1/T (mean) or 1/√T (sqrt) times the sum (default: the preset's)",
    choices=("mean", "sqrt"),
)  # fmt: skip
INIT_SCALE = Option(
    "init_scale",
    float,
    4.0,
    "norm of the starting item vectors; a solved start is scaled so that a user's top logit is its square",
    searchable=True,
    low=0.0,
    low_open=True,
)


def preset_size(preset: str, n_items: int) -> str:
    return preset if preset != "auto" else ("large" if n_items >= LARGE_CATALOGUE else "small")


class LEDTables(Recommender):
    """The serving tables and their use: what every member of LED's family learns and how it scores. A
    subclass's ``fit`` sets ``params_`` (the options it used, presets applied) and calls :meth:`_set_tables`."""

    params_: dict[str, Any]
    preset_member = ""  # the key of PRESETS whose values this member takes

    def effective(self, name: str, n_items: int) -> Any:
        """The value option ``name`` will have when fitting ``n_items`` items (the preset's, where unset)."""
        return self._resolved(self.preset_member, n_items)[name]

    def _resolved(self, member: str, n_items: int, shape: tuple[int, int] | None = None) -> dict[str, Any]:
        """This model's options with the preset's values where they were left at None (and a preset's
        dimension clipped to what a matrix of ``shape`` has: an SVD of rank d needs d < min(shape))."""
        values = self.get_params()
        table = PRESETS[member][preset_size(values.get("preset", "auto"), n_items)]
        out = {k: (table[k] if v is None and k in table else v) for k, v in values.items()}
        if values.get("dim") is None and shape is not None:
            out["dim"] = max(1, min(out["dim"], min(shape) - 1))
        return out

    def _set_tables(
        self,
        encoder: np.ndarray,
        decoder: np.ndarray,
        bias: np.ndarray,
        query_map: np.ndarray | None = None,
        reduce: str = "mean",
    ) -> None:
        self.item_vectors_ = np.ascontiguousarray(decoder, dtype=np.float32)
        self.encoder_vectors_ = self.item_vectors_ if encoder is decoder else np.ascontiguousarray(encoder, np.float32)
        self.item_bias_ = np.asarray(bias, dtype=np.float32)
        dim = self.item_vectors_.shape[1]
        self.query_map_ = np.eye(dim, dtype=np.float32) if query_map is None else np.asarray(query_map, np.float32)
        self.reduce_ = reduce
        self.n_items_ = self.item_vectors_.shape[0]

    # ---------------------------------------------------------------- inference (numpy)
    def user_vectors(self, X: sp.csr_matrix) -> np.ndarray:
        """Encoder: (n, d) mean (or 1/√T-scaled sum) of each history's item vectors."""
        X = self._check_input(X)
        lengths = np.diff(X.indptr).astype(np.float32)
        norm = lengths if self.reduction() == "mean" else np.sqrt(lengths)
        u = np.asarray(X @ self._encoder_vectors())  # (n, d): sum of vectors (X is 0/1)
        return u / np.maximum(norm, 1.0)[:, None]

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        q = self.user_vectors(X) @ self.query_map_  # (n, d)
        return (q @ self.item_vectors_.T + self.item_bias_).astype(np.float32)  # (n, I)

    def similarity_vectors(self) -> np.ndarray:
        """The member's own similarity table where it has one (``similarity_table_``: the spectral closed
        form's), else the score profile W ∝ E Q (VᵀV)^½ (:mod:`ledrec.similarity`), computed once per fitted
        tables."""
        own = getattr(self, "similarity_table_", None)
        if own is not None:
            return unit_rows(own)
        tables = (self._encoder_vectors(), self.query_map_, self.item_vectors_)
        cached = getattr(self, "_profile_cache", None)
        if cached is None or any(a is not b for a, b in zip(cached[0], tables, strict=True)):
            cached = (tables, profile_vectors(*tables))
            self._profile_cache = cached
        return cached[1]

    def reduction(self) -> str:
        """mean or sqrt: what the fit used (a model saved before ``reduce_`` existed: its ``reduce``)."""
        return getattr(self, "reduce_", None) or getattr(self, "reduce", None) or "mean"

    def _encoder_vectors(self) -> np.ndarray:
        """The table the user vector averages (a model saved before ``encoder`` existed is tied)."""
        return getattr(self, "encoder_vectors_", self.item_vectors_)

    def state(self) -> dict[str, np.ndarray]:
        state = {"item_vectors_": self.item_vectors_, "item_bias_": self.item_bias_, "query_map_": self.query_map_}
        if self._encoder_vectors() is not self.item_vectors_:  # untied: the encoder's own table
            state["encoder_vectors_"] = self._encoder_vectors()
        if getattr(self, "similarity_table_", None) is not None:  # the closed form's own similarity
            state["similarity_table_"] = self.similarity_table_
        return state


def cold_start_bias(Y: sp.csr_matrix) -> np.ndarray:
    """A solved start's bias: a small multiple of the centred log-popularity of the targets (counts + 1)."""
    popularity = np.asarray(Y.sum(axis=0)).ravel() + 1.0
    log_pop = np.log(popularity / popularity.sum()).astype(np.float32)
    return (COLD_START_BIAS * (log_pop - log_pop.mean())).astype(np.float32)


def logit_scaled(
    X: sp.csr_matrix, encoder: np.ndarray, decoder: np.ndarray, reduce: str, init_scale: float, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both tables scaled together so that a user's highest logit is ``init_scale``² on average (over 2,048
    seeded users): the ranking unchanged, the small popularity bias of a solved start at a known weight beside
    it, and a trained model starting at the logit scale the softmax trains at."""
    sample = X[np.random.default_rng(random_state).permutation(X.shape[0])[:2048]]
    lengths = np.maximum(np.diff(sample.indptr), 1).astype(np.float32)
    norm = lengths if reduce == "mean" else np.sqrt(lengths)
    top = (np.asarray(sample @ encoder) / norm[:, None] @ decoder.T).max(axis=1)  # (≤2048,)
    scale = math.sqrt(init_scale**2 / max(float(np.mean(top)), 1e-12))
    return encoder * scale, decoder * scale
