"""Every index against brute force (hnswlib style): recall@k on vectors with unequal norms, in both forms."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.index import ExactIndex, build_index, index_kinds


def mips_data(n: int = 3000, d: int = 24, n_queries: int = 50, seed: int = 0):
    """Clustered vectors of unequal norms, like trained item embeddings (isotropic Gaussian vectors in 24
    dimensions are a worst case no graph index handles well, and not what a model produces)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(30, d))
    items = centers[rng.integers(0, 30, n)] + 0.5 * rng.normal(size=(n, d))
    items = (items * rng.lognormal(0, 0.3, size=(n, 1))).astype(np.float32)
    near = centers[rng.integers(0, 30, n_queries), : d - 1] + 0.3 * rng.normal(size=(n_queries, d - 1))
    queries = np.hstack([near, np.ones((n_queries, 1))]).astype(np.float32)  # [q; 1]
    return items, queries


def test_exact_index_is_the_true_top_k():
    items, queries = mips_data(500, 8, 5)
    idx, scores = ExactIndex(items).search(queries, 10)
    full = queries @ items.T
    for q in range(len(queries)):
        assert idx[q].tolist() == np.argsort(-full[q], kind="stable")[:10].tolist()
        np.testing.assert_allclose(scores[q], full[q, idx[q]], rtol=1e-5)


def test_exact_index_with_fewer_items_than_k():
    items, queries = mips_data(5, 4, 2)
    idx, scores = ExactIndex(items).search(queries, 10)
    assert idx.shape == (2, 5) and sorted(idx[0]) == list(range(5))
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("kind", [k for k in index_kinds() if k != "exact"])
@pytest.mark.parametrize("form", ["ip", "nn"])
def test_ann_recall_against_brute_force(kind, form):
    items, queries = mips_data()
    truth, _ = ExactIndex(items).search(queries, 10)
    index = build_index(kind, items, form=form, M=16, ef_construction=100, ef_search=100)
    found, scores = index.search(queries, 10)
    recall = np.mean([len(set(found[q]) & set(truth[q])) / 10 for q in range(len(queries))])
    assert recall >= 0.9, (kind, form, recall)
    np.testing.assert_allclose(scores, np.einsum("nkd,nd->nk", items[found], queries), rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_hnswlib_graph_saves_and_loads_without_rebuild(tmp_path):
    items, queries = mips_data(800, 8, 10)
    index = build_index("hnswlib", items, M=8, ef_construction=50)
    index.save(tmp_path / "g.bin")
    again = build_index("hnswlib", items, M=8, ef_construction=50, path=tmp_path / "g.bin")
    np.testing.assert_array_equal(index.search(queries, 5)[0], again.search(queries, 5)[0])
