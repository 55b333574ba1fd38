"""The request path: catalogues never leak, exclusions, cold start, allowed lists, refusals, ANN ≈ exact."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ledrec.io import sha256_file
from ledrec.serve.retriever import RequestError, Retriever, RetrieverConfig, SelfCheckError
from tests.serve.conftest import exact_top, recall_vs_exact, toy_model


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


def test_graphs_are_cached_per_model_content(tmp_path):
    config = RetrieverConfig(exact_below=0, cache_dir=str(tmp_path), index_params={"M": 8}, similar=False)
    first = Retriever(toy_model(seed=0), config)
    files = sorted(tmp_path.glob("hnsw-*.bin"))
    assert len(files) == 2 and set(first.cache_events.values()) == {"built"}  # one graph per partition
    stamps = [f.stat().st_mtime_ns for f in files]
    again = Retriever(toy_model(seed=0), config)  # loads, does not rebuild
    assert [f.stat().st_mtime_ns for f in files] == stamps and set(again.cache_events.values()) == {"hit"}
    request = ("fr", ["i1", "i2"], 10)
    assert again.recommend(*request).item_ids == first.recommend(*request).item_ids
    wider = Retriever(toy_model(seed=0), replace(config, index_params={"M": 8, "ef_search": 300}))
    assert set(wider.cache_events.values()) == {"hit"}  # another --ef searches the same graph: no rebuild
    assert wider.indexes["fr"].ef_search == 300 and wider.version != again.version  # (other answers: other version)
    other = Retriever(toy_model(seed=1), config)  # another model: its own graphs, the old ones dropped
    assert set(other.cache_events.values()) == {"built"}
    assert len(list(tmp_path.glob("hnsw-*.bin"))) == 2 and not set(files) & set(tmp_path.glob("hnsw-*.bin"))


def test_the_similar_call_s_graphs_are_cached_beside_them(tmp_path):
    config = RetrieverConfig(exact_below=0, cache_dir=str(tmp_path), index_params={"M": 8})
    first = Retriever(toy_model(seed=0), config)
    assert first.cache_events == dict.fromkeys(["fr", "de", "fr (similar)", "de (similar)"], "built")
    assert len(list(tmp_path.glob("hnsw-*.bin"))) == 4
    again = Retriever(toy_model(seed=0), config)
    assert set(again.cache_events.values()) == {"hit"}
    assert again.similar("fr", "i3", 10).item_ids == first.similar("fr", "i3", 10).item_ids
    Retriever(toy_model(seed=1), config)  # another model: the old four dropped, the similar ones too
    assert len(list(tmp_path.glob("hnsw-*.bin"))) == 4


def test_catalogue_membership_is_part_of_the_version_and_of_the_graph_key(tmp_path):
    """Re-exporting a model with other members under the same partition names must not reuse the graphs
    (it did: same model_version, recall@20 against exact fell from .996 to .07)."""
    config = RetrieverConfig(exact_below=0, cache_dir=str(tmp_path), index_params={"M": 8})
    before = toy_model()
    Retriever(before, config)
    after = replace(toy_model(), partitions={"fr": np.arange(100, 400), "de": np.arange(0, 150)})  # same names
    assert after.version != before.version
    retriever = Retriever(after, config)
    assert set(retriever.cache_events.values()) == {"built"}
    assert recall_vs_exact(retriever, "fr") > 0.9 and recall_vs_exact(retriever, "de") > 0.9


def test_a_corrupted_cached_graph_is_rebuilt_not_served(tmp_path):
    config = RetrieverConfig(exact_below=0, cache_dir=str(tmp_path), index_params={"M": 8})
    Retriever(toy_model(), config)
    for graph in tmp_path.glob("hnsw-*.bin"):
        data = bytearray(graph.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte
        graph.write_bytes(bytes(data))
    retriever = Retriever(toy_model(), config)
    assert all(e.startswith("rebuilt: ") and "sha256" in e for e in retriever.cache_events.values())
    assert recall_vs_exact(retriever, "fr") > 0.9
    assert set(Retriever(toy_model(), config).cache_events.values()) == {"hit"}  # the rebuilt graph is cached


def test_a_cached_graph_of_other_vectors_fails_the_self_check_and_is_rebuilt(tmp_path):
    """A graph whose checksum verifies but that indexes other vectors (copied over by hand, sidecar too)."""
    config = RetrieverConfig(exact_below=0, cache_dir=str(tmp_path / "ours"), index_params={"M": 8})
    Retriever(toy_model(seed=0), config)
    Retriever(
        toy_model(seed=3), RetrieverConfig(exact_below=0, cache_dir=str(tmp_path / "theirs"), index_params={"M": 8})
    )
    by_size = lambda folder: sorted(folder.glob("hnsw-*.bin"), key=lambda p: p.stat().st_size)  # noqa: E731
    for mine, theirs in zip(by_size(tmp_path / "ours"), by_size(tmp_path / "theirs"), strict=True):  # fr↔fr, de↔de
        mine.write_bytes(theirs.read_bytes())
        sidecar = mine.with_suffix(".json")
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "sha256": sha256_file(mine)}))
    retriever = Retriever(toy_model(seed=0), config)
    assert set(retriever.cache_events.values()) == {"hit"}  # it verifies: the file is what its sidecar says
    with pytest.raises(SelfCheckError, match="recall"):
        retriever._check_partition("fr", 10, 0)
    retriever.self_check()  # rebuilds what fails, then passes
    assert all(e.startswith("rebuilt: ") for e in retriever.cache_events.values())
    assert recall_vs_exact(retriever, "fr") > 0.9


def test_the_self_check_refuses_an_index_of_other_vectors():
    model = toy_model(seed=0)
    wrong = Retriever(toy_model(seed=1), RetrieverConfig(exact_below=0, index_params={"M": 8})).indexes
    with pytest.raises(SelfCheckError, match="partition"):
        Retriever(model, RetrieverConfig(exact_below=0), indexes=wrong).self_check()
    Retriever(model, RetrieverConfig(exact_below=0, index_params={"M": 8})).self_check()  # the right one passes


def test_exact_search_masks_the_history_and_matches_the_oracle():
    retriever = Retriever(toy_model(), RetrieverConfig(exact_below=10_000))
    for history in ([1, 2, 3], [5, 5, 299], list(range(0, 295))):
        ids = [f"i{i}" for i in history]
        got = retriever.recommend("fr", ids, 10)
        want = exact_top(retriever.model, "fr", sorted(set(history)), 10)
        assert got.item_ids == want
    everything = retriever.recommend("fr", [f"i{i}" for i in range(300)], 10)  # nothing left to recommend
    assert everything.item_ids == []


def test_a_single_catalogue_needs_no_name_from_the_client():
    model = replace(toy_model(), partitions={"fr": np.arange(0, 300)})
    r = Retriever(model, RetrieverConfig(exact_below=10_000))
    assert r.recommend("", ["i1"], 5).item_ids == r.recommend("fr", ["i1"], 5).item_ids
    with pytest.raises(RequestError, match="unknown partition"):
        Retriever(toy_model(), RetrieverConfig(exact_below=10_000)).recommend("", ["i1"], 5)  # two: it must be named


@pytest.mark.parametrize("init", ["spectral", "svd", "wls"])
def test_the_graph_form_is_chosen_per_model_and_finds_the_exact_answers(init, monkeypatch):
    """The spectral start's decoder rows have degree-scaled norms, which the nearest-neighbour reduction
    searches badly; trained vectors the other way round (tests/pretrain/test_spectral.py, docs/serving.md).
    `form="auto"` picks per catalogue, and the self-check then finds the exact answers."""
    from ledrec.export.mips import from_model
    from ledrec.models.led import LED
    from ledrec.serve.retriever import graph_params
    from tests.conftest import planted_clusters

    train = planted_clusters(n_users=3000, n_items=2000, n_clusters=20, items_per_user=15, seed=0)
    params = {
        "spectral": {"dim": 32},
        "svd": {"dim": 32, "init": "svd", "epochs": 5, "patience": 0},
        "wls": {"dim": 32, "loss": "wls", "epochs": 3},  # ALS's loss in LED's form (the large preset's)
    }[init]
    model = from_model(LED(**params).fit(train), np.array([f"i{i}" for i in range(2000)]))
    # one build thread: hnswlib's multi-threaded build inserts in an order the scheduler decides (on two busy
    # cores this graph once found 75 of 80 exact answers instead of 80)
    config = RetrieverConfig(exact_below=0, index_params={"threads": 1})
    chosen = graph_params(model, "", config)["form"]
    if init != "wls":  # (whichever wls's vectors need: the self-check below holds it to the exact answers)
        assert chosen == ("ip" if init == "spectral" else "nn")
    assert Retriever(model, config).self_check()[""] >= 0.95
    other = RetrieverConfig(exact_below=0, form="nn" if chosen == "ip" else "ip", index_params={"threads": 1})
    assert graph_params(model, "", other)["form"] != chosen  # a given form is kept
    from ledrec.serve import retriever

    monkeypatch.setattr(retriever, "FORMS_KEPT", 1)  # the memo is bounded: the oldest choice goes
    graph_params(model, "", RetrieverConfig(exact_below=0, index_params={"M": 8}))
    assert len(retriever._FORMS) == 1
