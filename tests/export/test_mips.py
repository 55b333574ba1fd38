"""The export: one inner product equals LED's score, the NN reduction preserves the ranking, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.export.mips import ServingModel, from_model, partition_items
from ledrec.index.base import nearest_neighbour_form
from ledrec.models import EASE, LED
from tests.conftest import planted_task


@pytest.fixture(scope="module")
def led():
    train, _ = planted_task()
    model = LED(dim=8, epochs=2, batch_size=64, tuning="project", reduce="sqrt").fit(train)
    return model


def test_bias_as_extra_dimension_reproduces_led_scores(led):
    _, held = planted_task()
    serving = from_model(led, np.arange(led.n_items).astype(str))
    expected = led.score(held.input[:5])
    items = serving.mips_items()
    for u in range(5):
        history = held.input[u].indices.astype(np.int64)
        query = np.append(serving.user_vector(history), 1.0)  # [q; 1]
        np.testing.assert_allclose(items @ query, expected[u], rtol=1e-4, atol=1e-4)


def test_reduction_to_nearest_neighbour_preserves_the_ranking():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(200, 6)).astype(np.float32) * rng.lognormal(0, 0.5, (200, 1)).astype(np.float32)
    reduced, m = nearest_neighbour_form(items)
    np.testing.assert_allclose(np.linalg.norm(reduced, axis=1), m, rtol=1e-5)  # every item on the sphere
    query = rng.normal(size=6).astype(np.float32)
    distances = np.linalg.norm(reduced - np.append(query, 0.0), axis=1)
    assert (
        np.argsort(distances, kind="stable")[:20].tolist() == np.argsort(-(items @ query), kind="stable")[:20].tolist()
    )


def test_cold_start_query_is_null(led):
    serving = from_model(led, np.arange(led.n_items).astype(str))
    np.testing.assert_array_equal(serving.user_vector(np.array([], np.int64)), np.zeros(8, np.float32))


def test_save_load_round_trip_with_partitions(led, tmp_path):
    serving = from_model(
        led, np.arange(led.n_items).astype(str), partitions={"fr": np.array([0, 3, 5]), "de": np.arange(10, 20)}
    )
    serving.save(tmp_path / "s")
    again = ServingModel.load(tmp_path / "s")
    assert again.version == serving.version and again.reduce == "sqrt"
    assert set(again.partitions) == {"fr", "de"}
    np.testing.assert_array_equal(again.partitions["fr"], [0, 3, 5])
    assert again.encoder_vectors is again.item_vectors  # tied: stored once
    assert again.lookup(["3", "nope", "5"])[0].tolist() == [3, 5]
    assert again.lookup(["3", "nope", "5"])[1] == 1


def test_partition_items_from_event_pairs():
    items = np.array([4, 1, 4, 2, 9])
    parts = np.array([1, 0, 1, 0, 1])
    assert {k: v.tolist() for k, v in partition_items((items, parts), np.array(["a", "b", "c"])).items()} == {
        "a": [1, 2],
        "b": [4, 9],
    }


def test_models_without_inner_product_form_are_refused():
    train, _ = planted_task()
    with pytest.raises(ValueError, match="cannot be served"):
        from_model(EASE(lam=10.0).fit(train), np.arange(train.shape[1]).astype(str))
