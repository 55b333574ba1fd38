"""New items between retrains: give an item the published model has never seen a vector and a bias from
recent events, so it can be recommended today instead of after the next daily retrain.

An e-commerce catalogue changes every day; retraining is daily (§6.1). LED has no per-user parameter, so
new *users* need nothing; a new *item* needs a row [v; b]. From the recent events (users' timelines that
contain it) the new item's vector is a weighted mean of the vectors of the known items it co-occurs with —
the same reasoning as the SVD pre-training: items of similar contexts get similar vectors:

* ``pmi``: weights = positive PMI of (new item, known item) over the recent timelines (α-smoothed context
  counts, as the pre-training's PMI): rare, specific neighbours count more than the global head;
* ``cooc``: weights = co-occurrence counts;
* ``popularity``: no vector (v = 0): the new item is ranked by its bias alone — the baseline.

The mean of many vectors is shorter than its parts; it is rescaled to their weighted mean norm (the scale
the scores were trained at). The bias comes from early popularity: a least-squares line of the known
items' biases on log(1 + users in the recent events), read at the new item's count. The row is then
clipped so that ‖[v; b]‖ stays within the catalogue's largest, which keeps the MIPS→NN reduction of an
existing graph valid: the graph is extended (``add_items``), not rebuilt. ``benchmarks/foldin.py``
measures the methods against popularity and a full retrain (docs/pipeline.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.data.interactions import DataError, Interactions
from ledrec.export.mips import ServingModel
from ledrec.pretrain.cooccurrence import cooccurrence
from ledrec.pretrain.pmi import pmi

METHODS = ("pmi", "cooc", "popularity")


@dataclass
class FoldIn:
    model: ServingModel  # the published model with the new items appended (old rows unchanged)
    new_items: np.ndarray  # (n,) ids of the items added
    stats: dict[str, Any]


def fold_in(
    model: ServingModel,
    events: Interactions,
    *,
    partition: str | None = None,
    method: str = "pmi",
    min_users: int = 2,
    alpha: float = 0.75,
    calibration_items: int = 2000,
    seed: int = 0,
) -> FoldIn:
    """Append the items of ``events`` that ``model`` does not know (seen by at least ``min_users`` users)
    to the catalogue ``partition`` (the model's only one when None)."""
    if method not in METHODS:
        raise DataError(f"fold-in method must be one of {METHODS}, not {method!r}")
    partition = _catalogue(model, partition)
    X = sp.csr_matrix(events.to_csr(), dtype=np.float32)  # (users, event items), 0/1
    known = model.indices(events.items.ids)  # event item → model item, -1 new
    users_per_item = np.diff(sp.csc_matrix(X).indptr)
    new = np.flatnonzero((known < 0) & (users_per_item >= min_users))
    stats: dict[str, Any] = {"method": method, "events": len(events), "new_items": len(new)}
    stats["new_items_below_min_users"] = int(((known < 0) & (users_per_item < min_users)).sum())
    if not len(new):
        return FoldIn(model, np.empty(0, dtype=str), stats)
    counts = users_per_item.astype(np.float64)
    bias = _bias_from_popularity(model, known, counts, new, stats)
    vectors = np.zeros((len(new), model.dim), np.float32)
    encoder = None if model.tied else np.zeros((len(new), model.dim), np.float32)
    if method != "popularity":
        # calibration items: known items of the events, folded in as if new; their true vectors say how far
        # a weighted mean of neighbours should be scaled (it over-scores: its neighbours are the very items of
        # the users' histories)
        rng = np.random.default_rng(seed)
        familiar = np.flatnonzero((known >= 0) & (users_per_item >= min_users))
        familiar = rng.choice(familiar, size=min(len(familiar), calibration_items), replace=False)
        weights = _weights(X, known, np.concatenate([new, familiar]), method, alpha)  # (new + familiar, model)
        means = _weighted_mean(weights, model.item_vectors)
        scale = _calibrated_scale(X, known, model, means[len(new) :], known[familiar], rng, stats)
        vectors = means[: len(new)] * scale
        if encoder is not None:
            encoder = _weighted_mean(weights[: len(new)], model.encoder_vectors) * scale
        stats["new_items_without_known_neighbours"] = int(
            (np.asarray(weights[: len(new)].sum(axis=1)).ravel() == 0).sum()
        )
    vectors, bias = _clip_to_catalogue(model, partition, vectors, bias, stats)
    ids = np.asarray(events.items.ids[new]).astype(str)
    return FoldIn(_extended(model, partition, ids, vectors, encoder, bias), ids, stats)


def _catalogue(model: ServingModel, partition: str | None) -> str:
    if partition is None:
        if len(model.partitions) != 1:
            raise DataError(f"the model has {len(model.partitions)} catalogues; say which the new items join")
        return next(iter(model.partitions))
    if partition not in model.partitions:
        raise DataError(f"no catalogue {partition!r} in the model")
    return partition


def _weights(X: sp.csr_matrix, known: np.ndarray, new: np.ndarray, method: str, alpha: float) -> sp.csr_matrix:
    """(new items, model items): how much each known item's vector counts for each new item."""
    C = cooccurrence(X)  # (event items, event items), timelines containing both
    W = pmi(C, alpha=alpha) if method == "pmi" else C
    W = sp.csr_matrix(W[new])  # rows of the new items
    cols = known[W.indices]
    keep = cols >= 0  # only neighbours with a vector (other new items have none yet)
    rows = np.repeat(np.arange(len(new)), np.diff(W.indptr))[keep]
    n_model = int(known.max()) + 1 if (known >= 0).any() else 0
    return sp.csr_matrix((W.data[keep], (rows, cols[keep])), shape=(len(new), max(n_model, 1)))


def _weighted_mean(weights: sp.csr_matrix, vectors: np.ndarray) -> np.ndarray:
    """Rows Σ w v / Σ w, rescaled to Σ w ‖v‖ / Σ w (zero for rows without weight)."""
    v = vectors[: weights.shape[1]]
    total = np.asarray(weights.sum(axis=1)).ravel()
    mean = np.asarray(weights @ v) / np.maximum(total, 1e-12)[:, None]
    scale = np.asarray(weights @ np.linalg.norm(v, axis=1)).ravel() / np.maximum(total, 1e-12)
    norm = np.linalg.norm(mean, axis=1)
    out = mean * (scale / np.maximum(norm, 1e-12))[:, None]
    return np.where((total > 0)[:, None], out, 0.0).astype(np.float32)


def _calibrated_scale(
    X: sp.csr_matrix,
    known: np.ndarray,
    model: ServingModel,
    folded: np.ndarray,
    true_items: np.ndarray,
    rng: np.random.Generator,
    stats: dict[str, Any],
    max_users: int = 2000,
) -> float:
    """λ of least squares ⟨q_u, v_i⟩ ≈ λ·⟨q_u, v̂_i⟩ over recent users u and calibration items i (known
    items folded in as if new: v̂_i, their trained vectors v_i), q_u from each user's known recent items."""
    if not len(true_items):
        stats["scale"] = 1.0
        return 1.0
    users = rng.choice(X.shape[0], size=min(X.shape[0], max_users), replace=False)
    H = X[users]
    cols = known[H.indices]
    keep = cols >= 0
    rows = np.repeat(np.arange(len(users)), np.diff(H.indptr))[keep]
    H = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows, cols[keep])), shape=(len(users), len(model.item_ids))
    )
    lengths = np.maximum(np.diff(H.indptr), 1).astype(np.float32)
    q = np.asarray(H @ model.encoder_vectors) / lengths[:, None]  # (u, d)
    q = q if np.allclose(model.query_map, np.eye(model.dim)) else q @ model.query_map
    approx, truth = q @ folded.T, q @ model.item_vectors[true_items].T  # (u, items)
    scale = float((approx * truth).sum() / max(float((approx * approx).sum()), 1e-12))
    stats["scale"] = round(scale, 4)
    stats["calibration"] = {"items": len(true_items), "users": len(users)}
    return max(scale, 0.0)


