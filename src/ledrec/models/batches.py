"""What the PyTorch models (LED, Mult-VAE/DAE) share per training step: batches of sparse timelines turned
into ``EmbeddingBag`` inputs, input corruption, and the decoder's loss.

Both models end in the same decoder form, s(q, i) = ⟨q, w_i⟩ + b_i, with an item table ``vectors`` (I, k)
and ``bias`` (I, 1) — LED's q is the user vector and w its own item vectors (tied); the VAE's q is the last
hidden layer and w the output layer. So one function computes any of the four losses from (q, w, b).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ledrec.models.base import Option
from ledrec.models.losses import bpr_loss, mult_css_loss, mult_loss, ns_loss

SHARE_NEGATIVES = Option(
    "share_negatives",
    str,
    "user",
    "user: each user draws its own negatives (§5.2); batch: one draw serves the whole batch, so a "
    "sampled-loss step costs B·N·d instead of B·I·d (fast on large catalogues)",
    choices=("user", "batch"),
)


def sparse_pays_off(n_items: int, batch_size: int, negatives: int, share: str) -> bool:
    """Sparse gradients pay off for a sampled loss only on a catalogue larger than a step's negative lookups
    (below that, scoring every item densely and picking the sampled scores out is cheaper, same values)."""
    return n_items > negatives * (batch_size if share == "user" else 1)


def device(name: str) -> torch.device:
    """``auto`` picks CUDA when present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def bags(m: sp.csr_matrix, dev: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``EmbeddingBag`` inputs of a CSR batch: flat item indices (nnz,) and row offsets (B,)."""
    items = torch.from_numpy(m.indices.astype(np.int64)).to(dev)
    return items, torch.from_numpy(m.indptr[:-1].astype(np.int64)).to(dev)


def rows_of(m: sp.csr_matrix) -> np.ndarray:
    """Row index of every stored entry, in CSR order: (nnz,)."""
    return np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))


def drop(m: sp.csr_matrix, p: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Remove each entry with probability p (input dropout). Values are kept as they are: the caller decides
    whether to rescale (LED's mean renormalises by itself; the VAE rescales by 1/(1 − p) like nn.Dropout)."""
    keep = rng.random(m.nnz) >= p
    rows = rows_of(m)[keep]
    return sp.csr_matrix((m.data[keep], (rows, m.indices[keep])), shape=m.shape)


def split(m: sp.csr_matrix, fraction: float, rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per row, a random ``max(1, int(fraction·n))`` entries become targets (rows with one item: none)."""
    lengths = np.diff(m.indptr)
    rows = rows_of(m)
    order = np.lexsort((rng.random(m.nnz), rows))  # random order within each row
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - np.repeat(m.indptr[:-1], lengths)
    n_target = np.where(lengths >= 2, np.maximum(1, (fraction * lengths).astype(np.int64)), 0)
    is_target = rank < n_target[rows]
    make = lambda mask: sp.csr_matrix((m.data[mask], (rows[mask], m.indices[mask])), shape=m.shape)  # noqa: E731
    return make(~is_target), make(is_target)


def decoder_loss(
    loss: str,
    query: torch.Tensor,
    vectors: torch.Tensor,
    bias: torch.Tensor,
    targets: sp.csr_matrix,
    *,
    negatives: int,
    rng: np.random.Generator,
    sparse: bool = False,
    masked: sp.csr_matrix | None = None,
    negative_pool: sp.csr_matrix | None = None,
    share: str = "user",
    sampling: np.ndarray | None = None,
) -> torch.Tensor:
    """One of the four losses for a batch: ``query`` (B, k), item table ``vectors`` (I, k), ``bias`` (I, 1),
    positives = the entries of ``targets`` (B × I). The sampled losses draw ``negatives`` items per user,
    uniformly, shared by its positives (§5.2). ``sparse``: look the sampled rows up with sparse gradients
    instead of scoring the whole catalogue. ``masked`` (B × I): entries removed from the full softmax.
    ``negative_pool`` (B × I): each user's negatives are drawn from its row instead (e.g. the items a banner
    showed it and it did not click, §9.2), uniformly over the catalogue for rows without any.
    ``share``: "user" (§5.2: each user its own N negatives, B·N lookups) or "batch" (one draw of N negatives
    for the whole batch, Jean et al. 2015: the (B, N) scores are one (B, k)·(k, N) product, so a step costs
    B·N·k instead of B·I·k — with N ≪ I the sampled losses then train much faster than the full softmax).
    ``sampling`` (I,): the distribution negatives are drawn from instead of the uniform one; Mult-CSS then
    weighs each negative by 1/q (importance sampling), so its partition estimate stays unbiased."""
    dev = query.device
    n_items = vectors.shape[0]
    coo = targets.tocoo()
    pos_rows = torch.from_numpy(coo.row.astype(np.int64)).to(dev)
    pos_items = torch.from_numpy(coo.col.astype(np.int64)).to(dev)
    if loss == "mult":
        logits = query @ vectors.T + bias[:, 0]  # (B, I)
        if masked is not None and masked.nnz:
            where = (
                torch.from_numpy(rows_of(masked)).to(dev),
                torch.from_numpy(masked.indices.astype(np.int64)).to(dev),
            )
            logits = logits.index_put(where, torch.tensor(-torch.inf, device=dev))
        return mult_loss(logits, pos_rows, pos_items)
    if share not in ("user", "batch"):
        raise ValueError(f"share must be 'user' or 'batch', not {share!r}")
    if negative_pool is not None and sampling is not None:
        raise ValueError("negatives come from a per-user pool or from a sampling distribution, not both")
    if share == "batch" and negative_pool is not None:
        raise ValueError("per-user negative pools need share='user'")
    pos_scores = None
    if share == "batch":
        drawn = draw_items(n_items, negatives, rng, sampling)  # (N,), for every user
        sampled = torch.from_numpy(drawn).to(dev)
        neg_scores = query @ F.embedding(sampled, vectors, sparse=sparse).T  # (B, N)
        neg_scores = neg_scores + F.embedding(sampled, bias, sparse=sparse)[:, 0]
    else:
        drawn = sample_negatives(negative_pool, n_items, query.shape[0], negatives, rng, sampling)  # (B, N)
        sampled = torch.from_numpy(drawn).to(dev)
        if sparse:
            neg_vectors = F.embedding(sampled, vectors, sparse=True)  # (B, N, k)
            neg_scores = (
                torch.einsum("bnk,bk->bn", neg_vectors, query) + F.embedding(sampled, bias, sparse=True)[..., 0]
            )
        else:  # small catalogue: scoring every item and picking the sampled ones is cheaper, same values
            logits = query @ vectors.T + bias[:, 0]  # (B, I)
            neg_scores = logits.gather(1, sampled)  # (B, N)
            pos_scores = logits[pos_rows, pos_items]  # (P,)
    if pos_scores is None:  # looked up: only the positives' rows
        pos_scores = (F.embedding(pos_items, vectors, sparse=sparse) * query[pos_rows]).sum(1)  # (P,)
        pos_scores = pos_scores + F.embedding(pos_items, bias, sparse=sparse)[:, 0]
    return _sampled_loss(loss, pos_scores, pos_rows, neg_scores, n_items, _log_q(sampling, drawn, dev))


def _log_q(sampling: np.ndarray | None, drawn: np.ndarray, dev: torch.device) -> torch.Tensor | None:
    """log q of the drawn items (None: uniform), for the importance weights of Mult-CSS."""
    return None if sampling is None else torch.from_numpy(np.log(sampling[drawn]).astype(np.float32)).to(dev)


def _sampled_loss(
    loss: str,
    pos_scores: torch.Tensor,
    pos_rows: torch.Tensor,
    neg_scores: torch.Tensor,
    n_items: int,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    if loss == "mult-css":
        return mult_css_loss(pos_scores, pos_rows, neg_scores, n_items, log_q)
    if loss == "bpr":
        return bpr_loss(pos_scores, pos_rows, neg_scores)
    if loss == "ns":
        return ns_loss(pos_scores, pos_rows, neg_scores)
    raise ValueError(f"unknown loss {loss!r}")


def draw_items(
    n_items: int, shape: int | tuple[int, ...], rng: np.random.Generator, q: np.ndarray | None
) -> np.ndarray:
    """Items drawn with replacement, uniformly (``q`` None) or with probabilities ``q`` (I,)."""
    if q is None:
        return rng.integers(0, n_items, shape)
    return np.minimum(np.searchsorted(np.cumsum(q), rng.random(shape) * q.sum(), side="right"), n_items - 1)


def sample_negatives(
    pool: sp.csr_matrix | None,
    n_items: int,
    n_rows: int,
    n: int,
    rng: np.random.Generator,
    sampling: np.ndarray | None = None,
) -> np.ndarray:
    """(n_rows, n) negative items, uniform over the catalogue (or drawn from ``sampling``); for rows of
    ``pool`` with entries, the first half of the row's negatives are drawn (with replacement) from that
    row's items instead.

    Why half: banner negatives alone (displayed, not clicked) only teach the order *within* banners; on the
    production-like log, LED-BPR trained on them alone never beat its initial state on validation
    NDCG@20 over the whole catalogue (``ledrec bench table3``, best epoch 0), while uniform negatives
    teach the global order."""
    sampled = draw_items(n_items, (n_rows, n), rng, sampling)
    if pool is None or pool.nnz == 0:
        return sampled
    lengths = np.diff(pool.indptr)
    rows = np.flatnonzero(lengths > 0)
    half = max(1, n // 2)
    pick = pool.indptr[rows][:, None] + (rng.random((len(rows), half)) * lengths[rows][:, None]).astype(np.int64)
    sampled[rows, :half] = pool.indices[pick]
    return sampled
