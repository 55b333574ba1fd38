"""The chaos suite: its oracle catches each kind of wrong answer, its requests get the codes they deserve, and
a short run over loopback passes (the full one is `ledrec bench chaos`, figures in the README)."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.bench.chaos import ChaosConfig, Oracle, hostile_requests, run_chaos
from ledrec.serve import ledrec_pb2
from ledrec.serve.retriever import Retriever
from tests.serve.conftest import toy_model


@pytest.fixture(scope="module")
def setup():
    model = toy_model()
    config = ChaosConfig(export="", out="", exact_below=0)
    retriever = Retriever(model, config.retriever())  # the settings the oracle expects answers from
    return model, Oracle([model], config), retriever


def answer(retriever: Retriever, request: ledrec_pb2.RecommendRequest) -> ledrec_pb2.RecommendResponse:
    rec = retriever.recommend(
        request.partition, request.item_ids, request.k, request.exclude_seen, request.allowed_item_ids or None
    )
    return ledrec_pb2.RecommendResponse(
        items=[ledrec_pb2.ScoredItem(item_id=i, score=s) for i, s in zip(rec.item_ids, rec.scores, strict=True)],
        model_version=retriever.version,
        unknown_items=rec.unknown_items,
        cold_start=rec.cold_start,
    )


def test_the_oracle_accepts_right_answers_and_catches_each_wrong_one(setup):
    _, oracle, retriever = setup
    request = ledrec_pb2.RecommendRequest(partition="fr", item_ids=["i1", "i2", "nope"], k=10, exclude_seen=True)
    right = answer(retriever, request)
    assert oracle.check(request, right)[0] is None
    cold = ledrec_pb2.RecommendRequest(partition="de", item_ids=["??"], k=5)
    assert oracle.check(cold, answer(retriever, cold))[0] is None
    allowed = ledrec_pb2.RecommendRequest(partition="fr", item_ids=["i1"], k=3, allowed_item_ids=["i5", "i6", "i350"])
    assert oracle.check(allowed, answer(retriever, allowed))[0] is None

    def broken(edit) -> str | None:
        wrong = ledrec_pb2.RecommendResponse()
        wrong.CopyFrom(right)
        edit(wrong)
        return oracle.check(request, wrong)[0]

    assert "model_version" in broken(lambda r: setattr(r, "model_version", "somebody else"))
    assert "unknown_items" in broken(lambda r: setattr(r, "unknown_items", 0))
    assert "cold_start" in broken(lambda r: setattr(r, "cold_start", True))
    assert "outside" in broken(lambda r: setattr(r.items[3], "item_id", "i350"))  # another catalogue's item
    assert "outside" in broken(lambda r: setattr(r.items[3], "item_id", "i1"))  # the history, excluded
    assert "twice" in broken(lambda r: setattr(r.items[3], "item_id", r.items[2].item_id))
    assert "scores" in broken(lambda r: setattr(r.items[0], "score", r.items[0].score + 0.5))
    assert "items" in broken(lambda r: r.items.pop())
    assert "does not have" in broken(lambda r: setattr(r.items[0], "item_id", "ghost"))

    def swapped(r):  # the right items, the right scores, in the wrong order
        a, b = r.items[0].item_id, r.items[1].item_id
        sa, sb = r.items[0].score, r.items[1].score
        r.items[0].item_id, r.items[0].score, r.items[1].item_id, r.items[1].score = b, sb, a, sa

    assert "order" in broken(swapped)
    not_top = ledrec_pb2.RecommendResponse()
    not_top.CopyFrom(answer(retriever, allowed))
    not_top.items[0].item_id, not_top.items[0].score = "i6", not_top.items[1].score  # (exact path: allowed list)
    assert oracle.check(allowed, not_top)[0] is not None


def test_hostile_requests_are_seeded_and_their_codes_are_what_the_service_must_answer(setup):
    model, oracle, _ = setup
    first = hostile_requests(model, 400, seed=3)
    assert first == hostile_requests(model, 400, seed=3)
    expected = {}
    for kind, raw in first:
        expected.setdefault(kind, set()).add(oracle.expected_code(raw, model.partitions)[0])
    assert expected["valid"] == {"OK"} and expected["unknown fields"] == {"OK"}
    assert expected["k out of range"] == {"INVALID_ARGUMENT"} and expected["unknown partition"] == {"INVALID_ARGUMENT"}
    assert expected["invalid utf-8"] == {"INVALID_ARGUMENT"} and expected["history too long"] == {"INVALID_ARGUMENT"}
    assert "INVALID_ARGUMENT" in expected["random bytes"] and "INVALID_ARGUMENT" in expected["truncated"]
    assert expected["oversize"] <= {"INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"}
    assert len(expected) == 15  # every kind drawn


@pytest.mark.slow
def test_a_short_chaos_run_passes(tmp_path, front):
    """Every phase of `ledrec bench chaos` on a small export with three catalogues searched by graphs (≤ 60 s
    on 2 cores), on each front: 0 wrong answers, 0 crashes, 0 lost requests."""
    from ledrec.bench.serve import synthetic_export

    synthetic_export(tmp_path / "export", 3000, 16, seed=0)
    config = ChaosConfig(
        export=str(tmp_path / "export"),
        out=str(tmp_path / "chaos"),
        requests=1000,
        drain_requests=300,
        exact_below=1000,
        front=front,
    )
    result = run_chaos(config, progress=False)
    assert result["front"] == front
    failed = [r for r in result["rows"] if r["wrong"] or r["lost"] or r["crashes"]]
    assert result["ok"] and not failed, failed
    by_phase = {r["phase"]: r for r in result["rows"]}
    assert by_phase["hostile requests (1,000, seeded)"]["codes"]["INVALID_ARGUMENT"] > 100
    assert by_phase["SIGTERM drain (300 slow requests)"]["codes"] == {"OK": 300}
    assert np.mean([r["recall"] for r in result["rows"] if r["recall"] is not None]) > 0.9
