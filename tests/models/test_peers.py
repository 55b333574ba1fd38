"""The peers measured beside LED: known answers for GF-CF's filter and ALS's fold-in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ledrec.models import ALS, BPRMF, GFCF
from tests.conftest import planted_clusters, random_binary


def test_gfcf_is_the_papers_filter_computed_densely():
    X = random_binary(80, 30, 0.15, seed=1)
    H = random_binary(5, 30, 0.2, seed=2)
    model = GFCF(k=29, alpha=0.3, svd_iter=20).fit(X)
    R = X.toarray()
    du, di = R.sum(1) ** -0.5, R.sum(0) ** -0.5
    norm = du[:, None] * R * di[None, :]
    _, _, vt = np.linalg.svd(norm, full_matrices=False)
    V = vt[:29].T  # (I, k): all but the last singular vector
    want = H.toarray() @ norm.T @ norm + 0.3 * (H.toarray() * di) @ V @ V.T / di
    np.testing.assert_allclose(model.score(H), want, rtol=1e-3, atol=1e-4)


def test_als_folds_a_training_user_in_where_training_left_it():
    pytest.importorskip("implicit")
    X = planted_clusters(n_users=300, n_items=60, n_clusters=3, items_per_user=8, seed=0)
    model = ALS(factors=16, iterations=20, regularization=0.05).fit(X)
    trained = model._model.user_factors @ model.item_factors_.T  # what implicit itself scores
    folded = model.score(X)  # each user's factor solved again from its row
    corr = [np.corrcoef(trained[u], folded[u])[0, 1] for u in range(0, 300, 7)]
    assert min(corr) > 0.99
    # and it recommends the user's own cluster
    top = np.argsort(-model.score(sp.csr_matrix(X[:3])), axis=1)[:, :10]
    assert all(len({i // 20 for i in row}) == 1 for row in top)


def test_bpr_keeps_a_training_users_factor_and_folds_new_histories_in(tmp_path):
    pytest.importorskip("implicit")
    X = planted_clusters(n_users=300, n_items=60, n_clusters=3, items_per_user=8, seed=0)
    model = BPRMF(factors=16, iterations=60, learning_rate=0.05).fit(X)
    # a training row is scored with its own trained factor: exactly what implicit scores
    np.testing.assert_allclose(model.score(X[:5]), model.user_factors_[:5] @ model.item_factors_.T, rtol=1e-5)
    # a new history (half a training row) is folded in and recommends its own cluster
    new = X[:3].toarray()
    new[:, ::2] = 0
    top = np.argsort(-model.score(sp.csr_matrix(new)), axis=1)[:, :10]
    assert all(len({i // 20 for i in row}) == 1 for row in top)
    model.save(tmp_path / "m")  # and a saved model scores the same
    np.testing.assert_allclose(BPRMF.load(tmp_path / "m").score(X[:5]), model.score(X[:5]), rtol=1e-5)
