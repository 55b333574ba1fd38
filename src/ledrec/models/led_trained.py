"""LED trained as the paper trains it (seed paper §4-§5): :class:`TrainedLED`, the network in one file.

    user vector   u = 1/T · Σ_{t ≤ T} v_{i_t}              (encoder: mean of the timeline's item vectors;
                                                           option 1/√T, §9.3)
    score         s(u, i) = ⟨u, v_i⟩ + b_i                 (decoder: the same item vectors, tied, + a bias;
                                                           untied: the encoder averages a table of its own)

Item vectors start random, from the PMI + randomized-SVD pre-training (``init="svd"``, the paper's) or from
the spectral closed form (``init="spectral"``), and are fine-tuned by one of the paper's four losses (Mult,
Mult-CSS, BPR, NS). Fine-tuning is *full* (vectors trained) or *project* (SVD vectors frozen; a d × d matrix
P and the biases are learned). In project mode both sides are projected, s = ⟨P u, P v_i⟩ + b_i =
uᵀ(PᵀP)v_i + b_i; computing q = (PᵀP)u once per user instead of P v_i for every item is the transposition
trick (§5.1): per step it costs B·d² instead of I·d² (``benchmarks/transposition.py`` measures it).
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

from ledrec.config import Option
from ledrec.data.splits import EvalSet
from ledrec.errors import ConfigError
from ledrec.models.batches import SHARE_NEGATIVES, bags, decoder_loss, device, drop, sparse_pays_off, split
from ledrec.models.led_common import (
    INIT_SCALE,
    PRESET,
    PRESETS,
    REDUCE,
    LEDTables,
    cold_start_bias,
    logit_scaled,
    preset_size,
)
from ledrec.models.led_spectral import SPECTRAL_OPTIONS
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


class TrainedLED(TorchRecommender, LEDTables):
    """LED trained by gradient, as the paper does. Options left at None take the preset's value when fitting
    (``params_`` then says what was used)."""

    name = "led-trained"
    preset_member = "trained"
    accepts_side_matrices = True
    options = (
        PRESET,
        Option("dim", int, None, "embedding dimension d (default: the preset's)", searchable=True, low=1),
        Option("loss", str, None, "training loss (default: the preset's)", choices=tuple(LOSSES), searchable=True),
        Option(
            "init",
            str,
            "svd",
            "item vector initialisation: random; svd: PMI + randomized SVD (the paper's); spectral: the closed form "
            "of led-spectral",
            choices=("random", "svd", "spectral"),
            searchable=True,
        ),
        *SPECTRAL_OPTIONS,
        Option(
            "tuning",
            str,
            "full",
            "full: train the vectors; project: freeze SVD vectors, learn P (d×d)",
            choices=("full", "project"),
        ),
        REDUCE,
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
            "negatives per user for the sampled losses (shared by its positives; default: the preset's)",
            low=1,
        ),
        replace(SHARE_NEGATIVES, default=None, help=SHARE_NEGATIVES.help + " (default: the preset's)"),
        Option(
            "negative_power",
            float,
            None,
            "negatives drawn ∝ (training count + 1)^power: 0 uniform (the paper's); > 0 favours popular items, "
            "and Mult-CSS weighs each by 1/q (importance sampling) so its partition estimate stays unbiased "
            "(default: the preset's)",
            searchable=True,
            low=0.0,
        ),
        Option(
            "mult_after",
            int,
            None,
            "from this many epochs on, train with the full softmax (mult) instead of the sampled loss: cheap "
            "sampled epochs first, exact ones to finish (0: never; default: the preset's)",
            searchable=True,
            low=0,
        ),
        Option(
            "dropout",
            float,
            None,
            "input dropout: probability of removing each input item (denoising; default: the preset's)",
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
            "power iterations of the randomized SVD (each: two sparse products with the PMI matrix; default: the "
            "preset's)",
            low=0,
        ),
        INIT_SCALE,
        Option(
            "embeddings", str, "", "pre-trained embeddings artifact ('ledrec pretrain --out') instead of computing SVD"
        ),
        *training_options(
            epochs=None,
            batch_size=512,
            lr=None,
            patience=None,
            lr_help="Adam learning rate (§9.2 used 1e-3 for 50k steps)",
            preset_help=" (default: the preset's)",
            epochs_help=" (0: the starting vectors as they are)",
        ),
    )

    def _preset_values(self, n_items: int, shape: tuple[int, int] | None) -> dict[str, Any]:
        """The options, presets applied: the training preset, with the spectral closed form's rank, filter
        and SVD for ``init="spectral"`` (its start is that model)."""
        p = self._resolved("trained", n_items, None)
        if self.init == "spectral":
            spectral = PRESETS["spectral"][preset_size(self.preset, n_items)]
            for name in ("dim", "spectral_exponent", "spectral_order", "svd_iter"):
                if getattr(self, name) is None:
                    p[name] = spectral[name]
        elif self.spectral_exponent is None or self.spectral_order is None:
            p["spectral_exponent"] = p["spectral_exponent"] if p["spectral_exponent"] is not None else 0.0
            p["spectral_order"] = p["spectral_order"] if p["spectral_order"] is not None else 0.0
        if self.dim is None and shape is not None and self.init != "random":  # an SVD of rank d: d < min(shape)
            p["dim"] = max(1, min(p["dim"], min(shape) - 1))
        untied = self.init == "spectral" and p["tuning"] == "full"
        p["encoder"] = p["encoder"] if p["encoder"] != "auto" else ("untied" if untied else "tied")
        return p

    def effective(self, name: str, n_items: int) -> Any:
        return self._preset_values(n_items, None)[name]

    # ---------------------------------------------------------------- fit
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
        """Train on timelines ``X`` (inputs). ``targets`` (same rows) are what to predict when they differ
        from the inputs (multi-feedback, §4.3: inputs = all events, targets = clicks/sales);
        ``pretrain_matrix`` is what the SVD is computed on (default ``X``; the paper uses views);
        ``negatives_matrix`` (same rows): the sampled losses draw each user's negatives from its row (the
        paper's production BPR: displayed, not clicked), uniformly for users without any; ``show_progress``:
        progress bars and epoch lines on stderr (None: the model's ``progress`` attribute, off by default)."""
        X = self._training_matrix(X, show_progress)
        Y = X if targets is None else sp.csr_matrix(targets, dtype=np.float32)
        if Y.shape != X.shape:
            raise ConfigError(
                f"led: targets are {Y.shape}, the inputs {X.shape}: one row per user, one column per item"
            )
        n_users, n_items = X.shape
        p = self.params_ = self._preset_values(n_items, X.shape)
        if self.embeddings and self.init != "svd":
            raise ConfigError("led: embeddings (pre-trained SVD vectors) need init='svd'")
        if p["encoder"] == "untied" and p["tuning"] != "full":
            raise ConfigError("led: encoder='untied' needs tuning='full' (project mode freezes the vectors)")
        self.n_items_ = n_items
        torch.manual_seed(self.random_state)
        vectors = encoder_vectors = None
        popularity = np.asarray(Y.sum(axis=0)).ravel() + 1.0
        log_pop = np.log(popularity / popularity.sum()).astype(np.float32)  # bias starts at log-popularity
        start = X if pretrain_matrix is None else pretrain_matrix
        if self.init == "svd":
            emb = self._pretrained(start, p)
            vectors, self.pretrain_stats_ = emb.vectors * p["init_scale"], emb.stats
        elif self.init == "spectral":
            encoder_vectors, vectors = self._spectral(start, p)
            log_pop = cold_start_bias(Y)  # (the closed form's own small bias, as led-spectral has it)
        if vectors is None:  # random: N(0, 1/d) entries, so ‖v‖ ≈ 1, then scaled like SVD rows
            gen = torch.Generator().manual_seed(self.random_state)
            vectors = (torch.randn(n_items, p["dim"], generator=gen) * (p["init_scale"] / math.sqrt(p["dim"]))).numpy()
        self.device_ = device(p["device"])
        tied = p["encoder"] == "tied"
        self.net_ = LEDNet(
            n_items, p["dim"], vectors, p["tuning"], p["reduce"], log_pop, tied, init_encoder=encoder_vectors
        ).to(self.device_)
        # sparse gradients: a sampled loss, trained vectors, and a step that touches few of the catalogue's rows
        sparse = (
            p["loss"] != "mult"
            and p["tuning"] == "full"
            and sparse_pays_off(n_items, p["batch_size"], p["negatives"], p["share_negatives"])
        )
        self.sparse_gradients_ = sparse
        fraction = p["target_fraction"] if p["target_fraction"] >= 0 else (0.2 if p["loss"] == "bpr" else 0.0)
        pool = None if negatives_matrix is None else sp.csr_matrix(negatives_matrix, dtype=np.float32)
        sampling = None
        if p["negative_power"] > 0:
            weights = popularity.astype(np.float64) ** p["negative_power"]
            sampling = weights / weights.sum()  # (I,) q

        def step(rows: np.ndarray, rng: np.random.Generator, epoch: int) -> torch.Tensor:
            if 0 < p["mult_after"] <= epoch:  # full softmax: dense gradients (the trainer's Adam takes them)
                return self._loss(X, Y, rows, rng, fraction, False, None, None, "mult")
            return self._loss(X, Y, rows, rng, fraction, sparse, None if pool is None else pool[rows], sampling)

        sparse_params = (self.net_.item_vectors, self.net_.item_bias) if sparse else ()
        if sparse and not tied:
            sparse_params += (self.net_.input_vectors,)
        self._train(self.net_, n_users, step, validation, sparse_params)
        return self

    def selects_on_validation(self, n_items: int) -> bool:
        """Early stopping chooses an epoch only when there are epochs to choose among."""
        return super().selects_on_validation(n_items) and self.effective("epochs", n_items) > 0

    def _pretrained(self, matrix: sp.csr_matrix, p: dict[str, Any]) -> ItemEmbeddings:
        """The SVD item vectors: loaded from ``embeddings`` (aligned by item id) or computed on ``matrix``."""
        if self.embeddings:
            emb = ItemEmbeddings.load(self.embeddings).aligned_to(self.item_ids, matrix.shape[1])
            if emb.dim != p["dim"]:
                raise ConfigError(f"{self.embeddings}: embeddings have dim {emb.dim}, not dim {p['dim']}")
            return emb
        config = PretrainConfig(
            dim=p["dim"],
            alpha=p["svd_alpha"],
            min_count=p["svd_min_count"],
            power=p["svd_power"],
            n_iter=p["svd_iter"],
            seed=self.random_state,
        )
        return pretrain(matrix, config)

    def _spectral(self, X: sp.csr_matrix, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(encoder, decoder) tables of the spectral start, at the logit scale the softmax trains at."""
        from ledrec.pretrain.spectral import spectral_tables

        exponent = p["spectral_exponent"] if p["encoder"] == "untied" else 0.0  # one tied table: β = 0
        encoder, decoder, singular = spectral_tables(
            X,
            p["dim"],
            exponent=exponent,
            order=p["spectral_order"],
            cutoff=p["spectral_cutoff"],
            n_iter=p["svd_iter"],
            random_state=self.random_state,
        )
        self.pretrain_stats_ = {"spectral_exponent": exponent, "top_singular_value": float(singular[0])}
        return logit_scaled(X, encoder, decoder, p["reduce"], p["init_scale"], self.random_state)

    def _loss(
        self, X, Y, rows, rng, target_fraction: float, sparse: bool, pool=None, sampling=None, loss: str = ""
    ) -> torch.Tensor:
        p = self.params_
        inputs, targets = X[rows], (Y[rows] if Y is not X else None)
        if target_fraction > 0:
            inputs, split_targets = split(inputs, target_fraction, rng)
            targets = split_targets if targets is None else targets
        elif targets is None:
            targets = inputs  # autoencoder: predict the whole (uncorrupted) timeline
        if p["dropout"] > 0:
            inputs = drop(inputs, p["dropout"], rng)
        masked = None
        if p["predict"] == "held-out":  # what the input still shows is neither a target nor a softmax rival:
            masked = inputs  # evaluation never ranks a user's own items either
            targets = (targets - targets.multiply(inputs.astype(bool))).tocsr()
            targets.eliminate_zeros()
        net = self.net_
        query = net.query(net.encode(*bags(inputs, self.device_), sparse=sparse))  # (B, d)
        return decoder_loss(
            loss or p["loss"],
            query,
            net.item_vectors,
            net.item_bias,
            targets,
            negatives=p["negatives"],
            rng=rng,
            sparse=sparse,
            masked=masked,
            negative_pool=pool,
            share=p["share_negatives"],
            sampling=sampling,
        )

    def _export(self) -> None:
        """The serving tables: item vectors as the decoder sees them, and the query map."""
        with torch.no_grad():
            decoder = self.net_.item_vectors.cpu().numpy().copy()  # (I, d)
            encoder = decoder if self.net_.tied else self.net_.input_vectors.cpu().numpy().copy()
            bias = self.net_.item_bias[:, 0].cpu().numpy().copy()  # (I,)
            P = self.net_.projection.cpu() if self.params_["tuning"] == "project" else torch.eye(self.params_["dim"])
            query_map = (P.T @ P).numpy().copy()  # (d, d): q = u · PᵀP (identity in full mode)
        self._set_tables(encoder, decoder, bias, query_map, self.params_["reduce"])

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        if getattr(self, "device_", torch.device("cpu")).type != "cpu":  # while training on an accelerator
            q = self.user_vectors(X) @ self.query_map_
            with torch.no_grad():
                return self.net_.score_all(torch.from_numpy(q).to(self.device_)).cpu().numpy()
        return super().score(X)
