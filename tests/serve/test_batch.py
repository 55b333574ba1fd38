"""Batch recommendations (``ledrec recommend``): the service's rules for every user of an event table,
the same rows on one machine and on Spark."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledrec.cli import main
from ledrec.data.interactions import DataError
from ledrec.export.mips import ServingModel
from ledrec.serve.batch import recommend, recommend_on_spark
from ledrec.serve.retriever import Retriever, RetrieverConfig
from tests.conftest import ledrec
from tests.serve.conftest import toy_model


@pytest.fixture()
def export_and_events(tmp_path):
    model = toy_model(seed=0)
    export = tmp_path / "export"
    model.save(export)
    rng = np.random.default_rng(0)
    names = sorted(model.partitions)
    rows = []
    for u in range(60):
        part = names[u % len(names)]
        members = model.item_ids[model.partitions[part]]
        for item in rng.choice(members, size=rng.integers(1, 6)):
            rows.append((f"user{u}", str(item), part))
    rows.append(("user0", "never-seen", names[0]))  # an unknown item: ignored
    rows.append(("cold", "never-seen", names[1]))  # only unknown items: cold start
    user, item, part = map(list, zip(*rows, strict=True))
    events = tmp_path / "events.parquet"
    pq.write_table(pa.table({"user": user, "item": item, "country": part}), events)
    return model, export, events, rows


def test_every_user_gets_the_services_answer(export_and_events, tmp_path):
    model, export, events, rows = export_and_events
    summary = recommend(str(export), str(events), str(tmp_path / "recs.parquet"), k=5, progress=False)
    assert summary["users"] == 61 and summary["unknown_items"] == 2 and summary["cold_start"] == 1
    out = pq.read_table(tmp_path / "recs.parquet")
    assert out.column_names == ["user", "rank", "item", "score", "partition"]
    retriever = Retriever(model, RetrieverConfig(exact_below=10**9))  # exact: the oracle
    history: dict[tuple[str, str], list[str]] = {}
    for user, item, part in rows:
        history.setdefault((user, part), []).append(item)
    got: dict[tuple[str, str], list[dict]] = {}
    for row in out.to_pylist():
        got.setdefault((row["user"], row["partition"]), []).append(row)
    assert set(got) == set(history) and len(history) == 61
    for key, items in history.items():
        answer = sorted(got[key], key=lambda r: r["rank"])
        assert [r["rank"] for r in answer] == list(range(1, len(answer) + 1))
        want = retriever.recommend(key[1], items, 5, exclude_seen=True)
        assert [r["item"] for r in answer] == want.item_ids, key
        np.testing.assert_allclose([r["score"] for r in answer], want.scores, rtol=1e-5, atol=1e-5)


def test_errors_are_clear(export_and_events, tmp_path):
    export = export_and_events[1]
    no_partition = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"user": ["a"], "item": ["i1"]}), no_partition)
    with pytest.raises(DataError, match="no partition column and the model serves"):
        recommend(str(export), str(no_partition), str(tmp_path / "x.parquet"), progress=False)
    with pytest.raises(DataError, match="no such file"):
        recommend(str(export), str(tmp_path / "nope"), str(tmp_path / "x.parquet"), progress=False)


@pytest.fixture()
def large_export_and_events(tmp_path):
    """A catalogue large enough for the service's graph index (hnswlib from 5,000 items)."""
    rng = np.random.default_rng(1)
    n, dim = 6000, 16
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    model = ServingModel(
        np.array([f"i{i}" for i in range(n)]), vectors, vectors, rng.normal(size=n).astype(np.float32),
        np.eye(dim, dtype=np.float32),
    )  # fmt: skip
    export = tmp_path / "large"
    model.save(export)
    users = [f"u{u}" for u in range(200) for _ in range(4)]
    items = [f"i{i}" for i in rng.integers(0, n, len(users))]
    events = tmp_path / "large.parquet"
    pq.write_table(pa.table({"user": users, "item": items}), events)
    return export, events


