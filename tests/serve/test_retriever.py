"""The request path: catalogues never leak, exclusions, cold start, allowed lists, refusals, ANN ≈ exact."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.export.mips import ServingModel
from ledrec.serve.retriever import RequestError, Retriever, RetrieverConfig


def toy_model(n_items: int = 400, dim: int = 8, seed: int = 0) -> ServingModel:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n_items, dim)).astype(np.float32)
    return ServingModel(
        item_ids=np.array([f"i{i}" for i in range(n_items)]),
        encoder_vectors=vectors,
        item_vectors=vectors,
        item_bias=rng.normal(size=n_items).astype(np.float32),
        query_map=np.eye(dim, dtype=np.float32),
        partitions={"fr": np.arange(0, 300), "de": np.arange(250, 400)},  # 50 items in both
    )


@pytest.fixture(scope="module")
def retriever():
    return Retriever(toy_model(), RetrieverConfig(exact_below=0, index_params={"M": 16, "ef_search": 200}))


def test_answers_stay_in_the_requested_partition(retriever):
    for partition, allowed in (("fr", range(0, 300)), ("de", range(250, 400))):
        rec = retriever.recommend(partition, ["i1", "i260", "i399"], k=50)
        assert len(rec.item_ids) == 50
        assert all(int(i[1:]) in allowed for i in rec.item_ids)
        assert rec.scores == sorted(rec.scores, reverse=True)


def test_exclude_seen_and_the_exact_scores(retriever):
    model = retriever.model
    history = ["i3", "i7", "i11"]
    rec = retriever.recommend("fr", history, k=20, exclude_seen=True)
    assert not set(rec.item_ids) & set(history)
    query = model.user_vector(np.array([3, 7, 11]))
    exact = model.scores(query)
    exact[[3, 7, 11]] = -np.inf
    exact[300:] = -np.inf
    top = [f"i{i}" for i in np.argsort(-exact, kind="stable")[:20]]
    assert len(set(rec.item_ids) & set(top)) >= 19  # ANN at ef 200 on 300 items: (almost) exact
    np.testing.assert_allclose(rec.scores, [exact[int(i[1:])] for i in rec.item_ids], rtol=1e-5)
    with_seen = retriever.recommend("fr", history, k=400, exclude_seen=False)
    assert set(history) <= set(with_seen.item_ids)


def test_cold_start_is_the_highest_bias_items_of_the_partition(retriever):
    bias = retriever.model.item_bias
    for ids in ([], ["unknown-1", "unknown-2"]):
        rec = retriever.recommend("de", ids, k=5)
        assert rec.cold_start and rec.unknown_items == len(ids)
        expected = 250 + np.argsort(-bias[250:400], kind="stable")[:5]
        assert rec.item_ids == [f"i{i}" for i in expected]


def test_allowed_list_is_respected_and_intersected_with_the_partition(retriever):
    rec = retriever.recommend("fr", ["i1"], k=10, allowed_item_ids=["i5", "i6", "i350", "zzz"])
    assert set(rec.item_ids) == {"i5", "i6"}  # i350 belongs to "de" only


def test_unknown_ids_are_ignored_and_counted(retriever):
    rec = retriever.recommend("fr", ["i1", "nope", "i2"], k=3)
    assert rec.unknown_items == 1 and not rec.cold_start


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "k must be"),
        ({"k": 1001}, "k must be"),
        ({"partition": "xx"}, "unknown partition"),
        ({"item_ids": ["i1"] * 1001}, "at most 1000"),
    ],
)
def test_invalid_requests_are_refused(retriever, kwargs, message):
    request = {"partition": "fr", "item_ids": ["i1"], "k": 10, **kwargs}
    with pytest.raises(RequestError, match=message):
        retriever.recommend(**request)


def test_small_catalogues_use_the_exact_index():
    r = Retriever(toy_model(), RetrieverConfig(exact_below=1000))
    assert {type(i).__name__ for i in r.indexes.values()} == {"ExactIndex"}


def test_graphs_are_cached_per_model_version(tmp_path):
    config = RetrieverConfig(exact_below=0, cache_dir=str(tmp_path), index_params={"M": 8})
    first = Retriever(toy_model(seed=0), config)
    files = sorted(tmp_path.glob("hnsw-*.bin"))
    assert len(files) == 2  # one graph per partition
    stamps = [f.stat().st_mtime_ns for f in files]
    again = Retriever(toy_model(seed=0), config)  # loads, does not rebuild
    assert [f.stat().st_mtime_ns for f in files] == stamps
    request = ("fr", ["i1", "i2"], 10)
    assert again.recommend(*request).item_ids == first.recommend(*request).item_ids
    Retriever(toy_model(seed=1), config)  # another model: its own graphs
    assert len(list(tmp_path.glob("hnsw-*.bin"))) == 4
