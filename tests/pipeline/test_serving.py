"""The acceptance of the daily job: a running server (loopback, started here) picks up each published
version by itself with zero failed requests; a model the gate refuses never reaches it; a rollback does."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pyarrow.parquet as pq

from ledrec.export.mips import ServingModel
from ledrec.pipeline.daily import run_pipeline
from ledrec.serve import ledrec_pb2
from tests.conftest import ledrec
from tests.pipeline.conftest import LED, worse, write_days
from tests.serve.conftest import Running

DEADLINE = 5.0


class Client(threading.Thread):
    """Asks every catalogue, in turn, until stopped (at most ``limit`` requests); keeps every failure and
    the versions that answered, per catalogue."""

    def __init__(self, stub, histories: dict[str, list[str]], limit: int = 20_000) -> None:
        super().__init__(daemon=True)
        self.stub, self.histories, self.limit = stub, histories, limit
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.seen: dict[str, list[str]] = {name: [] for name in histories}
        self.count = 0

    def run(self) -> None:
        while not self.stop.is_set() and self.count < self.limit:
            for name, history in self.histories.items():
                request = ledrec_pb2.RecommendRequest(partition=name, item_ids=history, k=10, exclude_seen=True)
                try:
                    response = self.stub.Recommend(request, timeout=DEADLINE)
                    if len(response.items) != 10 or set(history) & {i.item_id for i in response.items}:
                        self.failures.append(f"{name}: wrong answer {response}")
                    if not self.seen[name] or self.seen[name][-1] != response.model_version:
                        self.seen[name].append(response.model_version)
                except grpc.RpcError as exc:
                    self.failures.append(f"{name}: {exc.code()} {exc.details()}")
                self.count += 1

    def wait_for(self, name: str, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen[name]) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.seen[name]) >= count, (name, self.seen[name])


def test_published_versions_reach_a_running_server_without_a_failed_request(tmp_path, capsys, front):
    events, out = tmp_path / "events", tmp_path / "published"
    write_days(events, np.arange(15))
    config = tmp_path / "daily.toml"
    config.write_text(
        f'events = "{events}"\nout = "{out}"\nholdout_users = 400\nmin_holdout_users = 20\n\n[led]\n'
        + "".join(f"{k} = {v}\n" for k, v in LED.items())
    )
    first = ledrec(capsys, "pipeline", str(config), "--quiet")  # the one command of the daily job
    names = sorted(first["catalogues"])
    histories = {}
    for name in names:
        model = ServingModel.load(out / name / "current")
        histories[name] = model.item_ids[:3].tolist()
    server = Running(out, front)
    client = Client(server.stub, histories)
    try:
        client.start()
        for name in names:
            client.wait_for(name, 1)
        write_days(events, [15])  # the next day's events arrive; the daily job runs
        later = ledrec(capsys, "pipeline", "run", str(config), "--gate-margin", "0.5", "--quiet")
        assert all(part["decision"] == "published" for part in later["catalogues"].values()), later
        for name in names:
            client.wait_for(name, 2)
        # a deliberately worse model: refused by the gate, never served
        refused = run_pipeline(worse(events, out, tmp_path / "worse"), progress=False)
        assert all(part["decision"] == "refused" for part in refused["catalogues"].values()), refused
        time.sleep(0.5)  # several watch periods: nothing may change
        assert all(len(client.seen[name]) == 2 for name in names), client.seen
        status = ledrec(capsys, "pipeline", "status", str(out))["catalogues"]
        assert {n: status[n]["current"] for n in names} == {n: later["catalogues"][n]["version"] for n in names}
        back = ledrec(capsys, "pipeline", "rollback", str(out), "--catalogue", names[0])
        assert back["to"] == first["catalogues"][names[0]]["version"]
        client.wait_for(names[0], 3)
    finally:
        client.stop.set()
        client.join(30)
        server.close()
    assert client.failures == [], client.failures[:5]
    assert client.count > 100
    # versions as the server named them: first, second, and after the rollback the first again
    assert client.seen[names[0]][2] == client.seen[names[0]][0] != client.seen[names[0]][1]
    assert len(set(client.seen[names[1]])) == 2
    # batch recommendations from the published root: every user of the log, each from their own catalogue
    recs = ledrec(capsys, "recommend", str(out), "--histories", str(events), "--out", str(tmp_path / "r.parquet"))
    logged = pq.read_table(events, columns=["user"]).column("user").unique()
    assert recs["users"] == len(logged) and recs["rows"] == 20 * len(logged)
    assert set(pq.read_table(tmp_path / "r.parquet").column("partition").unique().to_pylist()) == set(names)
