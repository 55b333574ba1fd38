"""The embedded synthetic generator: deterministic under a seed, and shaped as documented."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.data.load import describe
from ledrec.data.readers import read_events
from ledrec.data.synthetic import SyntheticConfig, generate, write_events, write_synthetic

SMALL = SyntheticConfig(n_users=500, n_items=300, n_topics=5, n_partitions=2, views_per_user=15)


def test_deterministic_under_seed():
    a, b = generate(SMALL), generate(SMALL)
    for col in ("user", "item", "feedback", "timestamp", "partition"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    c = generate(SyntheticConfig(**{**SMALL.__dict__, "seed": 1}))
    assert not np.array_equal(a.item, c.item)


def test_funnel_partitions_and_time_order():
    d = generate(SMALL)
    views, clicks, sales = (int((d.feedback == k).sum()) for k in range(3))
    assert views > clicks > sales > 0
    assert d.n_users == SMALL.n_users
    # users stay in one partition; every click has a view of the same item before it
    x = np.stack([d.user, d.partition], axis=1)
    assert len(np.unique(x, axis=0)) == SMALL.n_users
    order_ok = np.all(np.diff(d.user) >= 0)
    same_user = np.diff(d.user) == 0
    assert order_ok and np.all(np.diff(d.timestamp)[same_user] >= 0)
    viewed = set(zip(d.user[d.feedback == 0].tolist(), d.item[d.feedback == 0].tolist(), strict=True))
    clicked = set(zip(d.user[d.feedback == 1].tolist(), d.item[d.feedback == 1].tolist(), strict=True))
    assert clicked <= viewed


def test_popularity_is_heavy_tailed():
    d = generate(SyntheticConfig(n_users=2000, n_items=1000, seed=3))
    counts = np.sort(np.bincount(d.item[d.feedback == 0], minlength=1000))[::-1]
    top = counts[:10].sum() / counts.sum()
    assert top > 0.05  # 1% of items take well over 1% of views


def test_write_and_read_back(tmp_path):
    d = generate(SMALL)
    path = write_events(d, tmp_path / "events.parquet", SMALL)
    back = read_events(path)
    assert len(back) == len(d)
    assert back.feedback_types == ("view", "click", "sale")
    assert (path.with_suffix(".json")).is_file()


def test_write_synthetic_summarises_what_describe_reads_back(tmp_path):
    written = write_synthetic(tmp_path / "events.parquet", SMALL)
    info = describe(written["path"])
    part = info["parts"]["all"]
    assert info["users"] == written["users"] == 500
    assert info["items"] == part["items_with_events"] <= written["items"] == 300  # a file holds items with events
    assert part["events"] == written["events"] == sum(written["feedback"].values())
    assert part["feedback"] == written["feedback"] and part["partitions"] == 2 and part["timestamps"]


def test_config_validation():
    with pytest.raises(ValueError):
        SyntheticConfig(n_items=10, n_topics=20)
