"""End to end through the command line: run → export with catalogues → serve → SIGHUP reload → SIGTERM."""

from __future__ import annotations

import json
import signal

import grpc
import pytest

from ledrec.cli import main
from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc
from ledrec.serve.client import start_server
from tests.serve.conftest import counter, scrape, wait_for

DATA = "synthetic:n_users=400,n_items=300,n_topics=5,n_partitions=3"


@pytest.mark.slow
def test_run_export_serve_reload_stop(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["run", "--data", DATA, "--protocol", "strong", "--model", "led", "--dim", "8", "--epochs", "2", "--quiet"]
    assert main([*argv, "--out", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["export", str(run_dir), "--data", DATA]) == 0
    exported = json.loads(capsys.readouterr().out)
    partitions = exported["partitions"]
    assert len(partitions) == 3

    # port 0: the server binds a port of its choosing and names it on stdout, one JSON line once it serves
    proc, ready = start_server(run_dir, timeout=60)
    try:
        assert ready["address"] == f"127.0.0.1:{ready['port']}" and ready["workers"] == 1 and ready["port"] > 0
        channel = grpc.insecure_channel(ready["address"])
        stub = ledrec_pb2_grpc.RecommenderStub(channel)
        from ledrec.export.mips import ServingModel

        serving = ServingModel.load(run_dir / "serving")
        for name, items in serving.partitions.items():
            history = serving.item_ids[items[:3]].tolist()
            response = stub.Recommend(ledrec_pb2.RecommendRequest(partition=name, item_ids=history, k=20), timeout=5)
            got = {serving.lookup([i.item_id])[0][0] for i in response.items}
            assert got <= set(items.tolist()), f"partition {name} leaked items of another catalogue"
        version = response.model_version
        proc.send_signal(signal.SIGHUP)  # reload (same model): keeps answering
        reloads = lambda: counter(scrape(ready["metrics_ports"][0]), "ledrec_reloads_total", result="ok")  # noqa: E731
        assert wait_for(lambda: reloads() == 1)
        again = stub.Recommend(ledrec_pb2.RecommendRequest(partition=name, item_ids=history, k=20), timeout=5)
        assert again.model_version == version
        channel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
