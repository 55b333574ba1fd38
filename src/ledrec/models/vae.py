"""Mult-VAE and Mult-DAE (Liang, Krishnan, Hoffman, Jebara, WWW 2018), the seed paper's reference models.

    x̃ = dropout(x / ‖x‖)                                   input: the timeline, L2-normalised, dropout 0.5
    h = tanh(W₁ᵀx̃ + b₁)                                     encoder I → 600
    VAE: μ, log σ² = W₂ᵀh + b₂ (200 + 200);  z = μ + σ·ε    (at inference z = μ)
    DAE: z = tanh(W₂ᵀh + b₂) (200)
    g = tanh(W₃ᵀz + b₃);  logits = W₄ᵀg + b₄                 decoder 200 → 600 → I
    loss = −Σ_{i ∈ x} log softmax(logits)_i + β · KL(q(z|x) ‖ N(0, I))   (β annealed 0 → 0.2; DAE: no KL)

Scalable as the seed paper describes (§4.3): the first layer is an ``EmbeddingBag`` lookup of the input
items (weights 1/√T, scaled by 1/(1 − p) for the kept ones, as ``nn.Dropout`` after ``normalize`` would),
never a dense one-hot row, and the output layer is an item table (I, 600) + bias, so that the Mult-CSS loss
(sampled partition function) touches only the positives and N sampled negatives of each step.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ledrec.data.splits import EvalSet
from ledrec.models.base import Option
from ledrec.models.batches import SHARE_NEGATIVES, bags, decoder_loss, device, drop, rows_of, sparse_pays_off
from ledrec.models.training import TorchRecommender, training_options


class MultVAENet(nn.Module):
    def __init__(self, n_items: int, hidden: int = 600, latent: int = 200, variational: bool = True):
        super().__init__()
        self.variational = variational
        # Glorot-uniform weights as in the reference implementation; item tables are (I, hidden) rows so
        # that a batch touches only its own rows (sparse gradients).
        self.in_vectors = nn.Parameter(_glorot(n_items, hidden))  # (I, hidden) = W₁ as rows
        self.in_bias = nn.Parameter(torch.zeros(hidden))
        self.to_latent = nn.Linear(hidden, 2 * latent if variational else latent)
        self.from_latent = nn.Linear(latent, hidden)
        self.out_vectors = nn.Parameter(_glorot(n_items, hidden))  # (I, hidden) = W₄ as rows
        self.out_bias = nn.Parameter(torch.zeros(n_items, 1))  # (I, 1): a table, for sparse lookups
        for layer in (self.to_latent, self.from_latent):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        # the KL weight's schedule counts optimisation steps; a buffer, so a resumed run continues it
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def encode(
        self, items: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor, sparse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(μ, log σ²) — or (z, None) for the DAE — of bags of items with per-item input weights."""
        x = F.embedding_bag(items, self.in_vectors, offsets, mode="sum", per_sample_weights=weights, sparse=sparse)
        h = torch.tanh(x + self.in_bias)  # (B, hidden)
        out = self.to_latent(h)
        if not self.variational:
            return torch.tanh(out), None  # (B, latent)
        mu, logvar = out.chunk(2, dim=1)  # (B, latent) each
        return mu, logvar

    def weight_matrices(self) -> tuple[torch.Tensor, ...]:
        return (self.in_vectors, self.to_latent.weight, self.from_latent.weight, self.out_vectors)

    def decode_query(self, z: torch.Tensor) -> torch.Tensor:
        """The last hidden layer g (B, hidden); logits = g · out_vectorsᵀ + out_bias."""
        return torch.tanh(self.from_latent(z))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over the latent dimensions, mean over the batch."""
    return 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(dim=1).mean()


def kl_weight(step: int, anneal_steps: int, beta_cap: float) -> float:
    """β after ``step`` updates: linear from 0, reaching ``beta_cap`` after ``beta_cap·anneal_steps``
    (Liang et al.: β = min(cap, step / total_anneal_steps)); ``anneal_steps`` 0 gives β = cap throughout."""
    if anneal_steps <= 0:
        return beta_cap
    return min(beta_cap, step / anneal_steps)


def input_weights(m: sp.csr_matrix, full_lengths: np.ndarray, dropout: float) -> torch.Tensor:
    """Per stored entry of ``m``: 1/√T of its row's full timeline, divided by (1 − p) when training with
    dropout — exactly ``nn.Dropout(p)(normalize(x))`` on the kept entries of a 0/1 row."""
    norm = 1.0 / np.sqrt(np.maximum(full_lengths, 1)).astype(np.float32)
    return torch.from_numpy((norm[rows_of(m)] / (1.0 - dropout)).astype(np.float32))


class _MultAE(TorchRecommender):
    """Shared by Mult-VAE and Mult-DAE; ``variational`` tells them apart."""

    variational: bool
    accepts_side_matrices = True
    anneal_steps: int = 0  # the DAE has no KL term; MultVAE declares both as options
    beta_cap: float = 0.0
    options = (
        Option(
            "loss",
            str,
            "mult",
            "mult: full softmax; mult-css: sampled partition function",
            choices=("mult", "mult-css"),
        ),
        Option("hidden", int, 600, "encoder/decoder hidden layer width", low=1),
        Option("latent", int, 200, "latent dimension", searchable=True, low=1),
        Option("dropout", float, 0.5, "input dropout probability", searchable=True, low=0.0, high=1.0, high_open=True),
        Option(
            "l2",
            float,
            0.0,
            "L2 penalty l2·Σw² on the four weight matrices, added to the loss (Liang et al.'s λ: 0.01 for the DAE)",
            searchable=True,
            low=0.0,
        ),
        Option("negatives", int, 1000, "negatives per user for mult-css (shared by its positives)", low=1),
        SHARE_NEGATIVES,
        # Liang et al. train 200 epochs and keep the best by validation; at lr 1e-3 the first epochs can
        # stall (Mult-CSS on ml-latest-small: no gain for 5 epochs, then steady), so patience is 20, not 5
        *training_options(epochs=200, batch_size=500, lr=1e-3, patience=20),
    )

    def fit(
        self,
        X: sp.csr_matrix,
        validation: EvalSet | None = None,
        *,
        targets: sp.csr_matrix | None = None,
        pretrain_matrix: sp.csr_matrix | None = None,  # unused: this model has no pre-training
        show_progress: bool | None = None,
    ) -> Self:
        """Train on timelines ``X``; ``targets`` (same rows) are what to predict when they differ from the
        inputs (multi-feedback)."""
        X = self._training_matrix(X, show_progress)
        Y = X if targets is None else sp.csr_matrix(targets, dtype=np.float32)
        n_users, n_items = X.shape
        self.n_items_ = n_items
        torch.manual_seed(self.random_state)
        self.device_ = device(self.device)
        self.net_ = MultVAENet(n_items, self.hidden, self.latent, self.variational).to(self.device_)
        lengths = np.diff(X.indptr)
        sparse = self.loss == "mult-css" and sparse_pays_off(
            n_items, self.batch_size, self.negatives, self.share_negatives
        )
        self.sparse_gradients_ = sparse
        if self.l2 > 0 and sparse:
            raise ValueError("--l2 needs dense gradients (loss mult, or mult-css on a small catalogue)")
        net = self.net_
        sparse_params = (net.in_vectors, net.out_vectors, net.out_bias) if sparse else ()

        def step(rows: np.ndarray, rng: np.random.Generator, epoch: int) -> torch.Tensor:
            inputs = drop(X[rows], self.dropout, rng) if self.dropout > 0 else X[rows]
            weights = input_weights(inputs, lengths[rows], self.dropout).to(self.device_)
            mu, logvar = net.encode(*bags(inputs, self.device_), weights, sparse=sparse)
            z = mu
            if logvar is not None:  # reparameterisation z = μ + σ·ε; ε from the epoch's rng, so resuming replays it
                eps = torch.from_numpy(rng.standard_normal(mu.shape, dtype=np.float32)).to(self.device_)
                z = mu + eps * torch.exp(0.5 * logvar)
            query = net.decode_query(z)  # (B, hidden)
            loss = decoder_loss(
                self.loss,
                query,
                net.out_vectors,
                net.out_bias,
                Y[rows],
                negatives=self.negatives,
                rng=rng,
                sparse=sparse,
                share=self.share_negatives,
            )
            if logvar is not None:
                loss = loss + kl_weight(int(net.steps), self.anneal_steps, self.beta_cap) * kl_divergence(mu, logvar)
            if self.l2 > 0:  # weights only, not biases, as in the reference implementation
                loss = loss + self.l2 * sum(w.pow(2).sum() for w in net.weight_matrices())
            net.steps += 1
            return loss

        self._train(net, n_users, step, validation, sparse_params)
        return self

    def _export(self) -> None:
        net = self.net_
        with torch.no_grad():
            arrays = {
                "in_vectors_": net.in_vectors,
                "in_bias_": net.in_bias,
                "to_latent_w_": net.to_latent.weight.T,
                "to_latent_b_": net.to_latent.bias,
                "from_latent_w_": net.from_latent.weight.T,
                "from_latent_b_": net.from_latent.bias,
                "out_vectors_": net.out_vectors,
                "out_bias_": net.out_bias[:, 0],
            }
            for name, value in arrays.items():
                setattr(self, name, value.detach().cpu().numpy().copy())

    # ---------------------------------------------------------------- inference (numpy, no autograd)
    def user_vectors(self, X: sp.csr_matrix) -> np.ndarray:
        """The decoder's query g (n, hidden) for histories ``X``: the encoder's mean, no sampling, no dropout."""
        X = self._check_input(X)
        norm = np.sqrt(np.maximum(np.diff(X.indptr), 1)).astype(np.float32)
        h = np.tanh(np.asarray(X @ self.in_vectors_) / norm[:, None] + self.in_bias_)  # (n, hidden)
        out = h @ self.to_latent_w_ + self.to_latent_b_
        z = out[:, : self.latent] if self.variational else np.tanh(out)  # μ, or the DAE code
        return np.tanh(z @ self.from_latent_w_ + self.from_latent_b_)  # (n, hidden)

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        return (self.user_vectors(X) @ self.out_vectors_.T + self.out_bias_).astype(np.float32)  # (n, I)


class MultVAE(_MultAE):
    name = "vae"
    variational = True
    options = (
        *_MultAE.options,
        Option("beta_cap", float, 0.2, "largest KL weight β (Liang et al.: 0.2)", low=0.0),
        Option(
            "anneal_steps",
            int,
            200_000,
            "β grows by 1/anneal_steps per update until beta_cap (Liang et al.: 200,000; 0: β = cap throughout)",
            low=0,
        ),
    )


class MultDAE(_MultAE):
    name = "dae"
    variational = False


def _glorot(fan_a: int, fan_b: int) -> torch.Tensor:
    bound = math.sqrt(6.0 / (fan_a + fan_b))
    return torch.empty(fan_a, fan_b).uniform_(-bound, bound)
