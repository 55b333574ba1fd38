"""Fold-in of new items: known answers on a clustered catalogue, the old rows untouched, the bias from early
popularity, the norm bound that keeps a graph extensible, and a graph extended equal to one rebuilt."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.data.interactions import DataError, Interactions
from ledrec.export.foldin import fold_in
from ledrec.export.mips import ServingModel
from ledrec.serve.loading import load_retriever
from ledrec.serve.retriever import RetrieverConfig, extend_cached_graph


def clustered_model(n_clusters: int = 4, per_cluster: int = 50, dim: int = 8, seed: int = 0) -> ServingModel:
    """Items of cluster c have vectors near direction e_c; biases rise with the item's number."""
    rng = np.random.default_rng(seed)
    n = n_clusters * per_cluster
    cluster = np.arange(n) // per_cluster
    vectors = (3 * np.eye(dim, dtype=np.float32)[cluster] + 0.1 * rng.normal(size=(n, dim))).astype(np.float32)
    bias = np.linspace(-3, -1, n).astype(np.float32)
    return ServingModel(np.array([f"i{i}" for i in range(n)]), vectors, vectors, bias, np.eye(dim, dtype=np.float32))


def recent_events(new_in_cluster: dict[str, int], per_cluster: int = 50, users: int = 40, seed: int = 0):
    """Users who each view 5 items of one cluster; the new items are viewed by users of their cluster."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        c = u % 4
        for i in rng.choice(per_cluster, size=5, replace=False):
            rows.append((f"u{u}", f"i{c * per_cluster + i}"))
        for item, cluster in new_in_cluster.items():
            if cluster == c and u < 30:
                rows.append((f"u{u}", item))
    users_, items = zip(*rows, strict=True)
    return Interactions.from_events(list(users_), list(items))


def test_a_new_item_lands_in_the_cluster_of_its_users():
    model = clustered_model()
    result = fold_in(model, recent_events({"new-a": 2, "new-b": 0}))
    assert sorted(result.new_items.tolist()) == ["new-a", "new-b"]
    folded = result.model
    n = len(model.item_ids)
    np.testing.assert_array_equal(folded.item_vectors[:n], model.item_vectors)  # old rows untouched
    np.testing.assert_array_equal(folded.item_bias[:n], model.item_bias)
    row = {name: n + k for k, name in enumerate(folded.item_ids[n:].tolist())}
    assert np.argmax(folded.item_vectors[row["new-a"]]) == 2 and np.argmax(folded.item_vectors[row["new-b"]]) == 0
    # the bias reads the known items' bias-vs-popularity line at the new item's early count
    assert model.item_bias.min() <= folded.item_bias[row["new-a"]] <= model.item_bias.max()
    # a user of cluster 2 gets new-a before new-b, and above most of the catalogue
    q = folded.user_vector(folded.indices(np.array(["i100", "i101", "i102"])))
    scores = folded.scores(q)
    assert scores[row["new-a"]] > scores[row["new-b"]]
    assert result.stats["scale"] > 0 and result.stats["new_items"] == 2


def test_popularity_method_and_thresholds():
    model = clustered_model()
    events = recent_events({"new-a": 2, "rare": 1})
    popular = fold_in(model, events, method="popularity")
    n = len(model.item_ids)
    assert np.all(popular.model.item_vectors[n:] == 0)  # ranked by bias alone
    # "rare" has 8 users too; with min_users above that it is left out
    assert set(fold_in(model, events, min_users=50).new_items) == set()
    with pytest.raises(DataError, match="method"):
        fold_in(model, events, method="magic")


def test_added_rows_never_exceed_the_catalogues_longest():
    model = clustered_model()
    result = fold_in(model, recent_events({"new-a": 2}))
    norms = np.linalg.norm(result.model.mips_items(), axis=1)
    assert norms[len(model.item_ids) :].max() <= norms[: len(model.item_ids)].max()


def test_an_extended_graph_serves_like_a_rebuilt_one(tmp_path):
    model = clustered_model(per_cluster=300)
    config = RetrieverConfig(exact_below=0)
    model.save(tmp_path / "old")
    load_retriever(tmp_path / "old", config)  # builds and caches the graph
    folded = fold_in(model, recent_events({"new-a": 2, "new-b": 3}, per_cluster=300)).model
    folded.save(tmp_path / "new")
    (tmp_path / "new" / "index-cache").mkdir()
    how = extend_cached_graph(model, folded, "", config, tmp_path / "old/index-cache", tmp_path / "new/index-cache")
    assert how == "extended"
    extended = load_retriever(tmp_path / "new", config)  # verifies the graph and self-checks
    assert extended.cache_events[""] == "hit"
    history = ["i600", "i601", "i602"]
    answer = extended.recommend("", history, 10)
    exact = folded.scores(folded.user_vector(folded.indices(np.array(history))))
    exact[folded.indices(np.array(history))] = -np.inf
    truth = folded.item_ids[np.argsort(-exact)[:10]].tolist()
    assert len(set(answer.item_ids) & set(truth)) >= 9
    # a model that is not an extension of the old one is refused, not patched
    other = clustered_model(seed=1, per_cluster=300)
    assert extend_cached_graph(model, other, "", config, tmp_path / "old/index-cache", tmp_path) != "extended"


def test_an_own_similarity_table_grows_with_zero_rows_for_the_new_items(tmp_path):
    import dataclasses

    base = clustered_model()
    table = np.eye(4, dtype=np.float32)[np.arange(len(base.item_ids)) // 50]  # the cluster, as a similarity
    model = dataclasses.replace(base, similarity_table=table)
    folded = fold_in(model, recent_events({"new-a": 2})).model
    folded.validate()
    assert folded.similarity_table.shape == (len(folded.item_ids), 4)
    np.testing.assert_array_equal(folded.similarity_table[: len(base.item_ids)], table)
    assert not folded.similarity[-1].any()  # alike to nothing until the next retrain
    folded.save(tmp_path / "folded")
    assert ServingModel.load(tmp_path / "folded").version == folded.version
