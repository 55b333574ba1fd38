"""The batched full-ranking evaluator against a brute-force, one-user-at-a-time computation."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.data.splits import EvalSet
from ledrec.evaluate.ranking import evaluate
from tests.conftest import random_binary


def brute_force(scores, data, k, normalization):
    recalls, ndcgs = [], []
    for u in range(data.n_users):
        s = scores[u].astype(np.float64).copy()
        s[data.input[u].indices] = -np.inf
        ranked = np.argsort(-s, kind="stable")[:k]
        targets = set(data.target[u].indices.tolist())
        hits = [int(i in targets) for i in ranked]
        denom = len(targets) if normalization == "target" else min(k, len(targets))
        recalls.append(sum(hits) / denom)
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / np.log2(r + 2) for r in range(min(k, len(targets))))
        ndcgs.append(dcg / idcg)
    return np.mean(recalls), np.mean(ndcgs)


@pytest.mark.parametrize("normalization", ["target", "min"])
def test_evaluate_matches_brute_force(normalization):
    rng = np.random.default_rng(1)
    history = random_binary(50, 300, 0.05, seed=1)
    target = random_binary(50, 300, 0.03, seed=2)
    target = (target - target.multiply(history)).tocsr()
    target.eliminate_zeros()
    keep = np.diff(target.indptr) > 0
    data = EvalSet(history[keep], target[keep], np.arange(keep.sum()))
    weights = rng.random((300, 300)).astype(np.float32)
    bias = rng.random(300).astype(np.float32)

    def scorer(h):  # a deterministic function of the history alone, as for any fold-in model
        return h.toarray() @ weights + bias

    scores = scorer(data.input)

    res = evaluate(scorer, data, ks=(5, 20), normalization=normalization)
    for k in (5, 20):
        recall, ndcg = brute_force(scores, data, k, normalization)
        assert res[f"recall@{k}"] == pytest.approx(recall)
        assert res[f"ndcg@{k}"] == pytest.approx(ndcg)
    # a one-user batch (memory_mb=0 → batch of 1) gives identical results
    tiny = evaluate(scorer, data, ks=(5, 20), normalization=normalization, memory_mb=0)
    assert tiny.metrics == res.metrics


def test_input_items_are_never_recommended():
    history = random_binary(20, 40, 0.3, seed=3)
    target = random_binary(20, 40, 0.1, seed=4)
    target = (target - target.multiply(history)).tocsr()
    target.eliminate_zeros()
    keep = np.diff(target.indptr) > 0
    data = EvalSet(history[keep], target[keep], np.arange(keep.sum()))
    # a scorer that loves exactly the input items: with exclusion they cannot be hits or block targets
    res = evaluate(lambda h: h.toarray() * 100.0, data, ks=(40,))
    assert res["recall@40"] == pytest.approx(1.0)  # all targets fit in the remaining ranks


def test_scorer_shape_is_checked():
    data = EvalSet(random_binary(3, 10, 0.2), random_binary(3, 10, 0.2, seed=5), np.arange(3))
    with pytest.raises(ValueError, match="scorer returned shape"):
        evaluate(lambda h: np.zeros((h.shape[0], 9)), data, ks=(5,))
