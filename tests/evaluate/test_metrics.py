"""Metrics against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ledrec.evaluate.metrics import click_rank, ndcg_at_k, recall_at_k

# one user, 3 targets, hits at ranks 0 and 2 of the top 5
HITS = np.array([[True, False, True, False, False]])
N = np.array([3])


def test_recall_both_normalisations():
    assert recall_at_k(HITS, N, 5, "target")[0] == pytest.approx(2 / 3)
    assert recall_at_k(HITS, N, 5, "min")[0] == pytest.approx(2 / 3)  # min(5, 3) = 3
    assert recall_at_k(HITS, N, 2, "target")[0] == pytest.approx(1 / 3)
    assert recall_at_k(HITS, N, 2, "min")[0] == pytest.approx(1 / 2)  # min(2, 3) = 2
    with pytest.raises(ValueError):
        recall_at_k(HITS, N, 2, "other")


def test_ndcg_hand_computed():
    dcg5 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg5 = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(HITS, N, 5)[0] == pytest.approx(dcg5 / idcg5)  # 0.70393
    assert ndcg_at_k(HITS, N, 5)[0] == pytest.approx(0.703918, abs=1e-6)
    idcg2 = 1 + 1 / math.log2(3)
    assert ndcg_at_k(HITS, N, 2)[0] == pytest.approx(1 / idcg2)


def test_perfect_and_empty_rankings():
    perfect = np.array([[True, True, False], [False, False, False]])
    n = np.array([2, 4])
    assert ndcg_at_k(perfect, n, 3).tolist() == pytest.approx([1.0, 0.0])
    assert recall_at_k(perfect, n, 3, "min").tolist() == pytest.approx([1.0, 0.0])
    # more targets than k: "min" still reaches 1 for a perfect ranking, "target" cannot
    full = np.ones((1, 3), dtype=bool)
    assert recall_at_k(full, np.array([10]), 3, "min")[0] == 1.0
    assert recall_at_k(full, np.array([10]), 3, "target")[0] == pytest.approx(0.3)
    assert ndcg_at_k(full, np.array([10]), 3)[0] == pytest.approx(1.0)


def test_metric_input_checks():
    with pytest.raises(ValueError, match="at least one target"):
        recall_at_k(HITS, np.array([0]), 2)
    with pytest.raises(ValueError, match="k=9"):
        ndcg_at_k(HITS, N, 9)


def test_click_rank_hand_computed():
    scores = np.array([0.9, 0.5, 0.7, 0.1])
    assert click_rank(scores, np.array([2])) == pytest.approx(1 / 3)  # one item scored higher, of 3 others
    assert click_rank(scores, np.array([0])) == 0.0  # perfect
    assert click_rank(scores, np.array([3])) == 1.0  # worst
    assert click_rank(scores, np.array([True, False, False, True])) == pytest.approx(0.5)  # mean of 0 and 1
    assert click_rank(np.ones(5), np.array([1])) == 0.5  # all tied: the random expectation
    assert math.isnan(click_rank(np.array([1.0]), np.array([0])))
    with pytest.raises(ValueError):
        click_rank(scores, np.array([], dtype=int))


def test_click_rank_is_half_for_random_scores():
    rng = np.random.default_rng(0)
    ranks = [click_rank(rng.random(8), rng.integers(0, 8, 1)) for _ in range(20_000)]
    assert np.mean(ranks) == pytest.approx(0.5, abs=0.01)
