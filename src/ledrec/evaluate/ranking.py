"""Full-ranking evaluation: every item is a candidate except the user's own input items.

Users are processed in batches sized so that one batch of float32 scores stays under ``memory_mb``
(Gowalla: 30k users × 41k items would be 4.9 GB in float32 and twice that in float64 at once); only the
top ``max(ks)`` indices per user are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from ledrec.data.splits import EvalSet
from ledrec.evaluate.metrics import ndcg_at_k, recall_at_k

DEFAULT_KS = (20, 50, 100)
Scorer = Callable[[sp.csr_matrix], np.ndarray]  # histories (n, I) -> scores (n, I)


@dataclass
class EvalResult:
    """Mean metrics (``metrics["recall@20"]``) and the per-user values behind them."""

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray] = field(repr=False)
    n_users: int
    seconds: float

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first; entries of ``exclude`` never appear.

    ``scores`` is modified in place where excluded (set to -inf).
    """
    if exclude is not None and exclude.nnz:
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    k = min(k, scores.shape[1])
    return torch.topk(torch.from_numpy(scores), k, dim=1, sorted=True).indices.numpy()


def evaluate(
    score: Scorer,
    data: EvalSet,
    ks: Sequence[int] = DEFAULT_KS,
    normalization: str | None = None,
    memory_mb: int = 256,
    progress: bool = False,
    desc: str = "evaluate",
) -> EvalResult:
    """Recall@k and NDCG@k of a scorer on held-out users. ``normalization`` (see :func:`recall_at_k`)
    defaults to the eval set's own (its protocol's)."""
    start = time.perf_counter()
    normalization = normalization or data.recall_normalization
    n_users, n_items = data.input.shape
    kmax = min(max(ks), n_items)
    batch = max(1, (memory_mb << 20) // (4 * n_items))
    n_targets = np.diff(data.target.indptr)
    hits = np.zeros((n_users, kmax), dtype=bool)
    with tqdm(total=n_users, desc=desc, disable=not progress, unit="user") as bar:  # counts users, not batches
        for lo in range(0, n_users, batch):
            hi = min(lo + batch, n_users)
            history = data.input[lo:hi]
            excluded = history if data.exclude is None else data.exclude[lo:hi]
            scores = np.array(score(history), dtype=np.float32, copy=True)  # own copy: top_k writes into it
            if scores.shape != (hi - lo, n_items):
                raise ValueError(f"scorer returned shape {scores.shape}, expected {(hi - lo, n_items)}")
            ranked = top_k(scores, kmax, exclude=excluded)
            target = data.target[lo:hi].toarray().astype(bool)  # (batch, I): small, bounded like scores
            hits[lo:hi] = np.take_along_axis(target, ranked, axis=1)
            bar.update(hi - lo)
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        kk = min(k, kmax)
        per_user[f"recall@{k}"] = recall_at_k(hits, n_targets, kk, normalization)
        per_user[f"ndcg@{k}"] = ndcg_at_k(hits, n_targets, kk)
    metrics = {key: float(np.mean(v)) for key, v in sorted(per_user.items(), key=lambda kv: _metric_order(kv[0]))}
    return EvalResult(metrics, per_user, n_users, time.perf_counter() - start)


def _metric_order(key: str) -> tuple[str, int]:
    name, k = key.split("@")
    return name, int(k)
