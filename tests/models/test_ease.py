"""EASE against the textbook closed form, and known answers on planted data."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.data.splits import EvalSet
from ledrec.evaluate.ranking import evaluate
from ledrec.models import EASE, Popularity
from tests.conftest import planted_clusters, random_binary


def test_matches_closed_form_in_float64():
    X = random_binary(200, 40, 0.1, seed=0)
    lam = 7.0
    G = (X.T @ X).toarray().astype(np.float64)
    P = np.linalg.inv(G + lam * np.eye(40))
    B = -P / np.diag(P)  # B_ij = -P_ij / P_jj
    np.fill_diagonal(B, 0.0)
    model = EASE(lam=lam).fit(X)
    np.testing.assert_allclose(model.weights_, B, atol=1e-5)
    assert np.all(np.diag(model.weights_) == 0)
    np.testing.assert_allclose(model.score(X[:10]), X[:10].toarray() @ B, atol=1e-4)


def test_beats_popularity_on_planted_clusters():
    train = planted_clusters(n_users=600, n_items=120, n_clusters=6, items_per_user=12, seed=0)
    held = planted_clusters(n_users=60, n_items=120, n_clusters=6, items_per_user=12, seed=1)
    # first 9 items of each held-out user are input, the last 3 the targets
    inp, tgt = held.copy().tolil(), held.copy().tolil()
    for u in range(held.shape[0]):
        items = held[u].indices
        inp[u, items[9:]] = 0
        tgt[u, items[:9]] = 0
    data = EvalSet(inp.tocsr(), tgt.tocsr(), np.arange(60))
    ease = evaluate(EASE(lam=10.0).fit(train).score, data, ks=(10,))
    pop = evaluate(Popularity().fit(train).score, data, ks=(10,))
    # 20 items per cluster, 9 seen: the 3 targets are among the 11 unseen of the cluster
    assert ease["recall@10"] > 0.8
    assert pop["recall@10"] < 0.3


def test_regularisation_shrinks_weights():
    X = random_binary(100, 30, 0.2, seed=2)
    small = EASE(lam=1.0).fit(X).weights_
    big = EASE(lam=1e6).fit(X).weights_
    assert np.abs(big).max() < np.abs(small).max()
    with pytest.raises(ValueError):
        EASE(lam=1.0).fit(X).score(X[:, :5])
