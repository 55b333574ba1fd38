"""Pre-training: co-occurrence against brute force, PMI by hand, randomized SVD on a planted matrix."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from ledrec.data.interactions import DataError
from ledrec.pretrain import ItemEmbeddings, PretrainConfig, pretrain, pretrain_dataset
from ledrec.pretrain.cooccurrence import cooccurrence, windowed_cooccurrence
from ledrec.pretrain.pmi import filter_items, pmi
from ledrec.pretrain.svd import item_embeddings
from tests.conftest import random_binary


def brute_cooccurrence(timelines, n_items, window=None):
    C = np.zeros((n_items, n_items))
    for seq in timelines:
        pairs = set()
        for a, b in itertools.combinations(range(len(seq)), 2):
            if (window is None or b - a <= window) and seq[a] != seq[b]:
                pairs |= {(seq[a], seq[b]), (seq[b], seq[a])}
        for i, j in pairs:
            C[i, j] += 1
    return C


def test_all_pairs_cooccurrence_matches_brute_force_and_chunks():
    X = random_binary(40, 15, 0.3, seed=1)
    timelines = [X[u].indices.tolist() for u in range(X.shape[0])]
    expected = brute_cooccurrence(timelines, 15)
    np.testing.assert_array_equal(cooccurrence(X).toarray(), expected)
    np.testing.assert_array_equal(cooccurrence(X, chunk_pairs=10).toarray(), expected)  # many small chunks


def test_windowed_cooccurrence_matches_brute_force():
    rng = np.random.default_rng(0)
    timelines = [rng.integers(0, 12, rng.integers(1, 15)).tolist() for _ in range(30)]  # repeats allowed
    users = np.concatenate([[u] * len(t) for u, t in enumerate(timelines)])
    items = np.concatenate(timelines)
    for window in (1, 2, 5):
        got = windowed_cooccurrence(users, items, 12, window, chunk_pairs=7).toarray()
        np.testing.assert_array_equal(got, brute_cooccurrence(timelines, 12, window))
    # a window longer than every timeline is all pairs
    X = sp.csr_matrix((np.ones(len(items)), (users, items)), shape=(30, 12))
    X.data[:] = 1
    np.testing.assert_array_equal(windowed_cooccurrence(users, items, 12, 100).toarray(), cooccurrence(X).toarray())


def test_pmi_hand_computed():
    # items 0, 1, 2: C01 = 2, C02 = 1, C12 = 1 (symmetric)
    C = sp.csr_matrix(np.array([[0, 2, 1], [2, 0, 1], [1, 1, 0]], dtype=np.float32))
    totals = np.array([3.0, 3.0, 2.0])
    alpha = 0.75
    norm = (totals**alpha).sum()
    expected01 = math.log(2 * norm / (3 * 3**alpha))
    expected12 = math.log(1 * norm / (3 * 2**alpha))
    expected21 = math.log(1 * norm / (2 * 3**alpha))
    M = pmi(C, alpha=alpha, positive=False).toarray()
    assert M[0, 1] == pytest.approx(expected01, rel=1e-6)
    assert M[1, 2] == pytest.approx(expected12, rel=1e-6)
    assert M[2, 1] == pytest.approx(expected21, rel=1e-6)  # context smoothing makes PMI asymmetric
    assert M[0, 0] == 0  # unobserved pairs stay empty
    # alpha = 1 is the unsmoothed PMI: log(C_ij · T / (c_i c_j)), symmetric
    plain = pmi(C, alpha=1.0, positive=False).toarray()
    assert plain[0, 1] == pytest.approx(math.log(2 * 8 / 9), rel=1e-6)
    np.testing.assert_allclose(plain, plain.T, rtol=1e-6)
    # shifted positive PMI: log(k) subtracted, negatives clipped
    sppmi = pmi(C, alpha=alpha, shift=2.0).toarray()
    assert sppmi[0, 1] == pytest.approx(max(expected01 - math.log(2), 0), rel=1e-6)
    assert (sppmi >= 0).all()


def test_filter_items():
    C = sp.csr_matrix(np.array([[0, 5, 1], [5, 0, 0], [1, 0, 0]], dtype=np.float32))
    out, keep = filter_items(C, min_count=2)
    assert keep.tolist() == [True, True, False]
    assert out.toarray().tolist() == [[0, 5, 0], [5, 0, 0], [0, 0, 0]]


def test_randomized_svd_recovers_planted_low_rank():
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((300, 5)))
    V, _ = np.linalg.qr(rng.standard_normal((300, 5)))
    S = np.array([50.0, 30.0, 20.0, 10.0, 5.0])
    M = sp.csr_matrix((U * S) @ V.T)
    emb, singular = item_embeddings(M, dim=5, power=1.0, normalize=False, random_state=0)
    np.testing.assert_allclose(singular, S, rtol=1e-4)
    # same column space: the projection of the true U onto the recovered one is complete
    Q, _ = np.linalg.qr(emb)
    np.testing.assert_allclose(np.linalg.svd(Q.T @ U, compute_uv=False), 1.0, atol=1e-4)
    normed, _ = item_embeddings(M, dim=5, random_state=0)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)


def test_pretrain_pipeline_and_artifact(tmp_path):
    X = random_binary(200, 50, 0.1, seed=3)
    emb = pretrain(X, PretrainConfig(dim=8, seed=1))
    again = pretrain(X, PretrainConfig(dim=8, seed=1))
    np.testing.assert_array_equal(emb.vectors, again.vectors)  # seeded
    assert emb.vectors.shape == (50, 8) and emb.item_counts.sum() == X.nnz
    emb.save(tmp_path / "emb")
    back = ItemEmbeddings.load(tmp_path / "emb")
    np.testing.assert_array_equal(back.vectors, emb.vectors)
    assert back.config == emb.config
    with pytest.raises(ValueError, match="window"):
        pretrain(X, PretrainConfig(dim=8, window=3))


def test_pretrain_dataset_orders_timelines_and_keeps_to_the_protocols_training_users(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ledrec.data.load import load_dataset, load_prepared
    from ledrec.pretrain.dataset import training_events

    log = {"user": ["b", "a", "b", "a", "a"], "item": ["x", "y", "z", "x", "z"], "timestamp": [3, 2, 1, 0, 4]}
    pq.write_table(pa.table(log), tmp_path / "events.parquet")
    X, ids, users, items = training_events(str(tmp_path / "events.parquet"))
    vocab = load_dataset(str(tmp_path / "events.parquet")).parts["all"]
    assert np.all(np.diff(users) >= 0)  # by user ...
    timelines = {vocab.users.ids[u]: vocab.items.ids[items[users == u]].tolist() for u in np.unique(users)}
    assert timelines == {"a": ["x", "y", "z"], "b": ["z", "x"]}  # ... then time
    assert X.shape == (2, 3) and X.nnz == 5 and sorted(ids) == ["x", "y", "z"]
    spec = "synthetic:n_users=150,n_items=60,n_topics=3"
    emb = pretrain_dataset(spec, PretrainConfig(dim=4, window=2), feedback=["view"], progress=False)
    assert emb.vectors.shape == (60, 4) and emb.config.window == 2
    train = load_prepared(spec, "strong", seed=1).fit_test
    X, _, users, _ = training_events(spec, protocol="strong", seed=1)
    assert (X != train).nnz == 0 and len(users) == train.nnz  # the protocol's training users only
    with pytest.raises(DataError, match="--window needs time-ordered raw events"):
        pretrain_dataset(spec, PretrainConfig(dim=4, window=2), protocol="strong")


def test_embeddings_align_to_another_vocabulary():
    emb = ItemEmbeddings(
        vectors=np.arange(6, dtype=np.float32).reshape(3, 2),
        singular_values=np.ones(2, np.float32),
        item_counts=np.array([5, 6, 7]),
        config=PretrainConfig(dim=2),
        item_ids=np.array(["a", "b", "c"]),
    )
    aligned = emb.aligned_to(np.array(["c", "x", "a"]), 3)
    np.testing.assert_array_equal(aligned.vectors, [[4, 5], [0, 0], [0, 1]])
    assert aligned.item_counts.tolist() == [7, 0, 5]
    assert aligned.stats["aligned_items_found"] == 2
    with pytest.raises(ValueError, match="no ids to align"):
        ItemEmbeddings(emb.vectors, emb.singular_values, emb.item_counts, emb.config).aligned_to(None, 4)