def _bias_from_popularity(
    model: ServingModel, known: np.ndarray, counts: np.ndarray, new: np.ndarray, stats: dict[str, Any]
) -> np.ndarray:
    """b ≈ a + c · log(1 + users in the recent events), fitted on the known items of the events."""
    seen = known >= 0
    x, y = np.log1p(counts[seen]), model.item_bias[known[seen]].astype(np.float64)
    if seen.sum() >= 2 and np.ptp(x) > 0:
        c, a = np.polyfit(x, y, 1)
    else:  # nothing to fit: the median known bias
        a, c = float(np.median(model.item_bias)), 0.0
    stats["bias_fit"] = {"intercept": round(float(a), 4), "slope": round(float(c), 4), "items": int(seen.sum())}
    return (a + c * np.log1p(counts[new])).astype(np.float32)


def _clip_to_catalogue(
    model: ServingModel, partition: str, vectors: np.ndarray, bias: np.ndarray, stats: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Keep ‖[v; b]‖ within the catalogue's largest: the graph's MIPS→NN reduction stays valid."""
    limit = float(np.linalg.norm(model.mips_items(model.partitions[partition]), axis=1).max())
    bias = np.clip(bias, -limit, limit).astype(np.float32)
    room = np.sqrt(np.maximum(limit**2 - bias.astype(np.float64) ** 2, 0.0))
    norms = np.linalg.norm(vectors, axis=1)
    factor = np.where(norms > room, room / np.maximum(norms, 1e-12), 1.0) * (1 - 1e-6)
    stats["clipped"] = int((norms > room).sum())
    return (vectors * factor[:, None]).astype(np.float32), bias


def _extended(
    model: ServingModel,
    partition: str,
    ids: np.ndarray,
    vectors: np.ndarray,
    encoder: np.ndarray | None,
    bias: np.ndarray,
) -> ServingModel:
    n = len(model.item_ids)
    added = np.arange(n, n + len(ids), dtype=np.int64)
    item_vectors = np.vstack([model.item_vectors, vectors]).astype(np.float32)
    partitions = dict(model.partitions)
    partitions[partition] = np.concatenate([model.partitions[partition], added])
    return replace(
        model,
        item_ids=np.concatenate([model.item_ids, ids]),
        item_vectors=item_vectors,
        encoder_vectors=item_vectors if encoder is None else np.vstack([model.encoder_vectors, encoder]),
        item_bias=np.concatenate([model.item_bias, bias]).astype(np.float32),
        partitions=partitions,
        info={**model.info, "folded_in": {"items": len(ids), "from": model.version}},
        # a folded-in item has no row of the fit's own similarity: alike to nothing until the next retrain
        similarity_table=None
        if model.similarity_table is None
        else np.vstack([model.similarity_table, np.zeros((len(ids), model.similarity_table.shape[1]), np.float32)]),
    )
