"""Candidate sources: they only propose the merchant's items, in their own order (checked by brute force)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ledrec.models.led import LED
from ledrec.twostage.candidates import CBO, GBO, LEDSource, top_per_group

rng = np.random.default_rng(0)
N_USERS, N_ITEMS, N_MERCHANTS = 300, 120, 4
ITEM_MERCHANT = rng.integers(0, N_MERCHANTS, N_ITEMS)
X = sp.random(N_USERS, N_ITEMS, density=0.08, format="csr", random_state=1, dtype=np.float32)
X.data[:] = 1.0


def test_top_per_group_matches_brute_force():
    scores = rng.random(N_ITEMS)
    top = top_per_group(scores, ITEM_MERCHANT, N_MERCHANTS, 5)
    for m in range(N_MERCHANTS):
        items = np.flatnonzero(ITEM_MERCHANT == m)
        np.testing.assert_array_equal(top[m], items[np.argsort(-scores[items])][:5])
    assert np.all(top_per_group(scores, ITEM_MERCHANT, N_MERCHANTS + 1, 5)[N_MERCHANTS] == -1)  # empty group


def test_gbo_proposes_the_merchants_most_popular():
    gbo = GBO(ITEM_MERCHANT, N_MERCHANTS).fit(X)
    merchants = np.array([0, 3, 1])
    items, scores = gbo.propose(X[:3], merchants, 4)
    counts = np.asarray(X.sum(axis=0)).ravel()
    for row, m in enumerate(merchants):
        assert np.all(ITEM_MERCHANT[items[row]] == m)
        assert np.all(np.diff(scores[row]) <= 0)
        best = np.sort(counts[ITEM_MERCHANT == m])[::-1][:4]
        np.testing.assert_array_equal(np.sort(counts[items[row]])[::-1], best)


def test_cbo_proposes_the_clusters_best_of_the_merchant():
    vectors = rng.normal(size=(N_ITEMS, 8)).astype(np.float32)
    cbo = CBO(vectors, ITEM_MERCHANT, N_MERCHANTS, n_clusters=5).fit(X)
    merchants = rng.integers(0, N_MERCHANTS, 20)
    items, scores = cbo.propose(X[:20], merchants, 3)
    clusters = cbo.clusters(X[:20])
    for row in range(20):
        m, k = merchants[row], clusters[row]
        assert np.all(ITEM_MERCHANT[items[row]] == m)
        own = cbo.cluster_counts_[k][ITEM_MERCHANT == m]
        np.testing.assert_array_equal(np.sort(scores[row])[::-1], np.sort(own)[::-1][:3])
    assert cbo.cluster_counts_.sum() == X.nnz  # every interaction counted once, in its user's cluster


def test_led_source_equals_brute_force_restricted_scoring():
    model = LED(dim=8, epochs=2, init="random", random_state=0)
    model.progress = False
    model.fit(X)
    source = LEDSource(model, ITEM_MERCHANT, N_MERCHANTS)
    merchants = rng.integers(0, N_MERCHANTS, 15)
    items, scores = source.propose(X[:15], merchants, 6)
    full = model.score(X[:15])
    for row, m in enumerate(merchants):
        own = np.flatnonzero(ITEM_MERCHANT == m)
        expected = own[np.argsort(-full[row, own], kind="stable")][:6]
        np.testing.assert_array_equal(items[row], expected)
        np.testing.assert_allclose(scores[row], full[row, expected], rtol=1e-5, atol=1e-5)