def test_a_large_catalogue_is_searched_by_the_services_graph(large_export_and_events, tmp_path):
    export, events = large_export_and_events
    summary = recommend(str(export), str(events), str(tmp_path / "ann.parquet"), k=10, progress=False)
    exact = recommend(str(export), str(events), str(tmp_path / "exact.parquet"), k=10, exact=True, progress=False)
    assert summary["users"] == exact["users"] == 200
    ann, truth = (_by_user(pq.read_table(tmp_path / f)) for f in ("ann.parquet", "exact.parquet"))
    recall = np.mean([len(set(ann[u]) & set(truth[u])) / 10 for u in truth])
    assert recall > 0.9  # hnswlib at the service's settings (self-check: >= .5; docs/serving.md: .96-.99)


def _by_user(table):
    out: dict[str, list[str]] = {}
    for row in sorted(table.to_pylist(), key=lambda r: (r["user"], r["rank"])):
        out.setdefault(row["user"], []).append(row["item"])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("which", ["small", "large"])
def test_spark_writes_the_same_rows(which, export_and_events, large_export_and_events, tmp_path):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java: Spark cannot start")
    export, events = export_and_events[1:3] if which == "small" else large_export_and_events
    recommend(str(export), str(events), str(tmp_path / "local.parquet"), k=5, progress=False)
    summary = recommend_on_spark(str(export), str(events), str(tmp_path / "spark"), k=5, chunk_users=7)
    assert summary["users"] == (61 if which == "small" else 200)
    key = lambda r: (r.get("partition", ""), r["user"], r["rank"])  # noqa: E731
    local = sorted(pq.read_table(tmp_path / "local.parquet").to_pylist(), key=key)
    spark = sorted(pq.read_table(tmp_path / "spark").to_pylist(), key=key)
    assert [(r["user"], r["item"]) for r in local] == [(r["user"], r["item"]) for r in spark]
    np.testing.assert_allclose([r["score"] for r in local], [r["score"] for r in spark], rtol=1e-6)


def test_items_metadata_is_joined_onto_every_row(export_and_events, tmp_path, capsys):
    model, export, events, _ = export_and_events
    meta = tmp_path / "items.csv"
    lines = [f"{item},Title of {item},cat{k % 3}|other,{k}.5" for k, item in enumerate(model.item_ids[:350])]
    meta.write_text("item_id,title,category,price\n" + "\n".join(lines) + "\n")  # i350… have no metadata
    plain = tmp_path / "plain.parquet"
    recommend(str(export), str(events), str(plain), k=5, progress=False)
    summary = ledrec(
        capsys, "recommend", str(export), "--histories", str(events), "--out", str(tmp_path / "r.parquet"),
        "--k", "5", "--items", str(meta), "--quiet",
    )  # fmt: skip
    assert summary["items"] == str(meta) and summary["items_without_metadata"] == 50  # of "de"
    out = pq.read_table(tmp_path / "r.parquet")
    assert out.column_names == ["user", "rank", "item", "score", "partition", "title", "category", "price"]
    assert out.select(["user", "rank", "item", "score", "partition"]).equals(pq.read_table(plain))
    for row in out.to_pylist():
        k = int(row["item"][1:])
        if k < 350:
            assert row["title"] == f"Title of {row['item']}" and row["price"] == k + 0.5
        else:
            assert row["title"] is None and row["category"] is None and row["price"] is None


def test_bad_items_fail_in_one_line_before_the_model_is_loaded(export_and_events, tmp_path, capsys, monkeypatch):
    import ledrec.serve.batch as batch

    export, events = export_and_events[1:3]
    bad = tmp_path / "items.csv"
    bad.write_text("title,price\nA,1\n")
    monkeypatch.setattr(batch, "retrievers_of", lambda *a, **k: pytest.fail("the model was loaded first"))
    argv = ["recommend", str(export), "--histories", str(events), "--out", str(tmp_path / "r.parquet"), "--quiet"]
    assert main([*argv, "--items", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ledrec recommend: error: {bad}: no item id column") and err.count("\n") == 1
    assert main([*argv, "--items", str(bad), "--engine", "spark"]) == 2
    assert capsys.readouterr().err.startswith("ledrec recommend: error: --items works with --engine local only")
    monkeypatch.undo()
    bad.write_text("item,score\ni1,3\n")  # a column the output already has
    assert main([*argv, "--items", str(bad)]) == 2
    assert "['score'] that the table already has" in capsys.readouterr().err
    assert not (tmp_path / "r.parquet").exists()
