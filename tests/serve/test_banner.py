"""The Banner call: a saved two-stage system answers in process and over loopback gRPC, identically."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from ledrec.serve import ledrec_pb2
from ledrec.simulate.ab import SimulationConfig, simulate
from ledrec.simulate.world import ProductionConfig
from ledrec.twostage.artifact import load_system
from ledrec.twostage.ranker import SOURCES
from tests.serve.conftest import DEADLINE, Running, toy_model

WORLD = ProductionConfig(n_users=1200, n_items=600, n_merchants=6, n_categories=6, categories_per_merchant=2, days=6)
CONFIG = SimulationConfig(world=WORLD, test_days=3, warmup_days=1, led_dim=8, led_epochs=1, cbo_clusters=3)


@pytest.fixture(scope="module")
def system_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("two-stage")
    simulate(CONFIG, progress=False, save_system_dir=str(out))
    return out


def test_saved_system_builds_banners_of_the_merchant(system_dir):
    saved = load_system(system_dir)
    history = ["i1", "i5", "nope", "i9"]
    items, unknown = saved.banner("m2", history, 5)
    assert unknown == 1 and len(items) == 5
    index = {str(i): k for k, i in enumerate(saved.item_ids)}
    assert all(saved.system.catalog.merchant[index[i]] == 2 for i, _, _ in items)
    assert len({i for i, _, _ in items}) == 5
    scores = [s for _, s, _ in items]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert all(src and set(src) <= set(SOURCES) for _, _, src in items)
    cold, _ = saved.banner("m2", [], 3)  # no history: still a banner (GBO/CBO/LED bias)
    assert len(cold) == 3
    for bad in (dict(merchant="m99", size=3), dict(merchant="m2", size=0), dict(merchant="m2", size=101)):
        with pytest.raises(ValueError):
            saved.banner(bad["merchant"], history, bad["size"])


def test_banner_over_grpc_matches_in_process(system_dir):
    saved = load_system(system_dir)
    running = Running(system_dir)
    try:
        reply = running.stub.Banner(
            ledrec_pb2.BannerRequest(merchant="m1", item_ids=["i3", "i4"], size=4), timeout=DEADLINE
        )
        expected, _ = saved.banner("m1", ["i3", "i4"], 4)
        assert [b.item_id for b in reply.items] == [i for i, _, _ in expected]
        np.testing.assert_allclose([b.score for b in reply.items], [s for _, s, _ in expected], rtol=1e-6)
        assert [list(b.sources) for b in reply.items] == [src for _, _, src in expected]
        with pytest.raises(grpc.RpcError) as err:
            running.stub.Banner(ledrec_pb2.BannerRequest(merchant="nope", size=4), timeout=DEADLINE)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # the same directory is a run directory: Recommend answers from its LED model
        rec = running.stub.Recommend(ledrec_pb2.RecommendRequest(item_ids=["i3"], k=5), timeout=DEADLINE)
        assert len(rec.items) == 5
    finally:
        running.close()


def test_banner_without_a_system_is_a_failed_precondition(tmp_path, front):
    toy_model(seed=0).save(tmp_path / "m")
    running = Running(tmp_path / "m", front)
    try:
        with pytest.raises(grpc.RpcError) as err:
            running.stub.Banner(ledrec_pb2.BannerRequest(merchant="m1", size=4), timeout=DEADLINE)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        running.close()
