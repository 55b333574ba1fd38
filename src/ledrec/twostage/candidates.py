"""Candidate sources of the seed paper's two-stage system (§6): for a user's history and a merchant, each
source proposes the merchant's top-``k`` items by its own criterion.

* :class:`GBO` (Global Best Of): the merchant's most interacted items — the same for every user.
* :class:`CBO` (Clustering Best Of, the paper's production baseline): users are clustered (MiniBatchKMeans)
  on their mean pre-trained (SVD) item vector; a user gets the merchant's top items within their cluster.
* :class:`LEDSource`: the LED user vector (mean of the history's item vectors, times PᵀP in project mode)
  scored against the merchant's items: ⟨q, v_i⟩ + b_i.

All work in item-index space, batched: ``propose(histories, merchants, k)`` takes a CSR matrix of
histories (n × I) and the n merchants, and returns ``(items, scores)``, both (n, k), item -1 where a
merchant has fewer than k items.
"""

from __future__ import annotations

from typing import Any, Protocol, Self

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import MiniBatchKMeans


class CandidateSource(Protocol):
    name: str

    def propose(self, histories: sp.csr_matrix, merchants: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def top_per_group(scores: np.ndarray, item_group: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """(n_groups, k) the k best-scored items of each group by ``scores`` (I,) — or, with ``scores`` of
    shape (R, I), the best of each (row, group): (R, n_groups, k). Empty slots are -1."""
    single = scores.ndim == 1
    scores = np.atleast_2d(scores)
    by_group = np.lexsort((-scores, np.broadcast_to(item_group, scores.shape)), axis=-1)  # (R, I)
    bounds = np.searchsorted(item_group[by_group[0]], np.arange(n_groups + 1))
    out = np.full((scores.shape[0], n_groups, k), -1, dtype=np.int64)
    for g in range(n_groups):
        lo, hi = bounds[g], min(bounds[g + 1], bounds[g] + k)
        out[:, g, : hi - lo] = by_group[:, lo:hi]
    return out[0] if single else out


class GBO:
    """The merchant's most popular items (counts of ``X``'s non-zeros, i.e. users who interacted)."""

    name = "gbo"

    def __init__(self, item_merchant: np.ndarray, n_merchants: int, k_max: int = 50) -> None:
        self.item_merchant, self.n_merchants, self.k_max = item_merchant, n_merchants, k_max

    def fit(self, X: sp.csr_matrix) -> Self:
        self.item_counts_ = np.asarray((X > 0).sum(axis=0), dtype=np.float64).ravel()  # (I,)
        self.top_ = top_per_group(self.item_counts_, self.item_merchant, self.n_merchants, self.k_max)  # (M, K)
        return self

    def propose(self, histories: sp.csr_matrix, merchants: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        items = self.top_[merchants, :k]
        return items, np.where(items >= 0, self.item_counts_[items], -np.inf)


class CBO:
    """Top items of the merchant among the users of the same cluster (clusters of mean SVD vectors)."""

    name = "cbo"

    def __init__(
        self,
        item_vectors: np.ndarray,
        item_merchant: np.ndarray,
        n_merchants: int,
        n_clusters: int = 30,
        k_max: int = 50,
        random_state: int = 0,
    ) -> None:
        self.item_vectors = item_vectors  # (I, d) pre-trained (SVD) vectors
        self.item_merchant, self.n_merchants = item_merchant, n_merchants
        self.n_clusters, self.k_max, self.random_state = n_clusters, k_max, random_state

    def user_vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        lengths = np.maximum(np.diff(histories.indptr), 1)[:, None]
        return np.asarray((histories > 0).astype(np.float32) @ self.item_vectors) / lengths  # (n, d)

    def fit(self, X: sp.csr_matrix) -> Self:
        """Cluster the users of ``X`` and count, per cluster, the users who interacted with each item."""
        u = self.user_vectors(X)
        active = np.diff(X.indptr) > 0
        n_clusters = min(self.n_clusters, int(active.sum()))
        self.kmeans_ = MiniBatchKMeans(n_clusters, random_state=self.random_state, n_init=3, batch_size=4096)
        self.kmeans_.fit(u[active])
        labels = self.kmeans_.predict(u)
        members = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), (n_clusters, len(labels)))
        self.cluster_counts_ = np.asarray((members @ (X > 0).astype(np.float64)).todense())  # (K, I)
        self.top_ = top_per_group(self.cluster_counts_, self.item_merchant, self.n_merchants, self.k_max)  # (K, M, k)
        return self

    def clusters(self, histories: sp.csr_matrix) -> np.ndarray:
        return self.kmeans_.predict(self.user_vectors(histories))

    def propose(self, histories: sp.csr_matrix, merchants: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        cluster = self.clusters(histories)
        items = self.top_[cluster, merchants, :k]  # (n, k)
        return items, np.where(items >= 0, self.cluster_counts_[cluster[:, None], items], -np.inf)


class Centroids:
    """Nearest-centroid assignment (what a fitted k-means predicts), from saved centres."""

    def __init__(self, centers: np.ndarray) -> None:
        self.cluster_centers_ = centers  # (K, d)

    def predict(self, x: np.ndarray) -> np.ndarray:
        c = self.cluster_centers_
        return np.argmin((x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :], axis=1)


LED_SCORES = ("raw", "log_lift")


def with_trigger(histories: sp.csr_matrix, trigger: np.ndarray, share: float) -> sp.csr_matrix:
    """Histories weighted for LED's encoder: row r's items share 1 - ``share`` equally and the item
    ``trigger[r]`` (the one just viewed, which the banner follows) gets ``share`` more; the rows sum to 1,
    so LED's mean encoder gives (1 - share)·mean(history) + share·v_trigger. The support is the history's
    and the trigger's, so whatever reads only which items a user had (GBO, CBO, the ranker's category
    share) sees what it saw. ``share`` = 0: the plain mean; ``share`` < 1."""
    if not 0.0 <= share < 1.0:  # (at 1 the history's weights would be 0: gone from what the others read)
        raise ValueError(f"share must be in [0, 1), not {share!r}")
    n = histories.shape[0]
    h = sp.csr_matrix(histories, dtype=np.float64, copy=True)
    h.data[:] = 1.0
    lengths = np.diff(h.indptr)
    h = sp.diags(np.where(lengths > 0, (1.0 - share) / np.maximum(lengths, 1), 0.0)) @ h
    shares = np.where(lengths > 0, share, 1.0)  # an empty history: the trigger alone
    h = h + sp.csr_matrix((shares, (np.arange(n), trigger)), shape=histories.shape)
    return sp.csr_matrix(h)


class LEDSource:
    """The merchant's items by LED score s_i = ⟨u·PᵀP, v_i⟩ + b_i. ``model``: a fitted
    :class:`~ledrec.models.led.LED`, or anything with its learned arrays ``item_vectors_`` (I, d),
    ``item_bias_`` (I,), ``query_map_`` (d, d) and its ``reduce`` (what the service loads from disk, without
    the training stack).

    ``score``, what ``propose`` returns beside the items (the ranker's ``led_score`` feature; the order is the
    same either way): ``raw``, s_i itself; ``log_lift``, log(n_m · softmax_m(s)_i) — the log of the
    probability the model gives item i among the merchant's n_m items, over the uniform 1/n_m. The softmax
    does not change under a constant added to every score of a user, so the raw score's level differs from
    user to user for no reason the user's clicks know of; the log-lift removes that offset and is comparable
    across requests, as one logistic ranker over everyone's displays needs (docs/twostage.md measures both)."""

    name = "led"

    def __init__(self, model: Any, item_merchant: np.ndarray, n_merchants: int, score: str = "raw") -> None:
        if score not in LED_SCORES:
            raise ValueError(f"score must be one of {', '.join(LED_SCORES)}, not {score!r}")
        self.model, self.item_merchant, self.n_merchants, self.score = model, item_merchant, n_merchants, score
        self.by_merchant = [np.flatnonzero(item_merchant == m) for m in range(n_merchants)]

    def user_vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        """(n, d) the encoder of LED: mean (or 1/√T-scaled sum) of each history's item vectors. A history's
        values weigh its items (T = their sum): a binary history is the plain mean; one that gives the item
        just viewed a larger weight asks LED about the current intent more than the long-term one."""
        lengths = np.asarray(histories.sum(axis=1), dtype=np.float32).ravel()
        reduce = self.model.reduction() if hasattr(self.model, "reduction") else self.model.reduce
        norm = lengths if reduce == "mean" else np.sqrt(lengths)
        encoder = getattr(self.model, "encoder_vectors_", self.model.item_vectors_)  # (untied: its own table)
        u = np.asarray(sp.csr_matrix(histories, dtype=np.float32) @ encoder)  # (n, d)
        return u / np.where(norm > 0, norm, 1.0)[:, None]

    def propose(self, histories: sp.csr_matrix, merchants: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        m = self.model
        q = self.user_vectors(histories) @ m.query_map_  # (n, d)
        items = np.full((len(merchants), k), -1, dtype=np.int64)
        scores = np.full((len(merchants), k), -np.inf)
        for merchant in np.unique(merchants):
            rows = np.flatnonzero(merchants == merchant)
            cand = self.by_merchant[merchant]  # (I_m,)
            s = q[rows] @ m.item_vectors_[cand].T + m.item_bias_[cand]  # (n_m, I_m)
            kk = min(k, len(cand))
            top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), axis=1), 1)
            items[rows, :kk] = cand[top]
            if self.score == "log_lift":  # log-softmax over the merchant's items (stable), + log n_m
                top_s = s.max(axis=1, keepdims=True)
                s = s - top_s - np.log(np.exp(s - top_s).sum(axis=1, keepdims=True)) + np.log(len(cand))
            scores[rows, :kk] = np.take_along_axis(s, top, 1)
        return items, scores
