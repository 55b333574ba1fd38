"""Both protocols: who is held out, what is input and target, seeded, and save/load."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.data.interactions import DataError, Interactions, Vocabulary
from ledrec.data.readers import Dataset, read_dataset
from ledrec.data.splits import PreparedData, fixed_split, is_prepared, prepare, strong_generalization
from tests.conftest import random_binary, shared_dataset


def ratings_log(n_users=200, n_items=80, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    x = random_binary(n_users, n_items, 0.15, seed=seed).tocoo()
    rating = rng.choice([1.0, 2.5, 3.5, 4.0, 5.0], size=x.nnz).astype(np.float32)
    return Interactions(
        user=x.row.astype(np.int32),
        item=x.col.astype(np.int32),
        users=Vocabulary(np.array([f"u{i}" for i in range(n_users)])),
        items=Vocabulary(np.array([f"i{i}" for i in range(n_items)])),
        feedback_types=("rating",),
        rating=rating,
    )


def rows_as_sets(m):
    return [frozenset(m[r].indices.tolist()) for r in range(m.shape[0])]


def test_strong_generalization_is_the_liang_protocol():
    log = ratings_log()
    data = strong_generalization(log, heldout_users=20, seed=3)
    positives = log.select(log.rating >= 3.5).to_csr()
    # disjoint held-out users
    assert not set(data.valid.user_ids) & set(data.test.user_ids)
    assert data.fit_valid is data.fit_test
    n_eligible = int((np.diff(positives.indptr) >= 5).sum())
    assert data.fit_valid.shape[0] == n_eligible - 40
    assert data.valid.n_users <= 20 and data.test.n_users <= 20
    # items are the training users' items; input and target partition each held-out history
    item_index = {s: i for i, s in enumerate(log.items.ids)}
    train_items = [item_index[s] for s in data.items.ids]
    for split in (data.valid, data.test):
        for r, uid in enumerate(split.user_ids):
            u = log.users.index(uid)
            full = set(np.flatnonzero(positives[u, train_items].toarray()[0]).tolist())
            inp, tgt = set(split.input[r].indices.tolist()), set(split.target[r].indices.tolist())
            assert not inp & tgt
            assert inp | tgt == full
            assert len(tgt) == int(0.2 * len(full))


def test_strong_is_seeded():
    log = ratings_log()
    a = strong_generalization(log, heldout_users=20, seed=1)
    b = strong_generalization(log, heldout_users=20, seed=1)
    c = strong_generalization(log, heldout_users=20, seed=2)
    assert list(a.test.user_ids) == list(b.test.user_ids)
    assert rows_as_sets(a.test.target) == rows_as_sets(b.test.target)
    assert list(a.test.user_ids) != list(c.test.user_ids)


def test_strong_threshold_and_too_few_users():
    log = ratings_log()
    strict = strong_generalization(log, min_rating=5.0, min_user_positives=1, heldout_users=10)
    assert strict.fit_valid.nnz + strict.valid.input.nnz + strict.valid.target.nnz <= int((log.rating >= 5).sum())
    with pytest.raises(DataError, match="cannot give"):
        strong_generalization(log, heldout_users=150)


def bars_dataset(with_valid: bool) -> Dataset:
    x = random_binary(100, 50, 0.2, seed=7).tocoo()
    rng = np.random.default_rng(0)
    part = rng.choice(3 if with_valid else 2, size=x.nnz, p=[0.7, 0.15, 0.15] if with_valid else [0.8, 0.2])
    users = Vocabulary(np.arange(100).astype(str))
    items = Vocabulary(np.arange(50).astype(str))
    names = ["train", "valid", "test"] if with_valid else ["train", "test"]
    parts = {
        n: Interactions(
            user=x.row[part == k].astype(np.int32), item=x.col[part == k].astype(np.int32), users=users, items=items
        )
        for k, n in enumerate(names)
    }
    return Dataset("toy", "bars", "", parts)


def test_bars_with_valid_file():
    ds = bars_dataset(True)
    data = fixed_split(ds)
    train = ds.parts["train"].to_csr()
    assert data.fit_valid is data.fit_test
    assert (data.fit_test != train).nnz == 0
    # every evaluated user has a target; inputs are the user's train items
    assert np.all(np.diff(data.test.target.indptr) > 0)
    rows = data.test.user_ids.astype(int)
    assert (data.test.input != train[rows]).nnz == 0
    assert data.test.target.nnz == len(ds.parts["test"])
    assert data.valid.target.nnz == len(ds.parts["valid"])


def test_bars_carves_validation_from_train():
    ds = bars_dataset(False)
    data = fixed_split(ds, valid_fraction=0.2, seed=5)
    train = ds.parts["train"].to_csr()
    rows = data.valid.user_ids.astype(int)
    # fit_valid + carved targets = train, disjoint
    assert data.fit_valid.multiply(train).nnz == data.fit_valid.nnz
    recombined = data.fit_valid.tolil()
    recombined[rows] = data.fit_valid[rows] + data.valid.target
    assert (recombined != train).nnz == 0
    assert data.fit_valid[rows].multiply(data.valid.target).nnz == 0
    assert (data.fit_test != train).nnz == 0  # the final model sees all of train
    again = fixed_split(ds, valid_fraction=0.2, seed=5)
    assert rows_as_sets(again.valid.target) == rows_as_sets(data.valid.target)


def test_bars_needs_fixed_files():
    ds = Dataset("x", "events", "", {"all": ratings_log()})
    with pytest.raises(DataError, match="fixed train/test"):
        fixed_split(ds)


def test_prepared_round_trip(tmp_path):
    data = prepare(bars_dataset(False), "bars", seed=1)
    data.save(tmp_path / "prep")
    assert is_prepared(tmp_path / "prep")
    back = PreparedData.load(tmp_path / "prep")
    assert back.protocol == "bars" and back.name == "toy"
    assert list(back.items.ids) == list(data.items.ids)
    for a, b in (
        (back.fit_valid, data.fit_valid),
        (back.test.target, data.test.target),
        (back.valid.input, data.valid.input),
    ):
        assert (a != b).nnz == 0
    assert list(back.test.user_ids) == list(data.test.user_ids)


@pytest.mark.realdata
def test_gowalla_bars_preparation():
    data = prepare(read_dataset(shared_dataset("gowalla-lightgcn")), "bars")
    assert data.test.n_users == 29_858 and data.test.target.nnz == 217_242
    assert data.fit_test.nnz == 810_128
    assert data.fit_valid.nnz + data.valid.target.nnz == 810_128


@pytest.mark.realdata
def test_ml_latest_small_strong_preparation():
    data = prepare(read_dataset(shared_dataset("ml-latest-small")), "strong")
    assert data.meta["heldout_users"] == 60  # round(0.1 * 604 users with >= 5 ratings >= 3.5)
    assert data.fit_valid.shape[0] == 604 - 2 * 60


def multi_feedback_dataset(tmp_path):
    from ledrec.data.readers import read_pairs_folder

    (tmp_path / "view.txt").write_text("1 1\n1 2\n1 3\n1 4\n2 1\n2 2\n2 5\n")
    (tmp_path / "buy.txt").write_text("1 1\n1 2\n1 3\n2 1\n2 2\n")
    (tmp_path / "test.txt").write_text("1 4\n2 6\n")  # user 1 viewed item 4 before buying it
    return read_pairs_folder(tmp_path)


def test_multi_feedback_bars_split(tmp_path):
    ds = multi_feedback_dataset(tmp_path)
    item = {s: i for i, s in enumerate(ds.items.ids)}
    data = fixed_split(ds, pretrain_feedback=["view"], valid_fraction=0.5, seed=0)
    # inputs hold every event type, targets only buys, pre-training only views
    assert data.fit_test.nnz == 7  # distinct (user, item) pairs over views and buys (buys were all viewed)
    assert data.targets["fit_test"].nnz == 5 and data.pretrain["fit_test"].nnz == 7
    # validation buys are carved out of every input type and out of the targets
    carved = data.valid.target
    assert data.fit_valid.multiply(sp_rows(carved, data, ds)).nnz == 0
    assert data.targets["fit_valid"].nnz == 5 - carved.nnz
    # exclude="history": user 1's test item 4 was viewed, so it stays a target that can never be ranked
    rows = {u: r for r, u in enumerate(data.test.user_ids)}
    assert data.test.target[rows["1"], item["4"]] == 1
    assert data.test.excluded[rows["1"], item["4"]] == 1
    only_bought = fixed_split(ds, exclude="target")
    assert only_bought.test.excluded[rows["1"], item["4"]] == 0  # viewed but not bought: may be ranked
    assert only_bought.test.excluded[rows["1"], item["1"]] == 1  # bought before: never ranked


def sp_rows(evalset_matrix, data, ds):
    """The validation matrix placed on the training matrix's rows (all users are rows in both here)."""
    import scipy.sparse as sp

    users = {u: i for i, u in enumerate(ds.users.ids)}
    rows = [users[u] for u in data.valid.user_ids]
    out = sp.lil_matrix(data.fit_valid.shape, dtype=np.float32)
    for r, u in enumerate(rows):
        out[u, evalset_matrix[r].indices] = 1
    return out.tocsr()


def test_multi_feedback_prepared_round_trip(tmp_path):
    data = fixed_split(multi_feedback_dataset(tmp_path), pretrain_feedback=["view"], exclude="target")
    data.save(tmp_path / "prep")
    back = PreparedData.load(tmp_path / "prep")
    assert set(back.targets) == {"fit_valid", "fit_test"} and set(back.pretrain) == {"fit_valid", "fit_test"}
    assert (back.test.excluded != data.test.excluded).nnz == 0
    assert set(back.side("fit_test")) == {"targets", "pretrain_matrix"}
