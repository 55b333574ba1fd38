"""Pre-training on a real Spark session (local[2]) against the single-machine path on the same data."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledrec.pretrain import PretrainConfig, pretrain
from ledrec.pretrain.cooccurrence import windowed_cooccurrence
from ledrec.pretrain.pmi import pmi
from tests.conftest import planted_clusters

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java (Debian: default-jre-headless)", allow_module_level=True)

from ledrec.pretrain.spark import (
    cooccurrence_pairs,
    pmi_entries,
    principal_angle_cosines,
    spark_pretrain,
    spark_session,
)

pytestmark = pytest.mark.slow  # a Spark session starts in ~20 s; the equalities take 40 s more


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", driver_memory="1g")
    yield session
    session.stop()


def events(seed: int = 0, n_users: int = 300, n_items: int = 80):
    """Time-ordered events (users sorted, repeats allowed) with a planted cluster structure."""
    X = planted_clusters(n_users=n_users, n_items=n_items, n_clusters=4, items_per_user=10, seed=seed)
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        seq = rng.permutation(X[u].indices)
        seq = np.concatenate([seq, seq[:2]])  # a repeat or two, as real timelines have
        users += [u] * len(seq)
        items += seq.tolist()
    return np.array(users), np.array(items), X


def write(tmp_path, users, items):
    path = str(tmp_path / "events.parquet")
    table = pa.table({"user": users, "item": items, "timestamp": np.arange(len(users))})
    pq.write_table(table, path)
    return path


def dense(df, n):
    out = np.zeros((n, n))
    for i, j, v in df.collect():
        out[i, j] = v
    return out


@pytest.mark.parametrize("window", [None, 3])
def test_cooccurrence_and_pmi_equal_the_single_machine_values(spark, tmp_path, window):
    users, items, X = events()
    n = X.shape[1]
    df = spark.read.parquet(write(tmp_path, users, items))
    pairs = cooccurrence_pairs(df, window)
    if window is None:
        expected_C = (X.T @ X).toarray()
        np.fill_diagonal(expected_C, 0)
    else:
        expected_C = windowed_cooccurrence(users, items, n, window).toarray()
    np.testing.assert_array_equal(dense(pairs, n), expected_C)
    config = PretrainConfig(alpha=0.75, shift=2.0)
    expected_pmi = pmi(expected_C, alpha=0.75, shift=2.0).toarray()
    np.testing.assert_allclose(dense(pmi_entries(pairs, config), n), expected_pmi, rtol=1e-5, atol=1e-6)


def test_embeddings_span_the_single_machine_subspace(spark, tmp_path):
    users, items, X = events(seed=1)
    config = PretrainConfig(dim=8, normalize=False)
    single = pretrain(X, config)
    distributed = spark_pretrain(spark, write(tmp_path, users, items), X.shape[1], config)
    assert distributed.vectors.shape == single.vectors.shape
    cosines = principal_angle_cosines(single.vectors, distributed.vectors)
    assert cosines.mean() >= 0.99, cosines
    np.testing.assert_allclose(distributed.singular_values, single.singular_values, rtol=1e-3)
    np.testing.assert_array_equal(distributed.item_counts, single.item_counts)
