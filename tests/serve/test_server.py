"""The gRPC service over loopback: the contract, health, reflection, refusals, metrics, hot reload under load.

Every test talks to 127.0.0.1 only, with deadlines, and a bounded number of requests."""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc
from ledrec.serve.retriever import RetrieverConfig
from ledrec.serve.server import ServeConfig, serve
from tests.serve.test_retriever import toy_model

DEADLINE = 5.0


class Running:
    def __init__(self, run_dir: Path, **overrides):
        self.stop = threading.Event()
        ready = threading.Event()
        self.ports: tuple[int, int | None] = (0, None)

        def on_ready(port: int, metrics_port: int | None) -> None:
            self.ports = (port, metrics_port)
            ready.set()

        config = ServeConfig(
            run_dir=str(run_dir),
            port=0,
            metrics_port=0,
            watch_s=0.1,
            retriever=RetrieverConfig(exact_below=0),
            **overrides,
        )
        self.thread = threading.Thread(target=serve, args=(config, on_ready, self.stop), daemon=True)
        self.thread.start()
        assert ready.wait(30), "server did not start"
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.ports[0]}")
        self.stub = ledrec_pb2_grpc.RecommenderStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.stop.set()
        self.thread.join(15)


@pytest.fixture()
def exports(tmp_path):
    a, b = tmp_path / "model-a", tmp_path / "model-b"
    toy_model(seed=0).save(a)
    toy_model(seed=1).save(b)
    link = tmp_path / "current"
    link.symlink_to(a)
    return link, a, b


@pytest.fixture()
def server(exports):
    running = Running(exports[0])
    yield running
    running.close()


def request(**kwargs):
    return ledrec_pb2.RecommendRequest(**{"partition": "fr", "item_ids": ["i1", "i2"], "k": 10, **kwargs})


def test_recommend_contract(server):
    response = server.stub.Recommend(request(exclude_seen=True), timeout=DEADLINE)
    assert len(response.items) == 10
    assert {"i1", "i2"}.isdisjoint(item.item_id for item in response.items)
    scores = [item.score for item in response.items]
    assert scores == sorted(scores, reverse=True)
    assert response.model_version and not response.cold_start
    cold = server.stub.Recommend(request(item_ids=["who?"]), timeout=DEADLINE)
    assert cold.cold_start and cold.unknown_items == 1 and len(cold.items) == 10


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"k": 5000}, {"partition": "nowhere"}, {"item_ids": ["i1"] * 1001}, {"item_ids": ["x" * 300_000]}],
)
def test_invalid_requests_get_invalid_argument(server, kwargs):
    with pytest.raises(grpc.RpcError) as err:
        server.stub.Recommend(request(**kwargs), timeout=DEADLINE)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details()


def test_health_and_reflection(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "ledrec.v1.Recommender"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    answers = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=DEADLINE
    )
    names = {s.name for answer in answers for s in answer.list_services_response.service}
    assert {"ledrec.v1.Recommender", "grpc.health.v1.Health"} <= names


def test_prometheus_metrics(server):
    for _ in range(3):
        server.stub.Recommend(request(item_ids=["i1", "unknown"]), timeout=DEADLINE)
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.ports[1]}/metrics", timeout=DEADLINE).read().decode()
    assert 'ledrec_stage_seconds_count{stage="user_embedding"} 3.0' in text
    assert 'ledrec_stage_seconds_count{stage="knn"} 3.0' in text
    assert 'ledrec_requests_total{code="OK",method="ledrec.v1.Recommender/Recommend"} 3.0' in text
    assert "ledrec_unknown_items_total 3.0" in text


def test_hot_reload_through_the_symlink_fails_no_request(server, exports):
    link, _, b = exports
    first = server.stub.Recommend(request(), timeout=DEADLINE).model_version
    answers, failures, done = [], [], threading.Event()  # answers: (sent, received, model version)

    def hammer():  # until told to stop (bounded: 20 s, or 100,000 requests)
        while not done.is_set() and len(answers) < 100_000:
            sent = time.monotonic()
            try:
                version = server.stub.Recommend(request(), timeout=DEADLINE).model_version
                answers.append((sent, time.monotonic(), version))
            except grpc.RpcError as exc:  # any failure is a test failure
                failures.append(exc)

    clients = [threading.Thread(target=hammer) for _ in range(3)]
    for c in clients:
        c.start()
    time.sleep(0.3)
    tmp = link.with_name("next")
    tmp.symlink_to(b)
    os.replace(tmp, link)  # atomic switch of the symlink, as a deploy would do
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # ask on our own until the new model answers
        if server.stub.Recommend(request(), timeout=DEADLINE).model_version != first:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # the clients keep going on the new model for a while
    done.set()
    for c in clients:
        c.join(10)
    assert not failures
    versions = {v for _, _, v in answers}
    assert first in versions and len(versions) == 2
    new = (versions - {first}).pop()
    switched = min(received for _, received, v in answers if v == new)
    # once the new model has answered, every request sent afterwards gets it (in-flight ones may finish on
    # the old model: that is the point of swapping a reference)
    assert all(v == new for sent, _, v in answers if sent > switched)


def test_graceful_stop_lets_the_request_in_flight_finish(exports, monkeypatch):
    from ledrec.serve.retriever import Retriever

    original = Retriever.recommend

    def slow(self, *args, **kwargs):
        time.sleep(0.5)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Retriever, "recommend", slow)
    running = Running(exports[0], grace_s=5.0)
    result: list = []
    call = threading.Thread(target=lambda: result.append(running.stub.Recommend(request(), timeout=DEADLINE)))
    call.start()
    time.sleep(0.2)  # the request is inside the handler now
    running.stop.set()
    call.join(10)
    running.thread.join(15)
    assert len(result) == 1 and len(result[0].items) == 10
    assert not running.thread.is_alive()
    running.channel.close()
