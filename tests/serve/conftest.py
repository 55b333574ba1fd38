"""What the serving tests share: a toy model, its exact oracle, a server in this process (``Running``) or as
``ledrec serve`` processes (on ports they bind themselves), on either front (the ``front`` fixture: every
promise of the service is tested on both; the native one is skipped with the reason where it is not built),
and small waits that poll a condition."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

from ledrec.export.mips import ServingModel
from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc
from ledrec.serve.retriever import Retriever, RetrieverConfig
from ledrec.serve.server import ServeConfig, serve
from tests.conftest import need_front


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


def exact_top(model: ServingModel, partition: str, history: list[int], k: int) -> list[str]:
    """The oracle: exact scores over the partition, the history left out."""
    items = model.partitions[partition]
    scores = model.scores(model.user_vector(np.array(history)), items)
    keep = ~np.isin(items, history)
    order = np.argsort(-scores[keep], kind="stable")[:k]
    return model.item_ids[items[keep][order]].tolist()


def recall_vs_exact(retriever: Retriever, partition: str, n: int = 30, k: int = 10) -> float:
    rng = np.random.default_rng(5)
    items = retriever.partitions[partition]
    hits = []
    for _ in range(n):
        history = rng.choice(items, 3, replace=False).tolist()
        got = retriever.recommend(partition, [f"i{i}" for i in history], k).item_ids
        hits.append(len(set(got) & set(exact_top(retriever.model, partition, history, k))) / k)
    return float(np.mean(hits))


DEADLINE = 5.0


class Running:
    def __init__(self, run_dir: Path, front: str = "python", **overrides):
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
            front=need_front(front),
            **{"watch_s": 0.1, "retriever": RetrieverConfig(exact_below=0), **overrides},
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
def server(exports, front):
    running = Running(exports[0], front)
    yield running
    running.close()


def request(**kwargs):
    return ledrec_pb2.RecommendRequest(**{"partition": "fr", "item_ids": ["i1", "i2"], "k": 10, **kwargs})


def scrape(port: int) -> str:
    """The Prometheus text of a server's metrics port."""
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=DEADLINE).read().decode()


def metrics_text(server: Running) -> str:
    return scrape(server.ports[1])


def counter(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def ask(address: str, credentials: grpc.ChannelCredentials | None = None, **kwargs) -> ledrec_pb2.RecommendResponse:
    channel = grpc.secure_channel(address, credentials, **kwargs) if credentials else grpc.insecure_channel(address)
    try:
        stub = ledrec_pb2_grpc.RecommenderStub(channel)
        return stub.Recommend(ledrec_pb2.RecommendRequest(partition="fr", item_ids=["i1"], k=5), timeout=10)
    finally:
        channel.close()


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
