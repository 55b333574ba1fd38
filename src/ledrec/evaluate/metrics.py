"""Ranking metrics on top-k hit matrices, and the seed paper's click-rank.

All functions take ``hits``: a boolean (n_users, K) matrix, ``hits[u, r]`` true when the item ranked ``r``
(0-based) for user ``u`` is one of its targets; and ``n_targets``: the size of each user's target set.
They return one value per user, so callers can average, bootstrap or pair them.
"""

from __future__ import annotations

import numpy as np

RECALL_NORMALIZATIONS = ("min", "target")


def recall_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int, normalization: str = "target") -> np.ndarray:
    """Recall@k per user: hits in the top k divided by |target| (``"target"``, BARS) or by
    min(k, |target|) (``"min"``, Liang et al. 2018, so that a perfect ranking scores 1 even when |target| > k)."""
    _check(hits, n_targets, k)
    found = hits[:, :k].sum(axis=1)
    if normalization == "target":
        denominator = n_targets
    elif normalization == "min":
        denominator = np.minimum(k, n_targets)
    else:
        raise ValueError(f"normalization must be one of {RECALL_NORMALIZATIONS}, not {normalization!r}")
    return found / np.asarray(denominator, dtype=np.float64)


def ndcg_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per user with binary relevance: DCG = Σ_r hit_r / log2(r + 2) over the top k, divided by the
    DCG of an ideal ranking, which places min(k, |target|) targets first."""
    _check(hits, n_targets, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    dcg = hits[:, :k] @ discounts
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(k, n_targets)]
    return dcg / ideal


def _check(hits: np.ndarray, n_targets: np.ndarray, k: int) -> None:
    if hits.ndim != 2 or hits.shape[0] != len(n_targets):
        raise ValueError(f"hits must be (n_users, K) with n_users = len(n_targets); got {hits.shape}")
    if not 1 <= k <= hits.shape[1]:
        raise ValueError(f"k={k} needs 1 <= k <= {hits.shape[1]} ranked items")
    if np.any(np.asarray(n_targets) < 1):
        raise ValueError("every user needs at least one target item")


def click_rank(scores: np.ndarray, clicked: np.ndarray) -> float:
    """Normalised rank of the clicked item(s) among the items shown in one banner (seed paper §9.2).

    ``scores``: (B,) the model's scores of the B displayed items; ``clicked``: a boolean (B,) mask or the
    indices of clicked items. The rank of an item is the number of displayed items scored higher, plus half
    the number of other items tied with it, divided by B - 1: 0 when every click is ranked first, 1 when
    last, and 0.5 in expectation for random scores (and exactly 0.5 when all scores are equal).
    Several clicks in one banner are averaged. Banners of one item have no rank: ``nan``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    clicked = np.asarray(clicked)
    idx = np.flatnonzero(clicked) if clicked.dtype == bool else clicked.astype(np.int64)
    if scores.ndim != 1:
        raise ValueError("scores must be one banner's (B,) vector")
    if len(idx) == 0:
        raise ValueError("click_rank needs at least one clicked item")
    b = len(scores)
    if b < 2:
        return float("nan")
    s = scores[idx][:, None]  # (clicks, 1)
    higher = (scores[None, :] > s).sum(axis=1)
    ties = (scores[None, :] == s).sum(axis=1) - 1  # not counting the item itself
    return float(np.mean((higher + 0.5 * ties) / (b - 1)))
