"""LED's closed form: the low-pass filter of the degree-normalised user-item graph as LED's two tables.

GF-CF's filter (Shen et al., CIKM 2021) of R̃ = D_u^-½ R D_i^-½, through one randomized SVD R̃ ≈ U Σ Vᵀ:
the encoder's item vectors D^-β V (optionally weighted by a smooth filter of Σ), the decoder's D^β V, a
small popularity bias as tie-breaker, both scaled so that a user's top logit is ``init_scale``² — a user
vector averaging the encoder's rows and one inner product with the decoder's rebuild the filter's ranking.
Its similar items come from the same decomposition (``similarity_table_``: rows of V Σ²).
No gradient step; seconds on every board (``ledrec.pretrain.spectral`` has the algebra).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from ledrec.config import Option
from ledrec.data.splits import EvalSet
from ledrec.models.led_common import INIT_SCALE, PRESET, REDUCE, LEDTables, cold_start_bias, logit_scaled
from ledrec.similarity import unit_rows

SPECTRAL_OPTIONS = (
    Option(
        "spectral_exponent",
        float,
        None,
        "β: the encoder's item vectors scaled by degree^-β, the decoder's by degree^β (default: the preset's)",
        searchable=True,
        low=0.0,
        high=1.0,
    ),
    Option(
        "spectral_order",
        float,
        None,
        "0 for the ideal low-pass filter (every kept component weighs 1), else the order p of a smooth one, "
        "component j weighted 1 / (1 + (σ_c/σ_j)^p) (default: the preset's)",
        searchable=True,
        low=0.0,
    ),
    Option(
        "spectral_cutoff",
        float,
        0.5,
        "a smooth filter's half-weight point, as a fraction of dim",
        searchable=True,
        low=0.0,
        high=1.0,
        low_open=True,
    ),
)


class SpectralLED(LEDTables):
    """LED's tables as the spectral closed form (no training)."""

    name = "led-spectral"
    preset_member = "spectral"
    options = (
        PRESET,
        Option("dim", int, None, "rank of the filter (default: the preset's)", searchable=True, low=1),
        *SPECTRAL_OPTIONS,
        Option("svd_iter", int, None, "power iterations of the randomized SVD (default: the preset's)", low=0),
        REDUCE,
        Option(
            "encoder",
            str,
            "untied",
            "untied: encoder D^-β V, decoder D^β V; tied: one table (β = 0)",
            choices=("tied", "untied"),
        ),
        INIT_SCALE,
    )

    def fit(
        self,
        X: Any,
        validation: EvalSet | None = None,
        *,
        targets: sp.csr_matrix | None = None,
        pretrain_matrix: sp.csr_matrix | None = None,
        negatives_matrix: sp.csr_matrix | None = None,
        show_progress: bool | None = None,
    ) -> Self:
        """The filter of ``pretrain_matrix`` (default ``X``), the bias of the targets' popularity."""
        from ledrec.pretrain.spectral import spectral_tables

        X = self._training_matrix(X, show_progress)
        graph = X if pretrain_matrix is None else sp.csr_matrix(pretrain_matrix, dtype="float32")
        p = self.params_ = self._resolved("spectral", X.shape[1], X.shape)
        exponent = p["spectral_exponent"] if p["encoder"] == "untied" else 0.0  # one tied table: β = 0
        encoder, decoder, singular = spectral_tables(
            graph,
            p["dim"],
            exponent=exponent,
            order=p["spectral_order"],
            cutoff=p["spectral_cutoff"],
            n_iter=p["svd_iter"],
            random_state=self.random_state,
        )
        # its item-item similarity: rows of V Σ², whose cosines are those of the rows of the rank-d
        # co-occurrence R̃ᵀR̃ = V Σ² Vᵀ — two items alike when the graph puts them with the same items
        # (docs/similar.md: closer to held-out co-occurrence than the tables' score profile, and item-kNN)
        degree = np.asarray((graph != 0).sum(axis=0)).ravel().astype(np.float64)
        basis = decoder / np.where(degree > 0, degree, 1.0)[:, None] ** exponent  # (the decoder is D^β V)
        self.similarity_table_ = unit_rows(basis * singular.astype(np.float64) ** 2)
        self.pretrain_stats_ = {"spectral_exponent": exponent, "top_singular_value": float(singular[0])}
        encoder, decoder = logit_scaled(graph, encoder, decoder, p["reduce"], p["init_scale"], self.random_state)
        bias = cold_start_bias(X if targets is None else sp.csr_matrix(targets))
        if p["encoder"] == "tied":
            encoder = decoder
        self._set_tables(encoder, decoder, bias, reduce=p["reduce"])
        self.best_epoch_, self.history_, self.train_s_ = 0, [], 0.0
        return self
