"""LED: the Lightweight Encoder-Decoder (Koch et al., Criteo; seed paper §4-§5), whole model in one file.

    user vector   u = 1/T · Σ_{t ≤ T} v_{i_t}              (encoder: mean of the timeline's item vectors;
                                                           option 1/√T, §9.3)
    score         s(u, i) = ⟨u, v_i⟩ + b_i                 (decoder: the same item vectors, tied, + a bias)

No per-user parameter: a new user's vector is computed from their items, so new users need no retraining.

Item vectors start random or from the PMI + randomized-SVD pre-training (``init="svd"``). Fine-tuning is
*full* (vectors trained) or *project* (SVD vectors frozen; a d × d matrix P and the biases are learned).
In project mode both sides are projected, s = ⟨P u, P v_i⟩ + b_i = uᵀ(PᵀP)v_i + b_i; computing
q = (PᵀP)u once per user instead of P v_i for every item is the transposition trick (§5.1): per step it
costs B·d² instead of I·d² (``benchmarks/transposition.py`` measures it).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ledrec.data.splits import EvalSet
from ledrec.evaluate.ranking import evaluate
from ledrec.models.base import Option, Recommender
from ledrec.models.losses import LOSSES, bpr_loss, mult_css_loss, mult_loss, ns_loss
from ledrec.models.training import TrainConfig, Trainer
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
    ):
        super().__init__()
        self.n_items, self.dim, self.tuning, self.reduce = n_items, dim, tuning, reduce
        vectors = torch.as_tensor(np.asarray(init_vectors, dtype=np.float32)).clone()  # (I, d)
        bias = torch.zeros(n_items) if init_bias is None else torch.as_tensor(init_bias, dtype=torch.float32)
        # (I, 1), not (I,): a sparse-gradient lookup needs a table, and a view of one would break it
        self.item_bias = nn.Parameter(bias.clone()[:, None].contiguous())
        if tuning == "full":
            self.item_vectors = nn.Parameter(vectors)  # (I, d), trained
        else:
            self.register_buffer("item_vectors", vectors)  # (I, d), frozen
            self.projection = nn.Parameter(torch.eye(dim))  # (d, d), starts as the identity: the SVD geometry

    # ---------------------------------------------------------------- encoder
    def encode(self, items: torch.Tensor, offsets: torch.Tensor, sparse: bool = False) -> torch.Tensor:
        """User vectors (B, d) from bags of items; an empty bag gives the null vector (cold start)."""
        lengths = torch.diff(offsets, append=torch.tensor([len(items)], device=offsets.device))  # (B,)
        norm = lengths.float() if self.reduce == "mean" else lengths.float().sqrt()
        weights = (1.0 / norm.clamp(min=1.0)).repeat_interleave(lengths)  # (n,) 1/T or 1/√T per item
        return F.embedding_bag(
            items, self.item_vectors, offsets, mode="sum", per_sample_weights=weights, sparse=sparse
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

    def score_items(self, query: torch.Tensor, items: torch.Tensor, sparse: bool = False) -> torch.Tensor:
        """Scores of given items: ``items`` (B, K) → (B, K)."""
        vectors = F.embedding(items, self.item_vectors, sparse=sparse)  # (B, K, d)
        bias = F.embedding(items, self.item_bias, sparse=sparse)[..., 0]  # (B, K)
        return torch.einsum("bkd,bd->bk", vectors, query) + bias

    def score_pairs(self, query: torch.Tensor, rows: torch.Tensor, items: torch.Tensor, sparse: bool = False):
        """Scores of (row, item) pairs, flat: (P,)."""
        vectors = F.embedding(items, self.item_vectors, sparse=sparse)  # (P, d)
        bias = F.embedding(items, self.item_bias, sparse=sparse)[:, 0]  # (P,)
        return (vectors * query[rows]).sum(dim=1) + bias

    def naive_projected_scores(self, user: torch.Tensor) -> torch.Tensor:
        """Project mode without the trick (P applied to every item vector), for tests and benchmarks."""
        P = self.projection
        return (user @ P.T) @ (self.item_vectors @ P.T).T + self.item_bias[:, 0]  # (B, I)


class LED(Recommender):
    name = "led"
    uses_validation = True
    accepts_side_matrices = True
    options = (
        Option("dim", int, 128, "embedding dimension d", searchable=True),
        Option("loss", str, "mult", "training loss", choices=LOSSES),
        Option(
            "init", str, "svd", "item vector initialisation: random, or PMI + randomized SVD", choices=("random", "svd")
        ),
        Option(
            "tuning",
            str,
            "full",
            "full: train the vectors; project: freeze SVD vectors, learn P (d×d)",
            choices=("full", "project"),
        ),
        Option(
            "reduce", str, "mean", "user vector = 1/T (mean) or 1/√T (sqrt) times the sum", choices=("mean", "sqrt")
        ),
        Option("negatives", int, 1000, "negatives per user for the sampled losses (shared by its positives)"),
        Option(
            "dropout", float, 0.5, "input dropout: probability of removing each input item (denoising)", searchable=True
        ),
        Option(
            "target_fraction",
            float,
            -1.0,
            "share of each timeline held out as target per step; -1: 0.2 for bpr, 0 (input = target) otherwise",
            searchable=True,
        ),
        Option("epochs", int, 50, "maximum epochs"),
        Option("batch_size", int, 512, "users per step"),
        Option("lr", float, 1e-2, "Adam learning rate (§9.2 used 1e-3 for 50k steps; see the README)", searchable=True),
        Option("eval_every", int, 1, "epochs between validation runs"),
        Option("patience", int, 5, "validations without improvement before early stopping (0: never)"),
        Option("svd_alpha", float, 0.75, "PMI context smoothing exponent"),
        Option("svd_min_count", int, 1, "drop items with fewer co-occurrences from pre-training"),
        Option("svd_power", float, 1.0, "SVD embeddings = U·S^power"),
        Option(
            "init_scale",
            float,
            4.0,
            "norm of the initial item vectors (SVD rows are L2-normalised, then scaled)",
            searchable=True,
        ),
        Option(
            "embeddings", str, "", "pre-trained embeddings artifact ('ledrec pretrain --out') instead of computing SVD"
        ),
        Option("checkpoint_dir", str, "", "write a resumable checkpoint here after every epoch"),
        Option("device", str, "cpu", "torch device for training: cpu (all cores), cuda, or auto (cuda when present)"),
    )

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        X: sp.csr_matrix,
        validation: EvalSet | None = None,
        *,
        targets: sp.csr_matrix | None = None,
        pretrain_matrix: sp.csr_matrix | None = None,
    ) -> Self:
        """Train on timelines ``X`` (inputs). ``targets`` (same rows) are what to predict when they differ
        from the inputs (multi-feedback, §4.3: inputs = all events, targets = clicks/sales);
        ``pretrain_matrix`` is what the SVD is computed on (default ``X``; the paper uses views)."""
        X = sp.csr_matrix(X, dtype=np.float32)
        Y = X if targets is None else sp.csr_matrix(targets, dtype=np.float32)
        n_users, n_items = X.shape
        self.n_items_ = n_items
        torch.manual_seed(self.random_state)
        vectors = None
        if self.init == "svd":
            emb = self._pretrained(X if pretrain_matrix is None else pretrain_matrix)
            vectors, self.pretrain_stats_ = emb.vectors * self.init_scale, emb.stats
        popularity = np.asarray(Y.sum(axis=0)).ravel() + 1.0
        log_pop = np.log(popularity / popularity.sum()).astype(np.float32)  # bias starts at log-popularity
        if vectors is None:  # random: N(0, 1/d) entries, so ‖v‖ ≈ 1, then scaled like SVD rows
            gen = torch.Generator().manual_seed(self.random_state)
            vectors = (torch.randn(n_items, self.dim, generator=gen) * (self.init_scale / math.sqrt(self.dim))).numpy()
        self.device_ = _device(self.device)
        self.net_ = LEDNet(n_items, self.dim, vectors, self.tuning, self.reduce, log_pop).to(self.device_)
        # Sparse gradients pay off only when a step touches few rows: a sampled loss, trained vectors, and a
        # catalogue larger than the B·N negative lookups of a step (below that, scoring every item densely
        # and picking the sampled scores out is cheaper, with the same loss values).
        sparse = self.loss != "mult" and self.tuning == "full" and n_items > self.batch_size * self.negatives
        self.sparse_gradients_ = sparse
        sparse_params = (self.net_.item_vectors, self.net_.item_bias) if sparse else ()
        config = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            eval_every=self.eval_every,
            patience=self.patience,
            seed=self.random_state,
            checkpoint_dir=self.checkpoint_dir or None,
            progress=self.progress,
        )
        trainer = Trainer(self.net_, config, sparse_params)
        fraction = self.target_fraction if self.target_fraction >= 0 else (0.2 if self.loss == "bpr" else 0.0)

        def step(rows: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
            return self._loss(X, Y, rows, rng, fraction, sparse)

        validate = None
        if validation is not None:
            metric = validation.selection_metric
            ks = (int(metric.split("@")[1]),)

            def validate() -> float:
                self._export()
                return evaluate(self.score, validation, ks)[metric]

        result = trainer.fit(n_users, step, validate)
        self.best_epoch_ = result.best_epoch
        self.history_ = result.history
        self.train_s_ = result.seconds
        self._export()
        return self

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
            seed=self.random_state,
        )
        return pretrain(matrix, config)

    def _loss(self, X, Y, rows, rng, target_fraction: float, sparse: bool) -> torch.Tensor:
        inputs, targets = X[rows], (Y[rows] if Y is not X else None)
        if target_fraction > 0:
            inputs, split_targets = _split(inputs, target_fraction, rng)
            targets = split_targets if targets is None else targets
        elif targets is None:
            targets = inputs  # autoencoder: predict the whole (uncorrupted) timeline
        if self.dropout > 0:
            inputs = _drop(inputs, self.dropout, rng)
        dev = self.device_
        items, offsets = (t.to(dev) for t in _bags(inputs))
        net = self.net_
        query = net.query(net.encode(items, offsets, sparse=sparse))  # (B, d)
        targets = targets.tocoo()
        pos_rows = torch.from_numpy(targets.row.astype(np.int64)).to(dev)
        pos_items = torch.from_numpy(targets.col.astype(np.int64)).to(dev)
        if self.loss == "mult":
            return mult_loss(net.score_all(query), pos_rows, pos_items)
        negatives = torch.from_numpy(rng.integers(0, self.n_items_, (len(rows), self.negatives))).to(dev)  # (B, N)
        if sparse:
            neg_scores = net.score_items(query, negatives, sparse=True)  # (B, N)
            pos_scores = net.score_pairs(query, pos_rows, pos_items, sparse=True)  # (P,)
        else:
            logits = net.score_all(query)  # (B, I)
            neg_scores = logits.gather(1, negatives)  # (B, N)
            pos_scores = logits[pos_rows, pos_items]  # (P,)
        if self.loss == "mult-css":
            return mult_css_loss(pos_scores, pos_rows, neg_scores, self.n_items_)
        if self.loss == "bpr":
            return bpr_loss(pos_scores, pos_rows, neg_scores)
        return ns_loss(pos_scores, pos_rows, neg_scores)

    def _export(self) -> None:
        """The serving form: item vectors as the decoder sees them, and the query map."""
        with torch.no_grad():
            self.item_vectors_ = self.net_.item_vectors.cpu().numpy().copy()  # (I, d)
            self.item_bias_ = self.net_.item_bias[:, 0].cpu().numpy().copy()  # (I,)
            P = self.net_.projection.cpu() if self.tuning == "project" else torch.eye(self.dim)
            self.query_map_ = (P.T @ P).numpy().copy()  # (d, d): q = u · PᵀP (identity in full mode)

    # ---------------------------------------------------------------- inference (numpy, no autograd)
    def user_vectors(self, X: sp.csr_matrix) -> np.ndarray:
        """Encoder: (n, d) mean (or 1/√T-scaled sum) of each history's item vectors."""
        X = self._check_input(X)
        lengths = np.diff(X.indptr).astype(np.float32)
        norm = lengths if self.reduce == "mean" else np.sqrt(lengths)
        u = np.asarray(X @ self.item_vectors_)  # (n, d): sum of vectors (X is 0/1)
        return u / np.maximum(norm, 1.0)[:, None]

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        q = self.user_vectors(X) @ self.query_map_  # (n, d)
        if getattr(self, "device_", torch.device("cpu")).type != "cpu":  # while training on an accelerator
            with torch.no_grad():
                return self.net_.score_all(torch.from_numpy(q).to(self.device_)).cpu().numpy()
        return (q @ self.item_vectors_.T + self.item_bias_).astype(np.float32)  # (n, I)

    def state(self) -> dict[str, np.ndarray]:
        return {"item_vectors_": self.item_vectors_, "item_bias_": self.item_bias_, "query_map_": self.query_map_}

    def refit_params(self) -> dict[str, Any]:
        """Parameters to retrain on a larger training matrix with the number of epochs chosen here."""
        return {**self.get_params(), "epochs": max(self.best_epoch_, 1), "patience": 0}


# -------------------------------------------------------------------- batch helpers (numpy → torch)
def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _bags(m: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(m.indices.astype(np.int64)), torch.from_numpy(m.indptr[:-1].astype(np.int64))


def _drop(m: sp.csr_matrix, p: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Remove each entry with probability p (input dropout; no rescaling, the mean renormalises)."""
    keep = rng.random(m.nnz) >= p
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[keep]
    return sp.csr_matrix((m.data[keep], (rows, m.indices[keep])), shape=m.shape)


def _split(m: sp.csr_matrix, fraction: float, rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per row, a random ``max(1, int(fraction·n))`` entries become targets (rows with one item: none)."""
    lengths = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    order = np.lexsort((rng.random(m.nnz), rows))  # random order within each row
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - np.repeat(m.indptr[:-1], lengths)
    n_target = np.where(lengths >= 2, np.maximum(1, (fraction * lengths).astype(np.int64)), 0)
    is_target = rank < n_target[rows]
    make = lambda mask: sp.csr_matrix((m.data[mask], (rows[mask], m.indices[mask])), shape=m.shape)  # noqa: E731
    return make(~is_target), make(is_target)
