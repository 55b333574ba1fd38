"""LED: the Lightweight Encoder-Decoder (Koch et al., Criteo; seed paper §4-§5), whole model in one file.

    user vector   u = 1/T · Σ_{t ≤ T} v_{i_t}              (encoder: mean of the timeline's item vectors;
                                                           option 1/√T, §9.3)
    score         s(u, i) = ⟨u, v_i⟩ + b_i                 (decoder: the same item vectors, tied, + a bias;
                                                           untied: the encoder averages a table of its own)

No per-user parameter: a new user's vector is computed from their items, so new users need no retraining.

By default the tables are not trained by gradient at all, whichever was measured best by catalogue size
(docs/led.md): below 20,000 items (``init="spectral"``) they are the low-pass filter of the
degree-normalised user-item graph (``ledrec.pretrain.spectral``, a closed form); from 20,000 items
(``loss="wls"``) they are solved for on ALS's weighted square loss by alternating least squares
(``ledrec.models.wls``). Otherwise item vectors start random or from the PMI + randomized-SVD pre-training
(``init="svd"``), the paper's, and are fine-tuned by one of its four losses. Fine-tuning is
*full* (vectors trained) or *project* (SVD vectors frozen; a d × d matrix P and the biases are learned).
In project mode both sides are projected, s = ⟨P u, P v_i⟩ + b_i = uᵀ(PᵀP)v_i + b_i; computing
q = (PᵀP)u once per user instead of P v_i for every item is the transposition trick (§5.1): per step it
costs B·d² instead of I·d² (``benchmarks/transposition.py`` measures it).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ledrec.data.splits import EvalSet
from ledrec.errors import ConfigError
from ledrec.models.base import Option
from ledrec.models.batches import SHARE_NEGATIVES, bags, decoder_loss, device, drop, sparse_pays_off, split
from ledrec.models.losses import LOSSES
from ledrec.models.training import TorchRecommender, training_options
from ledrec.pretrain import ItemEmbeddings, PretrainConfig, pretrain

log = logging.getLogger(__name__)


class LEDNet(nn.Module):
    """The network. Inputs are bags of item indices (``items``, ``offsets`` as for ``EmbeddingBag``)."""

    def __init__(
        self,
        n_items: int,
        dim: int,
        init_vectors: np.ndarray,
        tuning: str = "full",
        reduce: str = "mean",
        init_bias: np.ndarray | None = None,
        tied: bool = True,
        init_encoder: np.ndarray | None = None,
    ):
        super().__init__()
        self.n_items, self.dim, self.tuning, self.reduce, self.tied = n_items, dim, tuning, reduce, tied
        vectors = torch.as_tensor(np.asarray(init_vectors, dtype=np.float32)).clone()  # (I, d)
        bias = torch.zeros(n_items) if init_bias is None else torch.as_tensor(init_bias, dtype=torch.float32)
        # (I, 1), not (I,): a sparse-gradient lookup needs a table, and a view of one would break it
        self.item_bias = nn.Parameter(bias.clone()[:, None].contiguous())
        if tuning == "full":
            self.item_vectors = nn.Parameter(vectors)  # (I, d), trained
        else:
            self.register_buffer("item_vectors", vectors)  # (I, d), frozen
            self.projection = nn.Parameter(torch.eye(dim))  # (d, d), starts as the identity: the SVD geometry
        if not tied:  # the encoder's own table (I, d), starting where the decoder's does unless given
            start = vectors if init_encoder is None else torch.as_tensor(np.asarray(init_encoder, np.float32))
            self.input_vectors = nn.Parameter(start.clone())

    @property
    def encoder_table(self) -> torch.Tensor:
        return self.item_vectors if self.tied else self.input_vectors

    # ---------------------------------------------------------------- encoder
    def encode(self, items: torch.Tensor, offsets: torch.Tensor, sparse: bool = False) -> torch.Tensor:
        """User vectors (B, d) from bags of items; an empty bag gives the null vector (cold start)."""
        lengths = torch.diff(offsets, append=torch.tensor([len(items)], device=offsets.device))  # (B,)
        norm = lengths.float() if self.reduce == "mean" else lengths.float().sqrt()
        weights = (1.0 / norm.clamp(min=1.0)).repeat_interleave(lengths)  # (n,) 1/T or 1/√T per item
        return F.embedding_bag(
            items, self.encoder_table, offsets, mode="sum", per_sample_weights=weights, sparse=sparse
        )  # (B, d)

    def query(self, user: torch.Tensor) -> torch.Tensor:
        """What the decoder multiplies with raw item vectors: u itself, or (PᵀP)u in project mode."""
        if self.tuning == "project":
            P = self.projection
            return user @ (P.T @ P)  # (B, d): the transposition trick, B·d² instead of I·d²
        return user

    # ---------------------------------------------------------------- decoder
    def score_all(self, query: torch.Tensor) -> torch.Tensor:
        return query @ self.item_vectors.T + self.item_bias[:, 0]  # (B, I)

    def naive_projected_scores(self, user: torch.Tensor) -> torch.Tensor:
        """Project mode without the trick (P applied to every item vector), for tests and benchmarks."""
        P = self.projection
        return (user @ P.T) @ (self.item_vectors @ P.T).T + self.item_bias[:, 0]  # (B, I)


# The defaults measured best, by catalogue size (``preset``). small: full softmax, early stopping on
# validation (docs/led.md: lr 1e-2 and initial norm 4 chosen on ML-1M). large: the Gowalla pipeline of
# docs/led.md — sampled softmax with 4,096 batch-shared, popularity-weighted negatives for 21 epochs, then
# 4 full-softmax epochs; a fixed schedule, so a single candidate trains once (Recall@20 .1781 in 4 min 22 s;
# the full softmax alone: 21 min for .1612, overfitting from epoch 2).
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"dim": 128, "loss": "mult", "share_negatives": "user", "negatives": 1000, "negative_power": 0.0,
              "mult_after": 0, "dropout": 0.5, "lr": 1e-2, "epochs": 50, "patience": 5, "svd_iter": 5,
              "reduce": "mean"},
    "large": {"dim": 256, "loss": "mult-css", "share_negatives": "batch", "negatives": 4096, "negative_power": 0.75,
              "mult_after": 21, "dropout": 0.8, "lr": 3e-3, "epochs": 25, "patience": 0, "svd_iter": 2,
              "reduce": "mean"},
}  # fmt: skip
# With init="spectral" (the default) the start is already a model, and these replace the above: the closed
# form as it is (0 epochs: fine-tuning it with the softmax lowered validation NDCG@20 on ML-1M from the first
# epoch at every learning rate tried; on Gowalla it tested lower, .1838 against .1852 at d 512 — docs/led.md).
# Chosen on validation: ML-1M (small) β .25, a smooth filter (order 4, half weight at component 128 of 256:
# NDCG@20 .2714 against .2655 for the ideal one at 128); Gowalla (large) β .5, the ideal filter on 1,024
# components (NDCG@20 .1126; a smooth one .1099-.1112), two power iterations (11 s of SVD).
# From 20,000 items the default is not the closed form but ALS's loss solved in LED's form (loss "wls", below):
# on validation it led the closed form on both large boards (Gowalla Recall@20 .2199 against .2083; amazon-cds
# .1613 against .1041); on ML-1M the closed form led (.2829 against .2535), so the small preset keeps it.
# `--loss mult` keeps the closed form on a large catalogue (its 0 epochs).
SPECTRAL_PRESETS: dict[str, dict[str, Any]] = {
    "small": {"dim": 256, "spectral_exponent": 0.25, "spectral_order": 4.0, "svd_iter": 4, "epochs": 0,
              "loss": "mult"},
    "large": {"dim": 1024, "spectral_exponent": 0.5, "spectral_order": 0.0, "svd_iter": 2, "epochs": 0,
              "loss": "wls"},
}  # fmt: skip
# With loss="wls" (alternating least squares on ALS's weighted square loss; init is not used), these replace
# both tables above. Chosen on amazon-cds validation (docs/led.md): 1/√T (γ 1/2) over the mean (d 128: Recall@20
# .1273 against .1225), d 512 on a large catalogue (.1621 against .1530 at 256), 4 sweeps there with a
# two-iteration SVD start (amazon-cds .1613 in 29 s, against .1625 after 10 sweeps in 92 s; Gowalla .2199 in
# 32 s, .2201 after 6 sweeps in 58 s), 10 on a small catalogue (sweeps are cheap there).
WLS_PRESETS: dict[str, dict[str, Any]] = {
    "small": {"dim": 256, "epochs": 10, "reduce": "sqrt", "svd_iter": 4},
    "large": {"dim": 512, "epochs": 4, "reduce": "sqrt", "svd_iter": 2},
}  # fmt: skip
LARGE_CATALOGUE = 20_000  # items from which "auto" is "large": the full softmax's B·I·d per step dominates
COLD_START_BIAS = 0.1  # the spectral start's bias: 0.1 × centred log-popularity, at a top logit of init_scale²


def _preset_table(preset: str, init: str, loss: str | None = None) -> dict[str, Any]:
    """The preset's values for ``init`` (and an explicit ``loss``): the spectral ones replace the training
    ones only for that start (the spectral-only options keep theirs either way: unused, but ``get_params()``
    shows a value); loss="wls" has its own, whatever the start."""
    spectral = SPECTRAL_PRESETS[preset]
    own = spectral if init == "spectral" else {k: v for k, v in spectral.items() if k not in PRESETS[preset]}
    table = {**PRESETS[preset], **own}
    return {**table, **WLS_PRESETS[preset]} if (loss or table["loss"]) == "wls" else table


def _by_preset(name: str) -> str:
    """The help text's note on an option whose default the preset decides."""
    notes = []
    if name in PRESETS["small"]:
        notes.append(f"small {PRESETS['small'][name]!r}, large {PRESETS['large'][name]!r}")
    if name in SPECTRAL_PRESETS["small"]:
        small, large = SPECTRAL_PRESETS["small"][name], SPECTRAL_PRESETS["large"][name]
        notes.append(f"init=spectral: small {small!r}, large {large!r}")
    if name in WLS_PRESETS["small"]:
        small, large = WLS_PRESETS["small"][name], WLS_PRESETS["large"][name]
        notes.append(f"loss=wls: small {small!r}, large {large!r}")
    return f" (default: by --preset: {'; '.join(notes)})"


