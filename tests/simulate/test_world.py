"""The production-like world: seeded, shaped as its docstring says, and its ground truth behaves as written."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.data.interactions import dedupe_rows
from ledrec.simulate.world import (
    CLICK,
    DISPLAY,
    SALE,
    VIEW,
    GroundTruth,
    ProductionConfig,
    generate_log,
    production_protocol,
    read_events,
    write_dataset,
)

SMALL = ProductionConfig(
    n_users=3000, n_items=1500, n_merchants=12, n_categories=10, categories_per_merchant=3, days=10
)


@pytest.fixture(scope="module")
def world() -> tuple[GroundTruth, object]:
    truth = GroundTruth(SMALL)
    return truth, generate_log(truth)


def test_deterministic_under_seed(world):
    _, log = world
    again = generate_log(GroundTruth(SMALL))
    for name in ("user", "item", "event", "banner", "position", "timestamp"):
        np.testing.assert_array_equal(getattr(log, name), getattr(again, name))
    other = generate_log(GroundTruth(ProductionConfig(**{**SMALL.__dict__, "seed": 1})))
    assert len(other) != len(log) or not np.array_equal(other.item, log.item)


def test_catalogue_covers_every_category_in_every_country(world):
    truth, _ = world
    cells = {(c, k) for c, k in zip(truth.item_country, truth.item_category, strict=True)}
    assert cells == {(c, k) for c in range(SMALL.n_countries) for k in range(SMALL.n_categories)}
    assert np.all(truth.complement != np.arange(SMALL.n_categories))


def test_views_stay_in_the_users_country(world):
    truth, log = world
    views = log.event == VIEW
    np.testing.assert_array_equal(truth.item_country[log.item[views]], truth.user_country[log.user[views]])


def test_banners_are_one_merchant_distinct_items_and_sized(world):
    truth, log = world
    d = log.select(log.event == DISPLAY)
    for banner in np.unique(d.banner)[:300]:
        rows = d.banner == banner
        items = d.item[rows]
        assert SMALL.min_banner - 1 <= len(items) <= SMALL.max_banner  # repeats of a draw leave slots empty
        assert len(set(items)) == len(items)
        assert len(set(truth.item_merchant[items])) == 1
        np.testing.assert_array_equal(np.sort(d.position[rows]), np.arange(len(items)))


def test_clicks_follow_displays_and_sales_follow_clicks(world):
    _, log = world
    key = lambda e: set(zip(log.banner[log.event == e], log.item[log.event == e], strict=True))  # noqa: E731
    assert key(CLICK) <= key(DISPLAY)
    assert key(SALE) <= key(CLICK)
    assert np.all(log.value[log.event == SALE] > 0) and np.all(log.value[log.event != SALE] == 0)


def test_position_bias_lowers_click_rate(world):
    _, log = world
    shown = np.bincount(log.position[log.event == DISPLAY], minlength=SMALL.max_banner)
    clicked = np.bincount(log.position[log.event == CLICK], minlength=SMALL.max_banner)
    ctr = clicked[:4] / shown[:4]
    assert np.all(np.diff(ctr) < 0), ctr


def test_click_model_rewards_interest_intent_and_complement(world):
    truth, _ = world
    user = np.array([0])
    favourite = int(np.argmax(truth.user_interest[0]))
    fav_items = np.flatnonzero(truth.item_category == favourite)
    item = fav_items[:1]
    p = lambda intent, pos=0: truth.click_probability(user, item, np.array([intent]), np.array([pos]))[0]  # noqa: E731
    unrelated = next(c for c in range(SMALL.n_categories) if c != favourite and truth.complement[c] != favourite)
    source = int(np.flatnonzero(truth.complement == favourite)[0])  # browsing it makes `favourite` its complement
    assert p(favourite) > p(unrelated)
    assert p(source) > p(unrelated)
    assert p(unrelated, pos=3) < p(unrelated, pos=0)


def test_roundtrip_parquet(world, tmp_path):
    truth, log = world
    write_dataset(truth, log, tmp_path)
    back, manifest = read_events(tmp_path)
    for name in ("user", "item", "event", "banner", "position", "timestamp", "value"):
        np.testing.assert_array_equal(getattr(back, name), getattr(log, name))
    assert manifest["config"]["n_users"] == SMALL.n_users
    assert (tmp_path / "items.parquet").exists()


def test_dedupe_rows_known_answer():
    a = np.array([[3, 1, 3, 2, -1], [5, 5, 5, -1, -1]])
    np.testing.assert_array_equal(dedupe_rows(a), [[3, 1, 2, -1, -1], [5, -1, -1, -1, -1]])


def test_config_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="n_items too small"):
        ProductionConfig(n_items=10)
    with pytest.raises(ValueError, match="min_banner"):
        ProductionConfig(min_banner=5, max_banner=2)


def test_production_protocol_periods_and_users(world):
    truth, log = world
    data, banner_sets, negatives = production_protocol(log, truth.n_items, target_days=3, seed=0)
    banners = banner_sets["test"]
    cut = int(log.timestamp.max()) + 1 - 3 * 86_400
    late_clicks = log.select((log.event == CLICK) & (log.timestamp >= cut))
    test_users = np.char.lstrip(data.test.user_ids.astype(str), "u").astype(int)
    assert set(test_users) <= set(late_clicks.user)  # every test user clicked in the target period
    early = log.select(((log.event == VIEW) | (log.event == CLICK)) & (log.timestamp < cut))
    for row, user in list(enumerate(test_users))[:50]:  # inputs are exactly the input period's views + clicks
        assert set(data.test.input[row].indices) == set(early.item[early.user == user])
        assert set(data.test.target[row].indices) <= set(late_clicks.item[late_clicks.user == user])
    valid_users = set(np.char.lstrip(data.valid.user_ids.astype(str), "u").astype(int))
    assert data.fit_test.shape[0] + len(valid_users) <= len(np.unique(early.user))
    assert data.fit_test is data.fit_valid and negatives.shape == data.fit_test.shape
    # negatives: displayed, never clicked, before the cut
    assert negatives.multiply(data.targets["fit_test"]).nnz == 0
    assert banners.clicked.any(axis=1).all() and (banners.items[banners.clicked] >= 0).all()


def test_production_protocol_needs_enough_days(world):
    truth, log = world
    with pytest.raises(ValueError, match="less than"):
        production_protocol(log, truth.n_items, target_days=6)


def test_the_generic_event_reader_reads_the_log(world, tmp_path):
    from ledrec.data.readers import read_events as read_any

    truth, log = world
    write_dataset(truth, log, tmp_path)
    data = read_any(tmp_path / "events.parquet")
    assert len(data) == len(log)
    assert set(data.feedback_types) == {"view", "display", "click", "sale"}
    assert data.partitions is not None and len(data.partitions) == SMALL.n_countries
