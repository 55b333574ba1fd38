"""The Similar call: the k items of a catalogue most alike to an item, by the cosine of the model's
similarity vectors — the same answer as the fitted model's ``similar_items``, exact below ``exact_below`` and
close to it from a graph, on both fronts; refusals with the right codes."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import scipy.sparse as sp

from ledrec.export.mips import ServingModel, from_model
from ledrec.serve import ledrec_pb2, native
from ledrec.serve.retriever import NotServedError, RequestError, Retriever, RetrieverConfig, UnknownItemError
from ledrec.similarity import exact_similar
from tests.serve.conftest import Running, toy_model


def exact_answer(model: ServingModel, partition: str, item: int, k: int) -> list[str]:
    top, _ = exact_similar(model.similarity, item, k, model.partitions[partition])
    return model.item_ids[top].tolist()


def test_the_served_answer_is_the_exact_cosine_ranking_of_the_catalogue():
    model = toy_model()
    retriever = Retriever(model, RetrieverConfig(exact_below=10_000))
    for item in (0, 5, 260, 399):  # 399 is only in "de": asked about in "fr" all the same
        got = retriever.similar("fr", f"i{item}", 10)
        assert got.item_ids == exact_answer(model, "fr", item, 10)
        assert f"i{item}" not in got.item_ids
        assert set(model.indices(np.array(got.item_ids))) <= set(model.partitions["fr"].tolist())
        unit = model.similarity
        want = unit[model.indices(np.array(got.item_ids))] @ unit[item]
        np.testing.assert_allclose(got.scores, want, rtol=1e-5, atol=1e-6)


def test_a_graph_finds_nearly_what_exact_search_finds():
    model = toy_model(n_items=6000, dim=16)
    retriever = Retriever(model, RetrieverConfig(exact_below=0))
    assert retriever.similar_indexes["fr"].kind == "hnswlib"
    recalls = []
    for item in range(0, 300, 15):
        got = retriever.similar("fr", f"i{item}", 10).item_ids
        recalls.append(len(set(got) & set(exact_answer(model, "fr", item, 10))) / 10)
    assert np.mean(recalls) >= 0.9
    assert retriever.self_check()  # Similar is checked too


def test_refusals():
    retriever = Retriever(toy_model(), RetrieverConfig())
    with pytest.raises(UnknownItemError, match="unknown item 'nope'"):
        retriever.similar("fr", "nope", 5)
    with pytest.raises(RequestError, match="k must be in"):
        retriever.similar("fr", "i1", 0)
    with pytest.raises(RequestError, match="unknown partition"):
        retriever.similar("it", "i1", 5)
    with pytest.raises(NotServedError):
        Retriever(toy_model(), RetrieverConfig(similar=False)).similar("fr", "i1", 5)


def test_an_item_without_a_vector_is_alike_to_nothing_and_nothing_is_alike_to_it():
    base = toy_model()
    encoder = base.encoder_vectors.copy()
    encoder[7] = 0.0  # never seen in training
    model = ServingModel(
        base.item_ids, encoder, base.item_vectors, base.item_bias, base.query_map, "mean", base.partitions
    )
    retriever = Retriever(model, RetrieverConfig(exact_below=10_000))
    assert retriever.similar("fr", "i7", 5).item_ids == []
    assert all("i7" not in retriever.similar("fr", f"i{i}", 50).item_ids for i in range(5))


def test_the_fitted_model_and_its_export_answer_alike(tmp_path):
    from ledrec.models.led import LED

    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((300, 120)) < 0.08).astype(np.float32))
    model = LED(variant="spectral", dim=16).fit(X)
    model.item_ids = np.array([f"m{i}" for i in range(120)])
    served = Retriever(from_model(model, model.item_ids), RetrieverConfig(exact_below=10_000))
    for item in ("m0", "m17", "m99"):
        mine = model.similar_items(item, k=10)
        theirs = served.similar("", item, 10)
        assert [i for i, _ in mine] == theirs.item_ids
        np.testing.assert_allclose([s for _, s in mine], theirs.scores, rtol=1e-4, atol=1e-5)


def test_the_grpc_call_on_both_fronts(exports, front):
    running = Running(exports[0], front, retriever=RetrieverConfig(exact_below=10_000))
    try:
        reply = running.stub.Similar(ledrec_pb2.SimilarRequest(partition="fr", item_id="i3", k=10), timeout=10)
        assert [i.item_id for i in reply.items] == exact_answer(toy_model(seed=0), "fr", 3, 10)
        assert reply.model_version
        for request, code in (
            (ledrec_pb2.SimilarRequest(partition="fr", item_id="nope", k=5), grpc.StatusCode.NOT_FOUND),
            (ledrec_pb2.SimilarRequest(partition="fr", item_id="i3", k=0), grpc.StatusCode.INVALID_ARGUMENT),
            (ledrec_pb2.SimilarRequest(partition="xx", item_id="i3", k=5), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.RpcError) as err:
                running.stub.Similar(request, timeout=10)
            assert err.value.code() == code
    finally:
        running.close()


@pytest.mark.skipif(not native.available(), reason=str(native.WHY_NOT))
@pytest.mark.parametrize("exact_below", [0, 10_000], ids=["graph", "exact"])
def test_the_native_call_answers_as_the_python_one_to_the_bit(exact_below):
    retriever = Retriever(toy_model(n_items=3000, dim=16), RetrieverConfig(exact_below=exact_below))
    served = native.load(retriever)  # self-checked, Similar included
    for item in range(0, 3000, 37):
        for partition, k in (("fr", 10), ("de", 25)):
            mine, theirs = retriever.similar(partition, f"i{item}", k), served.similar(partition, f"i{item}", k)
            assert mine.item_ids == theirs.item_ids
            assert np.array_equal(np.float32(mine.scores), np.float32(theirs.scores))
    with pytest.raises(UnknownItemError):
        served.similar("fr", "nope", 5)
    with pytest.raises(RequestError, match="k must be in"):
        served.similar("fr", "i1", 0)


def test_a_server_without_similar_refuses_the_call(exports, front):
    running = Running(exports[0], front, retriever=RetrieverConfig(similar=False))
    try:
        with pytest.raises(grpc.RpcError) as err:
            running.stub.Similar(ledrec_pb2.SimilarRequest(partition="fr", item_id="i3", k=5), timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        running.close()


def test_the_command_answers_by_id_and_by_title_with_metadata(exports, tmp_path, capsys):
    from ledrec.cli import main
    from tests.conftest import ledrec

    model = toy_model(seed=0)
    out = ledrec(capsys, "similar", str(exports[0]), "--item", "i3", "--item", "i260", "--k", "5")
    assert sorted((a["item"], a["partition"]) for a in out["answers"]) == [("i260", "de"), ("i260", "fr"), ("i3", "fr")]
    for answer in out["answers"]:
        index = int(answer["item"][1:])
        assert [r["item"] for r in answer["similar"]] == exact_answer(model, answer["partition"], index, 5)
    meta = tmp_path / "items.csv"
    meta.write_text("item,title,genres\n" + "".join(f"i{i},Film number {i},G{i % 4}|X\n" for i in range(400)))
    out = ledrec(capsys, "similar", str(exports[0]), "--title", "number 17", "--items", str(meta), "--k", "3")
    (answer,) = out["answers"]
    assert answer["item"] == "i17" and answer["title"] == "Film number 17"
    assert [r["title"] for r in answer["similar"]] == [f"Film number {r['item'][1:]}" for r in answer["similar"]]
    assert {"category", "score"} <= set(answer["similar"][0])
    for argv, message in (
        (["--item", "nope"], "does not know this item"),
        (["--title", "number 17"], "--title needs --items"),
        (["--title", "no such film", "--items", str(meta)], "no item of the model has a title"),
        ([], "name an item"),
        (["--item", "i3", "--partition", "it"], "--partition 'it'"),
    ):
        capsys.readouterr()
        assert main(["similar", str(exports[0]), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_the_spectral_closed_form_serves_its_own_similarity_table(tmp_path):
    """LED's closed form answers by its graph's co-occurrence profile (rows of V Σ²), kept by model.save,
    carried by the export (part of its version) and by a run directory served as it is."""
    from ledrec.models.led import LED

    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((300, 120)) < 0.08).astype(np.float32))
    model = LED(variant="spectral", dim=16).fit(X)
    model.item_ids = np.array([f"m{i}" for i in range(120)])
    table = model.similarity_table_
    assert table.shape == (120, 16) and np.allclose(np.linalg.norm(table[X.getnnz(axis=0) > 0], axis=1), 1)
    model.save(tmp_path / "saved")
    export = from_model(model, model.item_ids)
    for served in (export, ServingModel.from_run(tmp_path / "saved")):
        np.testing.assert_array_equal(served.similarity_table, table)
        np.testing.assert_allclose(served.similarity, table, atol=1e-6)
    export.save(tmp_path / "export")
    again = ServingModel.load(tmp_path / "export")
    np.testing.assert_array_equal(again.similarity_table, table)
    import dataclasses

    assert dataclasses.replace(export, similarity_table=None).version != export.version  # part of what is served
    assert [i for i, _ in model.similar_items("m5", k=5)] == exact_answer(again, "", 5, 5)