class LED(TorchRecommender):
    """LED, the Lightweight Encoder-Decoder: user vector = mean of the history's item vectors, score =
    ⟨u, v_i⟩ + b_i. Options left at None take the value of ``preset`` when fitting (``get_params()`` then
    shows what was used): "auto" is "small" below 20,000 items and "large" from there."""

    name = "led"
    accepts_side_matrices = True
    options = (
        Option(
            "preset",
            str,
            "auto",
            "the measured-best defaults of the options left unset: small (full softmax, early stopping) or large "
            "(sampled softmax with batch-shared negatives and full-softmax finishing epochs, a fixed schedule); "
            "with init=spectral: the filter's rank and shape, no epoch; "
            f"auto: by catalogue size (large from {LARGE_CATALOGUE:,} items)",
            choices=("auto", "small", "large"),
        ),
        Option("dim", int, None, "embedding dimension d" + _by_preset("dim"), searchable=True, low=1),
        Option(
            "loss",
            str,
            None,
            "training loss; wls: ALS's weighted square loss (confidence 1 + wls_confidence on an event), both "
            "tables solved for by alternating least squares, from an SVD of the events (init is not used; "
            "epochs are its sweeps)" + _by_preset("loss"),
            choices=(*LOSSES, "wls"),
            searchable=True,
        ),
        Option(
            "wls_confidence",
            float,
            30.0,
            "loss=wls: an event weighs 1 + this in the square loss, a non-event 1 (ALS's alpha; amazon-cds "
            "validation chose 30, like implicit's tuned ALS there)",
            searchable=True,
            low=0.0,
        ),
        Option(
            "wls_regularization",
            float,
            100.0,
            "loss=wls: L2 weight λ of both tables, item i's rows weighted λ·((n_i + 1)/mean(n + 1))^η, n_i its "
            "event count (amazon-cds validation: 100 with η 1)",
            searchable=True,
            low=0.0,
            low_open=True,
        ),
        Option(
            "wls_frequency_exponent",
            float,
            1.0,
            "loss=wls: η above, 0 for one λ for every item (Rendle et al. 2022's frequency-scaled L2; amazon-cds "
            "validation Recall@20 at d 256: .1530 with η 1, .1412 with η 0 at its best λ)",
            searchable=True,
            low=0.0,
        ),
        Option(
            "init",
            str,
            "spectral",
            "item vector initialisation: random; svd: PMI + randomized SVD; spectral: the ideal low-pass filter of "
            "the degree-normalised user-item graph (GF-CF's, a closed form: encoder D^-β V, decoder D^β V, a small "
            "popularity bias as tie-breaker; tied: β = 0), used as it is unless epochs are given (from 20,000 "
            "items its preset's loss is wls, which solves for the tables instead: --loss mult keeps the closed form)",
            choices=("random", "svd", "spectral"),
            searchable=True,
        ),
        Option(
            "spectral_exponent",
            float,
            None,
            "β of init=spectral: the encoder's item vectors scaled by degree^-β, the decoder's by degree^β"
            + _by_preset("spectral_exponent"),
            searchable=True,
            low=0.0,
            high=1.0,
        ),
        Option(
            "spectral_order",
            float,
            None,
            "init=spectral: 0 for the ideal low-pass filter (every kept component weighs 1), else the order p of "
            "a smooth one, component j weighted 1 / (1 + (σ_c/σ_j)^p)" + _by_preset("spectral_order"),
            searchable=True,
            low=0.0,
        ),
        Option(
            "spectral_cutoff",
            float,
            0.5,
            "init=spectral with a smooth filter: where its weight is 1/2, as a fraction of dim",
            searchable=True,
            low=0.0,
            high=1.0,
            low_open=True,
        ),
        Option(
            "tuning",
            str,
            "full",
            "full: train the vectors; project: freeze SVD vectors, learn P (d×d)",
            choices=("full", "project"),
        ),
        Option(
            "reduce",
            str,
            None,
            "user vector = 1/T (mean) or 1/√T (sqrt) times the sum" + _by_preset("reduce"),
            choices=("mean", "sqrt"),
        ),
        Option(
            "encoder",
            str,
            "auto",
            "tied: the user vector is the mean of the decoder's item vectors (the paper); untied: of a table of its "
            "own, started at the same vectors (twice the parameters, still one inner product to serve; full tuning); "
            "auto: untied with init=spectral and full tuning, tied otherwise",
            choices=("auto", "tied", "untied"),
            searchable=True,
        ),
        Option(
            "negatives",
            int,
            None,
            "negatives per user for the sampled losses (shared by its positives)" + _by_preset("negatives"),
            low=1,
        ),
        replace(SHARE_NEGATIVES, default=None, help=SHARE_NEGATIVES.help + _by_preset("share_negatives")),
        Option(
            "negative_power",
            float,
            None,
            "negatives drawn ∝ (training count + 1)^power: 0 uniform (the paper's); > 0 favours popular items, "
            "and Mult-CSS weighs each by 1/q (importance sampling) so its partition estimate stays unbiased"
            + _by_preset("negative_power"),
            searchable=True,
            low=0.0,
        ),
        Option(
            "mult_after",
            int,
            None,
            "from this many epochs on, train with the full softmax (mult) instead of the sampled --loss: cheap "
            "sampled epochs first, exact ones to finish (0: never)" + _by_preset("mult_after"),
            searchable=True,
            low=0,
        ),
        Option(
            "dropout",
            float,
            None,
            "input dropout: probability of removing each input item (denoising)" + _by_preset("dropout"),
            searchable=True,
            low=0.0,
            high=1.0,
            high_open=True,
        ),
        Option(
            "target_fraction",
            float,
            -1.0,
            "share of each timeline held out as target per step; -1: 0.2 for bpr, 0 (input = target) otherwise",
            searchable=True,
            low=-1.0,
            high=1.0,
            high_open=True,
        ),
        Option(
            "predict",
            str,
            "all",
            "all: the whole timeline is the target (autoencoder); held-out: only the items the input lost to "
            "dropout or the split, with the kept input items masked out of the full softmax — the test task",
            choices=("all", "held-out"),
            searchable=True,
        ),
        Option("svd_alpha", float, 0.75, "PMI context smoothing exponent", low=0.0, high=1.0),
        Option("svd_min_count", int, 1, "drop items with fewer co-occurrences from pre-training", low=1),
        Option("svd_power", float, 1.0, "SVD embeddings = U·S^power", low=0.0),
        Option(
            "svd_iter",
            int,
            None,
            "power iterations of the randomized SVD: each is two sparse products with the PMI matrix (Gowalla, "
            "d = 256: ~8 s each), and fine-tuning moves the vectors anyway" + _by_preset("svd_iter"),
            low=0,
        ),
        Option(
            "init_scale",
            float,
            4.0,
            "norm of the initial item vectors (SVD rows are L2-normalised, then scaled)",
            searchable=True,
            low=0.0,
            low_open=True,
        ),
        Option(
            "embeddings", str, "", "pre-trained embeddings artifact ('ledrec pretrain --out') instead of computing SVD"
        ),
        *training_options(
            epochs=None,
            batch_size=512,
            lr=None,
            patience=None,
            lr_help="Adam learning rate (§9.2 used 1e-3 for 50k steps; docs/led.md)",
            preset_help=" (default: by --preset)",
            epochs_help=" (0: the starting vectors as they are — with init=spectral, the closed form)",
        ),
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        names = set(PRESETS["small"]) | set(SPECTRAL_PRESETS["small"]) | set(WLS_PRESETS["small"])
        self._from_preset = {name for name in names if getattr(self, name) is None}

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        X: sp.csr_matrix,
        validation: EvalSet | None = None,
        *,
        targets: sp.csr_matrix | None = None,
        pretrain_matrix: sp.csr_matrix | None = None,
        negatives_matrix: sp.csr_matrix | None = None,
        show_progress: bool | None = None,
    ) -> Self:
        """Train on timelines ``X`` (inputs). ``targets`` (same rows) are what to predict when they differ
        from the inputs (multi-feedback, §4.3: inputs = all events, targets = clicks/sales);
        ``pretrain_matrix`` is what the SVD is computed on (default ``X``; the paper uses views);
        ``negatives_matrix`` (same rows): the sampled losses draw each user's negatives from its row (the
        paper's production BPR: displayed, not clicked), uniformly for users without any; ``show_progress``:
        progress bars and epoch lines on stderr (None: the model's ``progress`` attribute, off by default)."""
        X = self._training_matrix(X, show_progress)
        Y = X if targets is None else sp.csr_matrix(targets, dtype=np.float32)
        n_users, n_items = X.shape
        self._apply_preset(n_items)
        if "dim" in self._from_preset and (
            self.init != "random" or self.loss == "wls"
        ):  # a preset's rank the matrix has (SVD: d < min)
            self.dim = max(1, min(self.dim, min(X.shape) - 1))
        self.n_items_ = n_items
        torch.manual_seed(self.random_state)
        vectors = encoder_vectors = None
        popularity = np.asarray(Y.sum(axis=0)).ravel() + 1.0
        log_pop = np.log(popularity / popularity.sum()).astype(np.float32)  # bias starts at log-popularity
        if self.loss == "wls":
            if targets is not None:
                raise ConfigError("led: loss='wls' fits the inputs themselves; separate targets need a gradient loss")
            encoder_vectors, vectors = self._weighted_least_squares(X)
        elif self.init == "svd":
            emb = self._pretrained(X if pretrain_matrix is None else pretrain_matrix)
            vectors, self.pretrain_stats_ = emb.vectors * self.init_scale, emb.stats
        elif self.init == "spectral":
            encoder_vectors, vectors = self._spectral(X if pretrain_matrix is None else pretrain_matrix)
        if self.loss == "wls" or self.init == "spectral":
            # the solved tables have no bias; a small popularity term orders the cold start (an empty history)
            # and breaks ties (ML-1M validation NDCG@20: .2648 without, .2652 with)
            log_pop = (COLD_START_BIAS * (log_pop - log_pop.mean())).astype(np.float32)
        if vectors is None:  # random: N(0, 1/d) entries, so ‖v‖ ≈ 1, then scaled like SVD rows
            gen = torch.Generator().manual_seed(self.random_state)
            vectors = (torch.randn(n_items, self.dim, generator=gen) * (self.init_scale / math.sqrt(self.dim))).numpy()
        self.device_ = device(self.device)
        if self.encoder_ == "untied" and self.tuning != "full":
            raise ConfigError("led: encoder='untied' needs tuning='full' (project mode freezes the vectors)")
        tied = self.encoder_ == "tied"
        self.net_ = LEDNet(
            n_items, self.dim, vectors, self.tuning, self.reduce, log_pop, tied, init_encoder=encoder_vectors
        ).to(self.device_)
        # sparse gradients: a sampled loss, trained vectors, and a step that touches few of the catalogue's rows
        sparse = (
            self.loss not in ("mult", "wls")  # (wls takes no gradient step at all)
            and self.tuning == "full"
            and sparse_pays_off(n_items, self.batch_size, self.negatives, self.share_negatives)
        )
        self.sparse_gradients_ = sparse
        if self.loss == "wls":  # solved already: no gradient step
            self.best_epoch_, self.train_s_ = self.epochs, self.wls_history_[-1]["seconds"] if self.epochs else 0.0
            self.history_ = []
            self._export()
            return self
        fraction = self.target_fraction if self.target_fraction >= 0 else (0.2 if self.loss == "bpr" else 0.0)

        pool = None if negatives_matrix is None else sp.csr_matrix(negatives_matrix, dtype=np.float32)
        sampling = None
        if self.negative_power > 0:
            weights = popularity.astype(np.float64) ** self.negative_power
            sampling = weights / weights.sum()  # (I,) q

        def step(rows: np.ndarray, rng: np.random.Generator, epoch: int) -> torch.Tensor:
            if 0 < self.mult_after <= epoch:  # full softmax: dense gradients (the trainer's Adam takes them)
                return self._loss(X, Y, rows, rng, fraction, False, None, None, "mult")
            return self._loss(X, Y, rows, rng, fraction, sparse, None if pool is None else pool[rows], sampling)

        sparse_params = (self.net_.item_vectors, self.net_.item_bias) if sparse else ()
        if sparse and not tied:
            sparse_params += (self.net_.input_vectors,)
        self._train(self.net_, n_users, step, validation, sparse_params)
        return self

    def selects_on_validation(self, n_items: int) -> bool:
        """Early stopping chooses an epoch only when there are epochs (not for the closed form alone, nor for
        alternating least squares, whose sweeps are a fixed number)."""
        if self.effective("loss", n_items) == "wls":
            return False
        return super().selects_on_validation(n_items) and self.effective("epochs", n_items) > 0

    def preset_for(self, n_items: int) -> str:
        return self.preset if self.preset != "auto" else ("large" if n_items >= LARGE_CATALOGUE else "small")

    def effective(self, name: str, n_items: int) -> Any:
        if name in self._from_preset:
            return _preset_table(self.preset_for(n_items), self.init, self._explicit_loss())[name]
        return getattr(self, name)

    def _explicit_loss(self) -> str | None:
        """The loss the user chose (None: the preset's; ``self.loss`` then holds the last fit's)."""
        return None if "loss" in self._from_preset else self.loss

    def _apply_preset(self, n_items: int) -> None:
        """Give the options left unset their preset's value for this catalogue (again at every fit)."""
        self.preset_ = self.preset_for(n_items)
        table = _preset_table(self.preset_, self.init, self._explicit_loss())
        for name in self._from_preset:
            setattr(self, name, table[name])
        wls = self.loss == "wls"
        untied = (self.init == "spectral" or wls) and self.tuning == "full"
        self.encoder_ = self.encoder if self.encoder != "auto" else ("untied" if untied else "tied")
        if self.embeddings and (self.init == "spectral" or wls):
            raise ConfigError("led: embeddings (pre-trained SVD vectors) need init='svd' and a gradient loss")
        if wls and (self.tuning != "full" or self.encoder_ != "untied"):
            raise ConfigError("led: loss='wls' solves for two tables: it needs tuning='full' and an untied encoder")

    def _pretrained(self, matrix: sp.csr_matrix) -> ItemEmbeddings:
        """The SVD item vectors: loaded from ``embeddings`` (aligned by item id) or computed on ``matrix``."""
        if self.embeddings:
            emb = ItemEmbeddings.load(self.embeddings).aligned_to(self.item_ids, matrix.shape[1])
            if emb.dim != self.dim:
                raise ValueError(f"{self.embeddings}: embeddings have dim {emb.dim}, not --dim {self.dim}")
            return emb
        config = PretrainConfig(
            dim=self.dim,
            alpha=self.svd_alpha,
            min_count=self.svd_min_count,
            power=self.svd_power,
            n_iter=self.svd_iter,
            seed=self.random_state,
        )
        return pretrain(matrix, config)

    def _spectral(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """(encoder, decoder) tables of the spectral start, scaled together so that a user's highest logit
        is ``init_scale``² on average: the closed form's ranking, at the logit scale the softmax trains at."""
        from ledrec.pretrain.spectral import spectral_tables

        exponent = self.spectral_exponent if self.encoder_ == "untied" else 0.0  # one tied table: β = 0
        encoder, decoder, singular = spectral_tables(
            X,
            self.dim,
            exponent=exponent,
            order=self.spectral_order,
            cutoff=self.spectral_cutoff,
            n_iter=self.svd_iter,
            random_state=self.random_state,
        )
        self.pretrain_stats_ = {"spectral_exponent": exponent, "top_singular_value": float(singular[0])}
        return self._logit_scaled(X, encoder, decoder)

    def _weighted_least_squares(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """(encoder, decoder) tables solved on ALS's weighted square loss, at the spectral start's logit scale."""
        from ledrec.models.wls import fit_tables

        encoder, decoder, self.wls_history_ = fit_tables(
            X,
            self.dim,
            confidence=self.wls_confidence,
            regularization=self.wls_regularization,
            frequency_exponent=self.wls_frequency_exponent,
            reduce_power=1.0 if self.reduce == "mean" else 0.5,
            sweeps=self.epochs,
            n_iter=self.svd_iter,
            random_state=self.random_state,
            progress=self.progress,
        )
        return self._logit_scaled(X, encoder, decoder)

    def _logit_scaled(
        self, X: sp.csr_matrix, encoder: np.ndarray, decoder: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Both tables scaled together so that a user's highest logit is ``init_scale``² on average: the
        ranking unchanged, the small popularity bias of a closed form at a known weight beside it."""
        sample = X[np.random.default_rng(self.random_state).permutation(X.shape[0])[:2048]]
        lengths = np.maximum(np.diff(sample.indptr), 1).astype(np.float32)
        norm = lengths if self.reduce == "mean" else np.sqrt(lengths)
        top = (np.asarray(sample @ encoder) / norm[:, None] @ decoder.T).max(axis=1)  # (≤2048,)
        scale = math.sqrt(self.init_scale**2 / max(float(np.mean(top)), 1e-12))
        return encoder * scale, decoder * scale

    def _loss(
        self, X, Y, rows, rng, target_fraction: float, sparse: bool, pool=None, sampling=None, loss: str = ""
    ) -> torch.Tensor:
        inputs, targets = X[rows], (Y[rows] if Y is not X else None)
        if target_fraction > 0:
            inputs, split_targets = split(inputs, target_fraction, rng)
            targets = split_targets if targets is None else targets
        elif targets is None:
            targets = inputs  # autoencoder: predict the whole (uncorrupted) timeline
        if self.dropout > 0:
            inputs = drop(inputs, self.dropout, rng)
        masked = None
        if self.predict == "held-out":  # what the input still shows is neither a target nor a softmax rival:
            masked = inputs  # evaluation never ranks a user's own items either
            targets = (targets - targets.multiply(inputs.astype(bool))).tocsr()
            targets.eliminate_zeros()
        net = self.net_
        query = net.query(net.encode(*bags(inputs, self.device_), sparse=sparse))  # (B, d)
        return decoder_loss(
            loss or self.loss,
            query,
            net.item_vectors,
            net.item_bias,
            targets,
            negatives=self.negatives,
            rng=rng,
            sparse=sparse,
            masked=masked,
            negative_pool=pool,
            share=self.share_negatives,
            sampling=sampling,
        )

    def _export(self) -> None:
        """The serving form: item vectors as the decoder sees them, and the query map."""
        with torch.no_grad():
            self.item_vectors_ = self.net_.item_vectors.cpu().numpy().copy()  # (I, d)
            # (the encoder's table when untied; the same array when tied)
            self.encoder_vectors_ = (
                self.item_vectors_ if self.net_.tied else self.net_.input_vectors.cpu().numpy().copy()
            )
            self.item_bias_ = self.net_.item_bias[:, 0].cpu().numpy().copy()  # (I,)
            P = self.net_.projection.cpu() if self.tuning == "project" else torch.eye(self.dim)
            self.query_map_ = (P.T @ P).numpy().copy()  # (d, d): q = u · PᵀP (identity in full mode)

    # ---------------------------------------------------------------- inference (numpy, no autograd)
    def user_vectors(self, X: sp.csr_matrix) -> np.ndarray:
        """Encoder: (n, d) mean (or 1/√T-scaled sum) of each history's item vectors."""
        X = self._check_input(X)
        lengths = np.diff(X.indptr).astype(np.float32)
        norm = lengths if self.reduce == "mean" else np.sqrt(lengths)
        u = np.asarray(X @ self._encoder_vectors())  # (n, d): sum of vectors (X is 0/1)
        return u / np.maximum(norm, 1.0)[:, None]

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        q = self.user_vectors(X) @ self.query_map_  # (n, d)
        if getattr(self, "device_", torch.device("cpu")).type != "cpu":  # while training on an accelerator
            with torch.no_grad():
                return self.net_.score_all(torch.from_numpy(q).to(self.device_)).cpu().numpy()
        return (q @ self.item_vectors_.T + self.item_bias_).astype(np.float32)  # (n, I)

    def _encoder_vectors(self) -> np.ndarray:
        """The table the user vector averages (a model saved before ``encoder`` existed is tied)."""
        return getattr(self, "encoder_vectors_", self.item_vectors_)

    def state(self) -> dict[str, np.ndarray]:
        state = {"item_vectors_": self.item_vectors_, "item_bias_": self.item_bias_, "query_map_": self.query_map_}
        if self._encoder_vectors() is not self.item_vectors_:  # untied: the encoder's own table
            state["encoder_vectors_"] = self._encoder_vectors()
        return state
