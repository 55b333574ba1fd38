"""The second stage: merged candidates keep every source's flag and rank; the ranker learns what drives clicks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ledrec.twostage.ranker import FEATURES, SOURCES, Catalog, Ranker, build_banners, features, gather_candidates


class Fixed:
    def __init__(self, name: str, items: list[list[int]]) -> None:
        self.name, self.items = name, np.array(items)

    def propose(self, histories, merchants, k):
        items = self.items[:, :k]
        return items, -np.arange(items.shape[1], dtype=float)[None].repeat(len(items), 0)


def test_gather_merges_repeats_with_all_flags_and_ranks():
    sources = [Fixed("gbo", [[1, 2, 3]]), Fixed("led", [[3, 4, 1]])]
    cand = gather_candidates(sources, sp.csr_matrix((1, 10)), np.array([0]), 3)
    items = list(cand.items[0][cand.items[0] >= 0])
    assert sorted(items) == [1, 2, 3, 4] and len(cand.items[0]) == 6
    g, c, led = (SOURCES.index(s) for s in ("gbo", "cbo", "led"))
    slot = {item: j for j, item in enumerate(cand.items[0]) if item >= 0}
    assert cand.proposed[0, slot[3], g] and cand.proposed[0, slot[3], led] and not cand.proposed[0, slot[3], c]
    assert cand.rank[0, slot[3], g] == 2 and cand.rank[0, slot[3], led] == 0
    assert cand.rank[0, slot[2], led] == -1
    assert cand.led_score[0, slot[4]] == -1.0 and cand.led_score[0, slot[2]] == 0.0


def test_ranker_recovers_the_feature_that_drives_clicks_and_ranks_by_it():
    rng = np.random.default_rng(0)
    n = 20_000
    X = rng.normal(size=(n, len(FEATURES)))
    drive = FEATURES.index("browsing_category")
    clicked = rng.random(n) < 1 / (1 + np.exp(-(-2 + 1.5 * X[:, drive])))
    ranker = Ranker().fit(X, clicked, np.zeros(n, dtype=bool))
    coef = ranker.coefficients()
    assert abs(coef["browsing_category"] - 1.5) < 0.1  # the planted weight (the feature has unit variance)
    assert all(abs(v) < 0.2 for k, v in coef.items() if k not in ("browsing_category", "scale"))
    assert np.all(ranker.predict(X[:5], "sale") == 0)  # no sale yet: constant score, no model

    cand_items = np.array([[7, 8, 9, -1]])
    from ledrec.twostage.ranker import Candidates

    cand = Candidates(cand_items, np.zeros((1, 4, 3), bool), -np.ones((1, 4, 3), int), np.zeros((1, 4)))
    Xc = np.zeros((1, 4, len(FEATURES)))
    Xc[0, :, drive] = [0.0, 2.0, 1.0, 5.0]  # the empty slot must never be shown, however it scores
    banners, slot, shown = build_banners(cand, Xc, ranker, 3, rng)
    np.testing.assert_array_equal(banners[0], [8, 9, 7])
    np.testing.assert_array_equal(slot[0], [1, 2, 0])
    np.testing.assert_allclose(shown[0], ranker.predict(Xc[0, [1, 2, 0]]))  # the scores it ranked by


def test_features_shape_and_values():
    catalog = Catalog(np.zeros(5, int), np.array([0, 1, 1, 0, 1]), np.full(5, np.e), 1, 2)
    sources = [Fixed("gbo", [[0, 1]]), Fixed("cbo", [[2, 1]])]
    cand = gather_candidates(sources, sp.csr_matrix((1, 5)), np.array([0]), 2)
    X = features(cand, catalog, np.full(5, np.e - 1), np.array([[0.25, 0.75]]), np.array([1]))
    assert X.shape == (1, len(cand.items[0]), len(FEATURES))
    j = {name: i for i, name in enumerate(FEATURES)}
    row = {int(item): X[0, s] for s, item in enumerate(cand.items[0]) if item >= 0}
    assert row[1][j["from_gbo"]] == 1 and row[1][j["from_cbo"]] == 1 and row[1][j["rr_cbo"]] == 0.5
    assert row[0][j["category_share"]] == 0.25 and row[2][j["browsing_category"]] == 1.0
    np.testing.assert_allclose(row[0][j["log_popularity"]], 1.0)
    np.testing.assert_allclose(row[0][j["log_price"]], 1.0)


def test_ranker_arrays_roundtrip_and_match_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, len(FEATURES)))
    clicked = rng.random(3000) < 1 / (1 + np.exp(-(X[:, 0] - 1)))
    sold = clicked & (rng.random(3000) < 0.3)
    ranker = Ranker().fit(X, clicked, sold)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, clicked)
    np.testing.assert_allclose(ranker.predict(X), reference.predict_proba(X)[:, 1], rtol=1e-6)
    back = Ranker.from_arrays(ranker.arrays())
    np.testing.assert_array_equal(back.predict(X), ranker.predict(X))
    np.testing.assert_array_equal(back.predict(X, "sale"), ranker.predict(X, "sale"))
