"""Every reader: real files against SOURCE.md (counts and sha256), small files with known content, and
bad input that must fail with the file and line named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledrec.data.interactions import DataError
from ledrec.data.readers import (
    detect_format,
    read_bars,
    read_dataset,
    read_events,
    read_movielens_csv,
    read_movielens_dat,
    read_movielens_udata,
    read_pairs_folder,
    read_recbole_inter,
)
from ledrec.io import sha256_file
from tests.conftest import shared_dataset, source_checksums


# ============================================================================ real data (skipped when absent)
def _check_sha(folder: Path, *names: str) -> None:
    sums = source_checksums(folder)
    for name in names:
        assert sha256_file(folder / name) == sums[name], f"{name} differs from SOURCE.md"


@pytest.mark.realdata
def test_ml_latest_small_counts_and_checksum():
    folder = shared_dataset("ml-latest-small")
    _check_sha(folder, "ratings.csv", "movies.csv")
    ds = read_dataset(folder)
    data = ds.parts["all"]
    assert ds.format == "movielens-csv"
    assert (len(data), data.n_users, data.n_items) == (100_836, 610, 9_724)
    assert data.rating.mean() == pytest.approx(3.50156, abs=1e-5)
    # last row of the file: 610,170875,3.0,1493846415
    assert (data.users.ids[data.user[-1]], data.items.ids[data.item[-1]]) == ("610", "170875")
    assert (data.rating[-1], data.timestamp[-1]) == (3.0, 1493846415)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name, users, items, parts",
    [
        ("ml-1m-implicit-lcfn", 6_022, 3_043, {"train": 796_244, "valid": 99_455, "test": 99_455}),
        ("gowalla-lightgcn", 29_858, 40_981, {"train": 810_128, "test": 217_242}),
        ("amazon-cds-bgcf", 43_169, 35_648, {"train": 604_475, "test": 172_951}),
        ("amazon-electronics-nbpo", 1_435, 1_522, {"train": 31_887, "test": 4_044}),
    ],
)
def test_bars_datasets_counts_and_checksums(name, users, items, parts):
    folder = shared_dataset(name)
    _check_sha(folder, *(f"{p}.txt" for p in parts))
    ds = read_dataset(folder)
    assert ds.format == "bars"
    assert (len(ds.users), len(ds.items)) == (users, items)
    assert {p: len(v) for p, v in ds.parts.items()} == parts
    # the splits share no (user, item) pair
    keys = [set((v.user.astype(np.int64) * items + v.item).tolist()) for v in ds.parts.values()]
    assert sum(len(k) for k in keys) == len(set().union(*keys))


@pytest.mark.realdata
def test_taobao_pairs_counts_and_checksums():
    folder = shared_dataset("taobao-multibehavior")
    _check_sha(folder, "view.txt", "cart.txt", "buy.txt", "test.txt")
    ds = read_dataset(folder)
    train = ds.parts["train"]
    assert ds.format == "pairs"
    assert train.feedback_types == ("view", "cart", "buy")
    counts = {t: int((train.feedback == k).sum()) for k, t in enumerate(train.feedback_types)}
    assert counts == {"view": 873_954, "cart": 195_476, "buy": 92_180}
    assert (len(ds.users), len(ds.items), len(ds.parts["test"])) == (15_449, 11_953, 15_449)
    assert ds.parts["test"].feedback_types == ("buy",)
    assert ds.items.ids.astype(int).max() == 11_953  # 1-based ids kept as they are


# ============================================================================ small known files
def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_movielens_csv_small(tmp_path):
    f = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,2,3.5,101\n2,10,5,102\n")
    d = read_movielens_csv(f)
    assert list(d.items.ids) == ["2", "10"]  # numeric order, not string order
    assert d.users.ids[d.user].tolist() == ["1", "1", "2"]
    assert d.items.ids[d.item].tolist() == ["10", "2", "10"]
    assert d.rating.tolist() == [4.0, 3.5, 5.0]
    assert d.timestamp.tolist() == [100, 101, 102]


def test_movielens_dat_and_udata(tmp_path):
    dat = read_movielens_dat(write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n"))
    assert dat.items.ids[dat.item].tolist() == ["1193", "661"] and dat.rating.tolist() == [5.0, 3.0]
    ud = read_movielens_udata(write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"))
    assert ud.users.ids[ud.user].tolist() == ["196", "186"] and len(ud) == 2
    assert detect_format(tmp_path / "u.data")[0] == "movielens-udata"


def test_recbole_inter(tmp_path):
    f = write(
        tmp_path / "ml-100k.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n7\t9\t5\t1\n",
    )
    d = read_recbole_inter(f)
    assert d.users.ids.tolist() == ["7", "196"] and d.rating.tolist() == [3.0, 5.0]
    assert read_dataset(tmp_path).format == "recbole-inter"


def test_bars_folder(tmp_path):
    write(tmp_path / "train.txt", "0 1 2 3\n1 0\n")
    write(tmp_path / "test.txt", "0 4\n1 2 3\n")
    ds = read_bars(tmp_path)
    assert ds.is_fixed_split and len(ds.items) == 5
    assert len(ds.parts["train"]) == 4 and len(ds.parts["test"]) == 3
    assert ds.parts["test"].to_csr().toarray().tolist() == [[0, 0, 0, 0, 1], [0, 0, 1, 1, 0]]


def test_pairs_folder(tmp_path):
    write(tmp_path / "view.txt", "1 1\n1 2\n2 3\n")
    write(tmp_path / "buy.txt", "1 2\n")
    write(tmp_path / "test.txt", "2 1\n")
    ds = read_pairs_folder(tmp_path)
    assert ds.parts["train"].feedback_types == ("view", "buy")
    assert ds.parts["test"].feedback_types == ("buy",)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_events_table(tmp_path, suffix):
    rows = {
        "user_id": ["a", "b", "a"],
        "item": [5, 7, 7],
        "event": ["sale", "view", "click"],
        "ts": [3, 1, 2],
        "country": ["FR", "DE", "FR"],
    }
    path = tmp_path / f"events{suffix}"
    table = pa.table(rows)
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    d = read_events(path)
    assert d.feedback_types == ("view", "click", "sale")  # funnel order
    assert np.asarray(d.feedback_types)[d.feedback].tolist() == ["sale", "view", "click"]
    assert d.partitions.ids[d.partition].tolist() == ["FR", "DE", "FR"]
    assert d.timestamp.tolist() == [3, 1, 2]
    assert d.items.ids[d.item].tolist() == ["5", "7", "7"]


# ============================================================================ bad input: file and line named
@pytest.mark.parametrize(
    "text, where, what",
    [
        ("userId,movieId,rating,timestamp\n1,2,3.0,4\n1,3,oops,5\n", ":3:", "rating"),
        ("userId,movieId,rating,timestamp\n1,2,3.0,4\n1,3,4.0\n", ":3:", "expected 4 fields"),
        ("userId,movieId,rating,timestamp\n1,2,3.0,4\n1,,4.0,5\n", ":3:", "missing value"),
        ("userId,movieId,rating,timestamp\n", "", "no data rows"),
        ("", "", "empty"),
        ("user,item,rating,timestamp\n1,2,3,4\n", ":1:", "header"),
    ],
)
def test_movielens_csv_bad_input(tmp_path, text, where, what):
    f = write(tmp_path / "ratings.csv", text)
    with pytest.raises(DataError, match=what) as info:
        read_movielens_csv(f)
    assert str(f) + where in str(info.value)


def test_movielens_dat_bad_input(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::2::3::4\n1::2::x::4\n")
    with pytest.raises(DataError, match=r"ratings.dat:2: 'rating' must be float"):
        read_movielens_dat(f)
    with pytest.raises(DataError, match="empty"):
        read_movielens_dat(write(tmp_path / "e.dat", "\n\n"))


def test_udata_bad_input(tmp_path):
    f = write(tmp_path / "u.data", "1\t2\t3\t4\n5\t6\t7\n")
    with pytest.raises(DataError, match=r"u.data:2: expected 4 fields"):
        read_movielens_udata(f)


def test_recbole_bad_input(tmp_path):
    with pytest.raises(DataError, match=r"x.inter:1: RecBole header has no 'item_id'"):
        read_recbole_inter(write(tmp_path / "x.inter", "user_id:token\trating:float\n1\t2\n"))
    with pytest.raises(DataError, match=r"y.inter:3: 'rating' must be float"):
        read_recbole_inter(
            write(tmp_path / "y.inter", "user_id:token\titem_id:token\trating:float\n1\t2\t3\n1\t3\tx\n")
        )
    with pytest.raises(DataError, match="empty"):
        read_recbole_inter(write(tmp_path / "z.inter", ""))


def test_bars_bad_input(tmp_path):
    write(tmp_path / "test.txt", "0 1\n")
    write(tmp_path / "train.txt", "0 1 2\n1 2 x3\n")
    with pytest.raises(DataError, match=r"train.txt:2: ids must be integers, got 'x3'"):
        read_bars(tmp_path)
    write(tmp_path / "train.txt", "0 1 2\n0 3\n")
    with pytest.raises(DataError, match=r"train.txt:2: user 0 appears on more than one line"):
        read_bars(tmp_path)
    write(tmp_path / "train.txt", "")
    with pytest.raises(DataError, match=r"train.txt: file is empty"):
        read_bars(tmp_path)
    write(tmp_path / "train.txt", "0 2 2\n")
    with pytest.raises(DataError, match="same \\(user, item\\) pair appears twice"):
        read_bars(tmp_path)


def test_pairs_bad_input(tmp_path):
    write(tmp_path / "view.txt", "1 1\n1 2 3\n")
    with pytest.raises(DataError, match=r"view.txt:2: expected 2 fields"):
        read_pairs_folder(tmp_path)
    write(tmp_path / "view.txt", "1 1\nx 2\n")
    with pytest.raises(DataError, match=r"view.txt:2: 'user' must be int"):
        read_pairs_folder(tmp_path)


def test_events_bad_input(tmp_path):
    f = write(tmp_path / "events.csv", "user,sku,event\n1,2,view\n")
    with pytest.raises(DataError, match="missing required column 'item'"):
        read_events(f)
    f = write(tmp_path / "events.csv", "user,item,event\n1,2,view\n3,,click\n")
    with pytest.raises(DataError, match=r"events.csv: line 3: missing value in column 'item'"):
        read_events(f)
    f = write(tmp_path / "events.csv", "user,item,event\n1,2,view\n3,4\n")
    with pytest.raises(DataError, match=r"events.csv:3: expected 3 fields"):
        read_events(f)
    f = write(tmp_path / "events.csv", "user,item,rating\n1,2,good\n")
    with pytest.raises(DataError, match="'rating' must be numeric"):
        read_events(f)
    with pytest.raises(DataError, match="empty"):
        read_events(write(tmp_path / "e.csv", ""))
    pq.write_table(pa.table({"user": [1, None], "item": [1, 2]}), tmp_path / "n.parquet")
    with pytest.raises(DataError, match=r"n.parquet: row 2: missing value in column 'user'"):
        read_events(tmp_path / "n.parquet")


def test_unknown_folder_and_format(tmp_path):
    with pytest.raises(DataError, match="no known dataset files"):
        read_dataset(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        read_dataset(tmp_path / "missing")
    with pytest.raises(DataError, match="unknown format"):
        read_dataset(tmp_path, format="nope")
