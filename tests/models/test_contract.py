"""The contract every recommender passes (like implicit's shared recommender test)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from ledrec.models import MODELS
from ledrec.models.led import WLSLED, SpectralLED, TrainedLED
from tests.conftest import planted_clusters

# every recommender, and LED's family members (LED itself chooses among them)
ESTIMATORS = {**MODELS, **{m.name: m for m in (SpectralLED, WLSLED, TrainedLED)}}

FAST_PARAMS: dict[str, dict] = {
    "als": {"factors": 8, "iterations": 3},
    "ease": {"lam": 10.0},
    "gfcf": {"k": 8},
    "led": {"dim": 8, "epochs": 2, "batch_size": 64},
    "led-spectral": {"dim": 8},
    "led-wls": {"dim": 8, "epochs": 2},
    "led-trained": {"dim": 8, "epochs": 2, "batch_size": 64},
    "svd": {"dim": 8},
    "vae": {"hidden": 16, "latent": 8, "epochs": 2, "batch_size": 64},
    "dae": {"hidden": 16, "latent": 8, "epochs": 2, "batch_size": 64},
}


@pytest.fixture(params=sorted(ESTIMATORS))
def model_cls(request):
    return ESTIMATORS[request.param]


def make(model_cls, **extra):
    return model_cls(**FAST_PARAMS.get(model_cls.name, {}), random_state=0, **extra)


@pytest.fixture(scope="module")
def train():
    return planted_clusters(n_users=300, n_items=60, n_clusters=3, items_per_user=8, seed=0)


@pytest.fixture(scope="module")
def new_users():
    return planted_clusters(n_users=30, n_items=60, n_clusters=3, items_per_user=8, seed=1)


def test_fit_returns_self_and_learned_attributes_end_in_underscore(model_cls, train):
    model = make(model_cls)
    assert model.fit(train) is model
    assert model.n_items == train.shape[1]
    assert any(k.endswith("_") for k in vars(model))


def test_fit_show_progress_reports_on_stderr_only(model_cls, train, capsys):
    quiet = make(model_cls).fit(train, show_progress=False)
    assert quiet.progress is False and capsys.readouterr().err == ""
    loud = make(model_cls).fit(train, show_progress=True)
    out = capsys.readouterr()
    assert loud.progress is True and out.out == ""  # stdout is a command's result, never progress
    if model_cls.uses_validation:  # the iterative models say how each epoch went
        assert "epoch 2" in out.err
    np.testing.assert_array_equal(loud.score(train[:5]), quiet.score(train[:5]))  # progress changes nothing else


def test_score_shape_dtype_and_fold_in(model_cls, train, new_users):
    model = make(model_cls).fit(train)
    scores = model.score(new_users)  # users never seen in training
    assert scores.shape == new_users.shape
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()
    # a user's scores do not depend on who else is in the batch
    np.testing.assert_allclose(model.score(new_users[5:6]), scores[5:6], rtol=1e-5, atol=1e-6)
    # an empty history is a valid request (cold start)
    assert model.score(sp.csr_matrix((1, train.shape[1]), dtype=np.float32)).shape == (1, train.shape[1])


def test_recommend_excludes_history_and_is_sorted(model_cls, train, new_users):
    model = make(model_cls).fit(train)
    idx, scores = model.recommend(new_users, k=10)
    assert idx.shape == scores.shape == (new_users.shape[0], 10)
    for u in range(new_users.shape[0]):
        assert not set(idx[u]) & set(new_users[u].indices)
        assert np.all(np.diff(scores[u]) <= 0)
    idx_all, _ = model.recommend(new_users, k=10, exclude_seen=False)
    assert idx_all.shape == (new_users.shape[0], 10)


def test_save_load_round_trip(model_cls, train, new_users, tmp_path):
    model = make(model_cls).fit(train)
    model.save(tmp_path / "m")
    loaded = model_cls.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score(new_users), model.score(new_users))


def test_deterministic_under_seed(model_cls, train, new_users):
    a = make(model_cls).fit(train).score(new_users)
    b = make(model_cls).fit(train).score(new_users)
    np.testing.assert_array_equal(a, b)


def test_errors(model_cls, train):
    model = make(model_cls)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.score(train[:2])
    model.fit(train)
    with pytest.raises(ValueError, match="items"):
        model.score(sp.csr_matrix((2, train.shape[1] + 1), dtype=np.float32))
    with pytest.raises(TypeError, match="unknown parameter"):
        model_cls(not_a_parameter=1)


def test_scikit_learn_contract_params_unchanged_clone_and_seeded_refits(model_cls, train, new_users):
    """__init__ stores, fit never changes a parameter, clone works, and a seeded refit is bit-identical."""
    import sklearn.base

    model = make(model_cls)
    before = model.get_params()
    twin = sklearn.base.clone(model)
    assert type(twin) is model_cls and twin.get_params() == before
    model.fit(train)
    assert model.get_params() == before  # (what a preset decided is in params_, where a model has presets)
    twin.fit(train)
    np.testing.assert_array_equal(twin.score(new_users), model.score(new_users))
    assert model.set_params(random_state=1) is model and model.get_params()["random_state"] == 1


def test_similar_items_come_from_the_item_s_own_planted_cluster(model_cls, train):
    """A known answer: users touch only their own cluster's 20 items, so an item's neighbours are its
    cluster's, by every model's similarity (popularity has none and says so)."""
    from ledrec.errors import ConfigError, InputError

    params = {**FAST_PARAMS.get(model_cls.name, {}), "random_state": 0}
    if model_cls.name in ("vae", "dae"):
        params["epochs"] = 40  # (two epochs leave an autoencoder's one-item answers near its initial noise)
    model = model_cls(**params).fit(train)
    model.item_ids = np.array([f"m{i}" for i in range(60)])
    if model_cls.name == "pop":
        with pytest.raises(ConfigError):
            model.similar_items("m0")
        return
    answers = model.similar_items(["m0", "m25", "m59"], k=5)
    for item, answer in zip((0, 25, 59), answers, strict=True):
        found = [int(i[1:]) for i, _ in answer]
        assert len(found) == 5 and item not in found
        assert {f // 20 for f in found} == {item // 20}, (model_cls.name, item, found)
        assert all(a[1] >= b[1] for a, b in itertools.pairwise(answer))
    one = model.similar_items("m25", k=5)  # one id: one list
    assert [i for i, _ in one] == [i for i, _ in answers[1]]
    np.testing.assert_allclose([s for _, s in one], [s for _, s in answers[1]], rtol=1e-5)
    with pytest.raises(InputError, match="unknown item"):
        model.similar_items(["m0", "nope"])
