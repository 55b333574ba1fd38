"""Item metadata (``ledrec.data.items``): read by the event readers' rules, ids kept as written, joined onto
tables of item ids in their order, searched by title; every bad file refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ledrec
from ledrec.data.interactions import DataError
from ledrec.data.items import ItemTable, read_items
from tests.conftest import shared_dataset

CSV = """sku,name,genres,img,price,merchant,year
0012,Amélie (2001),Comedy|Romance,http://x/12.jpg,9.99,0007,2001
12,Toy Story (1995),Animation|Children,,4,m1,1995
7,Toy Story 2 (1999),Animation,http://x/7.jpg,5.5,m1,1999
A-3,The Toy Soldier,,http://x/a3.jpg,,m2,
"""


@pytest.fixture()
def csv_file(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_a_csv_keeps_ids_and_codes_as_written_and_finds_roles_by_alias(csv_file):
    items = read_items(csv_file)
    assert items.ids.tolist() == ["0012", "12", "7", "A-3"]  # "0012" and "12" are two items
    assert items.columns.column_names == ["title", "category", "image", "price", "merchant", "year"]
    assert items.roles == ("title", "category", "image", "price")
    types = {f.name: f.type for f in items.columns.schema}
    assert types["price"] == pa.float64() and types["year"] == pa.int64()
    assert types["merchant"] == pa.string()  # "0007" is a code, not the number 7
    assert items.title("0012") == "Amélie (2001)" and items.title(12) == "Toy Story (1995)"
    assert items.title("nope") == "nope"
    assert items.titles(["7", "x"]) == ["Toy Story 2 (1999)", "x"]
    assert items.row("0012") == {
        "id": "0012", "title": "Amélie (2001)", "category": "Comedy|Romance", "image": "http://x/12.jpg",
        "price": 9.99, "merchant": "0007", "year": 2001,
    }  # fmt: skip
    assert items.row("12")["image"] is None and items.row("A-3")["price"] is None
    assert items.row("nope") == dict.fromkeys(["title", "category", "image", "price", "merchant", "year"]) | {
        "id": "nope"
    }
    assert items.category(["0012", "12", "A-3", "nope"]) == ["Comedy", "Animation", None, None]
    assert "0012" in items and "0013" not in items and len(items) == 4
    assert items.index_of(["7", "zz", "0012"]).tolist() == [2, -1, 0]


def test_columns_names_roles_explicitly_and_the_same_from_parquet_and_a_frame(tmp_path):
    frame = pd.DataFrame({"code": ["0012", "0099"], "label": ["First", "Second"], "kind": ["a|b", "c"]})
    items = ItemTable.from_frame(frame, columns={"id": "code", "title": "label", "category": "kind"})
    assert items.ids.tolist() == ["0012", "0099"] and items.title("0099") == "Second"
    assert items.category(["0012"]) == ["a"]
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "items.parquet")
    again = read_items(tmp_path / "items.parquet", columns={"id": "code", "title": "label", "category": "kind"})
    assert again.ids.tolist() == items.ids.tolist() and again.columns.equals(items.columns)
    # a folder of Parquet files; integer ids become their decimal strings
    folder = tmp_path / "folder"
    folder.mkdir()
    pq.write_table(pa.table({"movieId": [1, 2], "title": ["One", "Two"]}), folder / "part-0.parquet")
    pq.write_table(pa.table({"movieId": [10], "title": ["Ten"]}), folder / "part-1.parquet")
    movies = read_items(folder)
    assert sorted(movies.ids.tolist()) == ["1", "10", "2"] and movies.title("10") == "Ten"
    # the simulator's catalogue: an integer category stays an integer, other columns keep their names
    sim = ItemTable.from_frame(pa.table({"item": ["i0", "i1"], "merchant": ["m0", "m1"], "category": [3, 4]}))
    assert sim.columns.column_names == ["category", "merchant"] and sim.category(["i1"]) == ["4"]
    # a named index is a column; JSON lines
    indexed = ItemTable.from_frame(frame.set_index("code"), columns={"id": "code", "title": "label"})
    assert indexed.title("0099") == "Second"
    lines = tmp_path / "items.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in [{"asin": "B01", "title": "Cable"}, {"asin": "B02"}]) + "\n")
    assert read_items(lines).titles(["B01", "B02"]) == ["Cable", "B02"]


def test_join_keeps_the_tables_rows_in_order_with_nulls_for_unknown_ids(csv_file):
    items = read_items(csv_file)
    recs = pa.table({"user": ["u1", "u1", "u2", "u3"], "rank": [1, 2, 1, 1], "item": ["7", "nope", "0012", "7"]})
    joined = items.join(recs)
    assert joined.column_names == [*recs.column_names, *items.columns.column_names]
    assert joined.column("user").to_pylist() == ["u1", "u1", "u2", "u3"]
    assert joined.column("title").to_pylist() == ["Toy Story 2 (1999)", None, "Amélie (2001)", "Toy Story 2 (1999)"]
    assert joined.column("price").to_pylist() == [5.5, None, 9.99, 5.5]
    assert joined.schema.field("price").type == pa.float64()
    # pandas in, an integer key column, a column of the same name refused unless prefixed
    assert items.join(pd.DataFrame({"item": [12, 7]})).column("title").to_pylist()[0] == "Toy Story (1995)"
    with pytest.raises(DataError, match=r"\['price'\] that the table already has; pass prefix="):
        items.join(recs.append_column("price", pa.array([1.0] * 4)))
    prefixed = items.join(recs.append_column("price", pa.array([1.0] * 4)), prefix="item_")
    assert prefixed.column("item_price").to_pylist()[0] == 5.5 and prefixed.column("price").to_pylist()[0] == 1.0
    with pytest.raises(DataError, match="no column 'product'"):
        items.join(recs, on="product")
    empty = items.join(recs.schema.empty_table())
    assert empty.num_rows == 0 and empty.schema.field("title").type == pa.string()


def test_search_finds_every_word_ignoring_case_and_accents_ranked_by_popularity_then_title(csv_file):
    items = read_items(csv_file)
    assert items.search("toy") == ["A-3", "12", "7"]  # by title: "The Toy Soldier" < "Toy Story (1995)" < …
    assert items.search("TOY story") == ["12", "7"]
    assert items.search("amelie") == ["0012"] and items.search("AMÉLIE 2001") == ["0012"]
    assert items.search("toy", popularity=[0, 1, 5, 3]) == ["7", "A-3", "12"]
    assert items.search("toy", limit=1, popularity=np.array([0, 1, 5, 3])) == ["7"]
    assert items.search("batman") == [] and len(items.search("")) == 4
    with pytest.raises(ValueError, match="one number per item"):
        items.search("toy", popularity=[1, 2])
    no_titles = ItemTable.from_frame(pa.table({"item": ["abc-1", "xyz-2"]}))
    assert no_titles.search("xyz") == ["xyz-2"] and no_titles.title("abc-1") == "abc-1"


BAD = {
    "missing": (None, "no such file or directory"),
    "empty": ("", "file is empty"),
    "header only": ("sku,title\n", r"no data rows; columns: \['sku', 'title'\]"),
    "no id": ("title,price\nA,1\n", r"no item id column \(one of item, item_id.*columns: \['title', 'price'\]"),
    "duplicates": (
        "item,title\n1,A\n2,B\n1,C\n2,D\n2,E\n3,F\n",
        r"3 duplicate item id\(s\) \(2 distinct\), e\.g\. '1' on lines 2 and 4",
    ),
    "missing id": ("item,title\n1,A\n,B\n", "line 3: missing item id in column 'item'"),
    "named column absent": ("item,title\n1,A\n", r"'label' \(for title\) not found; columns: \['item', 'title'\]"),
    "ragged": ("item,title\n1,A\n2,B,extra\n", r"Expected 2 columns, got 3.*columns: \['item', 'title'\]"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_one_line_errors_naming_the_file(case, tmp_path):
    text, message = BAD[case]
    path = tmp_path / "items.csv"
    if text is not None:
        path.write_text(text)
    columns = {"title": "label"} if case == "named column absent" else None
    with pytest.raises(DataError, match=message) as caught:
        read_items(path, columns=columns)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_other_bad_inputs_are_one_line_errors(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable Parquet file"):
        read_items(tmp_path / "broken.parquet")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="a folder with no Parquet files"):
        read_items(tmp_path / "nothing")
    with pytest.raises(DataError, match=r"unknown item role\(s\) \['name'\]"):
        ItemTable.from_frame(pa.table({"item": ["a"]}), columns={"name": "item"})
    with pytest.raises(DataError, match=r"'title' is not the title .* names 'label'"):
        ItemTable.from_frame(pa.table({"item": ["a"], "label": ["A"], "title": ["B"]}), columns={"title": "label"})
    with pytest.raises(DataError, match=r"row 2: column 'item' holds 1\.5"):
        ItemTable.from_frame(pa.table({"item": [1.0, 1.5]}))
    assert ItemTable.from_frame(pa.table({"item": [1.0, 2.0]})).ids.tolist() == ["1", "2"]
    assert ledrec.read_items is read_items and ledrec.ItemTable is ItemTable


def test_a_hundred_thousand_items_are_read_searched_and_joined_quickly(tmp_path):
    import time

    n = 100_000
    frame = pd.DataFrame({"sku": [f"{i:07d}" for i in range(n)], "name": [f"Product {i}" for i in range(n)]})
    frame.to_csv(tmp_path / "big.csv", index=False)
    start = time.perf_counter()
    items = read_items(tmp_path / "big.csv")
    assert items.search("product 99999") == ["0099999"]
    keys = pa.table({"item": np.random.default_rng(0).choice(items.ids, 500_000)})
    joined = items.join(keys)
    assert joined.column("title").null_count == 0
    assert time.perf_counter() - start < 10  # ~1 s here; a per-row Python join would take far longer


def test_movielens_movies():
    items = read_items(shared_dataset("ml-latest-small") / "movies.csv")
    assert len(items) == 9742 and items.roles == ("title", "category")
    assert items.title("1") == "Toy Story (1995)" and items.category(["1"]) == ["Adventure"]
    ratings = pd.read_csv(shared_dataset("ml-latest-small") / "ratings.csv", dtype={"movieId": str})
    counts = ratings.movieId.value_counts()
    popularity = counts.reindex(items.ids).fillna(0).to_numpy()
    found = items.search("toy story", popularity=popularity)
    assert found[0] == "1" and {"3114", "78499"} <= set(found)  # Toy Story, then 2 and 3


def test_search_puts_whole_word_matches_first():
    table = ItemTable.from_frame(pa.table({"item": ["a", "b", "c"], "title": ["Film 175", "Film 17", "Toy Story 2"]}))
    assert table.search("film 17", popularity=[9.0, 1.0, 0.0]) == ["b", "a"]  # despite a's popularity
    assert table.search("toy sto") == ["c"]  # prefixes still find
