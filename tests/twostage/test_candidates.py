"""Candidate sources: they only propose the merchant's items, in their own order (checked by brute force)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ledrec.models.led import LED
from ledrec.twostage.candidates import CBO, GBO, LEDSource, top_per_group, with_trigger

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


def test_led_source_log_lift_is_the_merchants_softmax_over_uniform():
    model = LED(dim=8, epochs=2, init="random", random_state=0)
    model.progress = False
    model.fit(X)
    raw = LEDSource(model, ITEM_MERCHANT, N_MERCHANTS)
    lift = LEDSource(model, ITEM_MERCHANT, N_MERCHANTS, score="log_lift")
    merchants = rng.integers(0, N_MERCHANTS, 15)
    k = int(np.bincount(ITEM_MERCHANT).max())  # the merchant's whole catalogue
    items, scores = lift.propose(X[:15], merchants, k)
    np.testing.assert_array_equal(items, raw.propose(X[:15], merchants, k)[0])  # the same candidates
    full = model.score(X[:15]).astype(np.float64)
    for row, m in enumerate(merchants):
        own = ITEM_MERCHANT == m
        n_m = int(own.sum())
        s = full[row, own]
        expected = s - np.log(np.exp(s - s.max()).sum()) - s.max() + np.log(n_m)
        got = scores[row, :n_m]
        np.testing.assert_allclose(np.sort(got), np.sort(expected), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(np.exp(got).sum(), n_m, rtol=1e-4)  # a distribution, times n_m
    # a constant added to every score of a user (a shift of the softmax's input) leaves the log-lift as it is
    model.item_bias_ = model.item_bias_ + 3.0
    np.testing.assert_allclose(lift.propose(X[:15], merchants, k)[1], scores, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="score"):
        LEDSource(model, ITEM_MERCHANT, N_MERCHANTS, score="z")


def test_with_trigger_weighs_the_viewed_item_and_keeps_the_support():
    model = LED(dim=8, epochs=1, init="random", random_state=0)
    model.progress = False
    model.fit(X)
    led = LEDSource(model, ITEM_MERCHANT, N_MERCHANTS)
    h = X[:40]
    trigger = np.array([row.indices[0] if row.nnz else 7 for row in h])  # an item of each history (7: empty)
    E = getattr(model, "encoder_vectors_", model.item_vectors_)
    mean = np.asarray(h @ E) / np.maximum(np.diff(h.indptr), 1)[:, None]
    np.testing.assert_allclose(led.user_vectors(with_trigger(h, trigger, 0.0)), mean, rtol=1e-5, atol=1e-6)
    for share in (0.3, 0.9):
        w = with_trigger(h, trigger, share)
        np.testing.assert_allclose(np.asarray(w.sum(axis=1)).ravel(), 1.0)
        # what reads only which items a user had (GBO, CBO, the ranker) sees the same rows
        np.testing.assert_array_equal((w > 0).toarray(), (h > 0).toarray() | (np.arange(N_ITEMS) == trigger[:, None]))
        expected = (1 - share) * mean + share * E[trigger]
        empty = np.diff(h.indptr) == 0
        expected[empty] = E[trigger[empty]]  # no history: the trigger alone
        np.testing.assert_allclose(led.user_vectors(w), expected, rtol=1e-4, atol=1e-5)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="share"):
            with_trigger(h, trigger, bad)
