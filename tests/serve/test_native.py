"""The native front answers exactly as the Python front: the same arithmetic to the bit (kernel against
numpy), the same ids and float32 scores over thousands of seeded requests (exclusions, allowed lists, cold
starts, unknown and repeated ids; exact and graph catalogues, both MIPS forms, a projection and a sqrt user
vector), in process and over gRPC; its drain answers a real backlog; its metrics carry the Python front's
names. Skipped, with the reason, where the native front is not built (scripts/build_native.sh)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import grpc
import numpy as np
import pytest

from ledrec.export.mips import ServingModel
from ledrec.index.base import canonical_dot, exact_top
from ledrec.serve import ledrec_pb2, native
from ledrec.serve.retriever import RequestError, Retriever, RetrieverConfig
from tests.serve.conftest import DEADLINE, Running, scrape, toy_model, wait_for

pytestmark = pytest.mark.skipif(not native.available(), reason=native.WHY_NOT or "")


def bits(values) -> list[int]:
    return np.asarray(values, dtype=np.float32).view(np.int32).tolist()


def test_the_kernel_is_numpys_arithmetic_to_the_bit():
    from ledrec.serve import _native

    rng = np.random.default_rng(0)
    for width in [*range(1, 140), 257, 513, 1025]:  # every branch of numpy's pairwise sum
        rows = rng.normal(size=(5, width)).astype(np.float32)
        query = rng.normal(size=width).astype(np.float32)
        assert bits(_native.canonical_dot(rows, query)) == bits(canonical_dot(rows, query)), width
    for dim in (1, 2, 8, 100, 129):
        encoder = rng.normal(size=(1200, dim)).astype(np.float32)
        for length in (1, 2, 9, 17, 300, 1000):
            items = rng.choice(1200, length, replace=False)
            for query_map in (None, rng.normal(size=(dim, dim)).astype(np.float32)):
                for reduce in ("mean", "sqrt"):
                    model = ServingModel(
                        item_ids=np.arange(1200).astype(str),
                        encoder_vectors=encoder,
                        item_vectors=encoder,
                        item_bias=np.zeros(1200, np.float32),
                        query_map=np.eye(dim, dtype=np.float32) if query_map is None else query_map,
                        reduce=reduce,
                    )
                    want = model.user_vector(items)
                    qmap = None if query_map is None else query_map.astype(np.float64)
                    assert bits(_native.user_vector(encoder, items.tolist(), reduce == "mean", qmap)) == bits(want)


def test_exact_top_is_every_row_scored():
    rng = np.random.default_rng(1)
    for trial in range(200):
        n, width = int(rng.integers(1, 300)), int(rng.integers(1, 40))
        rows = rng.normal(size=(n, width)).astype(np.float32)
        if trial % 3 == 0:
            rows[rng.integers(0, n, n // 2)] = rows[0]  # ties
        query = rng.normal(size=width).astype(np.float32)
        exclude = np.unique(rng.integers(0, n, int(rng.integers(0, n // 2 + 1))))
        k = int(rng.integers(1, n + 3))
        got, scores = exact_top(rows, query, k, exclude)
        full = canonical_dot(rows, query)
        full[exclude] = -np.inf
        order = np.argsort(-full, kind="stable")[: min(k, n - len(exclude))]
        assert got.tolist() == order.tolist() and bits(scores) == bits(full[order])


def models() -> list[tuple[str, ServingModel, RetrieverConfig]]:
    """Catalogues searched exactly and by graph (both forms), a projection, a sqrt reduction, 90 shared
    items between two catalogues."""
    rng = np.random.default_rng(7)
    base = toy_model(n_items=3000, dim=16, seed=3)
    parts = {"fr": np.arange(0, 2000), "de": np.arange(1910, 3000), "it": np.arange(2900, 3000)}
    projected = replace(
        base,
        partitions=parts,
        query_map=(np.eye(16) + 0.1 * rng.normal(size=(16, 16))).astype(np.float32),
        reduce="sqrt",
    )
    graph = RetrieverConfig(exact_below=500, index_params={"M": 12})  # fr, de: graphs; it: exact
    return [
        ("exact", replace(base, partitions=parts), RetrieverConfig(exact_below=10_000)),
        ("graph-ip", replace(base, partitions=parts), replace(graph, form="ip")),
        ("graph-nn", projected, replace(graph, form="nn")),
    ]


def requests(model: ServingModel, n: int, seed: int) -> list[dict]:
    """Seeded requests of every kind a client sends: known, unknown and repeated ids, cold starts, allowed
    lists (some with other catalogues' items), exclusions on and off, k from 1 to past the catalogue."""
    rng = np.random.default_rng(seed)
    names = list(model.partitions)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        items = model.partitions[name]
        length = int(rng.integers(0, 12))
        history = model.item_ids[rng.choice(items, length)].tolist()  # repeats possible
        if rng.random() < 0.3:
            history += [f"unknown-{j}" for j in range(int(rng.integers(1, 3)))]
        if rng.random() < 0.2 and history:
            history += history[:2]
        allowed = None
        if rng.random() < 0.2:
            allowed = model.item_ids[rng.choice(len(model.item_ids), int(rng.integers(1, 400)))].tolist()
        k = int(rng.choice([1, 5, 10, 20, 50, len(items) + 5]))
        out.append(
            {
                "partition": name,
                "item_ids": history,
                "k": min(k, 1000),
                "exclude_seen": bool(rng.random() < 0.8),
                "allowed_item_ids": allowed,
            }
        )
    return out


@pytest.mark.parametrize("case", [m[0] for m in models()])
def test_native_answers_are_the_python_answers_to_the_bit(case):
    _, model, config = next(m for m in models() if m[0] == case)
    retriever = Retriever(model, config)
    retriever.self_check()
    served = native.load(retriever)
    assert served.version == retriever.version
    for request in requests(model, 1500, seed=11):
        want = retriever.recommend(**request)
        got = served.recommend(**request)
        assert got.item_ids == want.item_ids, request
        assert bits(got.scores) == bits(want.scores), request
        assert (got.unknown_items, got.cold_start) == (want.unknown_items, want.cold_start)
    for bad in ({"k": 0}, {"k": 1001}, {"partition": "nowhere"}, {"item_ids": ["i1"] * 1001}):
        request = {"partition": "fr", "item_ids": ["i1"], "k": 5, **bad}
        with pytest.raises(RequestError):
            retriever.recommend(**request)
        with pytest.raises(RequestError):
            served.recommend(**request)


def test_the_native_self_check_refuses_a_graph_of_other_vectors():
    """The self-check runs through the C++ request path: a model whose graph indexes other vectors fails."""
    model = toy_model(n_items=800, seed=0)
    retriever = Retriever(model, RetrieverConfig(exact_below=0, index_params={"M": 8}))
    other = Retriever(toy_model(n_items=800, seed=5), RetrieverConfig(exact_below=0, index_params={"M": 8}))
    retriever.indexes = other.indexes  # (the other model's graphs: what a wrong cache would give)
    with pytest.raises(native.SelfCheckError, match="native front"):
        native.load(retriever)


def test_both_fronts_give_the_same_responses_over_grpc(tmp_path):
    _, model, config = models()[2]
    model.save(tmp_path / "export")
    servers = {front: Running(tmp_path / "export", front, retriever=config) for front in ("python", "native")}
    try:
        calls = {front: s.channel.unary_unary("/ledrec.v1.Recommender/Recommend") for front, s in servers.items()}
        for request in requests(model, 600, seed=5):
            raw = ledrec_pb2.RecommendRequest(**{k: v for k, v in request.items() if v is not None})
            answers = {}
            for front, call in calls.items():
                try:
                    answers[front] = call(raw.SerializeToString(), timeout=DEADLINE)
                except grpc.RpcError as exc:
                    answers[front] = exc.code()
            assert answers["python"] == answers["native"], request  # the same bytes: ids, scores, version, flags
        for payload in (b"\xff\xff\xff", b"\x0a\x05ab", ledrec_pb2.RecommendRequest(k=0).SerializeToString()):
            codes = set()
            for call in calls.values():
                with pytest.raises(grpc.RpcError) as err:
                    call(payload, timeout=DEADLINE)
                codes.add(err.value.code())
            assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
        names = {front: metric_names(scrape(s.ports[1])) for front, s in servers.items()}
        assert names["native"] == names["python"]
    finally:
        for s in servers.values():
            s.close()


def metric_names(text: str) -> set[str]:
    """The ledrec metric names of a Prometheus text, with the label names of each sample."""
    out = set()
    for line in text.splitlines():
        if line.startswith("ledrec_") and not line.startswith("ledrec_model{"):
            name, _, rest = line.partition("{")
            labels = tuple(sorted(p.split("=")[0] for p in rest.split("}")[0].split(","))) if rest else ()
            out.add((name.split(" ")[0], labels))
    return out


def test_a_drain_answers_a_real_backlog(tmp_path):
    """SIGTERM (stop) with hundreds of slow requests queued: every one is answered, health says
    NOT_SERVING first. Slow for real: a history of 1,000 items and an allowed list of 20,000 over an exactly
    searched catalogue of 60,000 items."""
    rng = np.random.default_rng(0)
    n, dim = 60_000, 64
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    model = ServingModel(
        item_ids=np.arange(n).astype(str),
        encoder_vectors=vectors,
        item_vectors=vectors,
        item_bias=rng.normal(size=n).astype(np.float32),
        query_map=np.eye(dim, dtype=np.float32),
    )
    model.save(tmp_path / "big")
    running = Running(tmp_path / "big", "native", grace_s=30.0, retriever=RetrieverConfig(exact_below=10**6))
    heavy = ledrec_pb2.RecommendRequest(
        item_ids=[str(i) for i in rng.choice(n, 1000, replace=False)],
        allowed_item_ids=[str(i) for i in rng.choice(n, 20_000, replace=False)],
        k=100,
    )
    t0 = time.perf_counter()
    running.stub.Recommend(heavy, timeout=DEADLINE)
    each = time.perf_counter() - t0
    count = 300
    answered: list[float] = []
    futures = [running.stub.Recommend.future(heavy, timeout=60) for _ in range(count)]
    for f in futures:
        f.add_done_callback(lambda f: answered.append(time.monotonic()) if f.exception() is None else None)
    assert wait_for(lambda: len(answered) > 0, 20)
    stopped = time.monotonic()
    stopper = threading.Thread(target=running.stop.set)
    stopper.start()
    results = []
    for f in futures:
        try:
            results.append(len(f.result().items) == 100)
        except grpc.RpcError as exc:
            results.append(exc.code().name)
    running.thread.join(60)
    running.channel.close()
    assert results == [True] * count
    after = sum(t > stopped for t in answered)
    assert after >= count // 3, (after, each)  # a real backlog: answered after the stop


def test_the_front_is_native_where_built_and_python_with_the_reason_otherwise(tmp_path, monkeypatch, capsys):
    from ledrec.cli import main
    from ledrec.errors import ConfigError
    from ledrec.serve.server import ServeConfig, choose_front

    toy_model().save(tmp_path / "export")
    assert main(["serve", str(tmp_path / "export"), "--check"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["front"] == "native" and checked["why_not_native"] is None
    config = ServeConfig(run_dir=str(tmp_path / "export"))
    assert choose_front(replace(config, retriever=RetrieverConfig(index="faiss")))[0] == "python"
    monkeypatch.setattr(native, "_native", None)
    monkeypatch.setattr(native, "WHY_NOT", "the native front is not built (no gRPC C++)")
    assert choose_front(config) == ("python", "the native front is not built (no gRPC C++)")
    with pytest.raises(ConfigError, match="--front native: the native front is not built"):
        choose_front(replace(config, front="native"))
    assert main(["serve", str(tmp_path / "export"), "--check", "--front", "native"]) == 2
    assert "not built" in capsys.readouterr().err
