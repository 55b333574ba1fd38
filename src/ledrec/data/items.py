"""Item metadata: an optional table of what each item id *is* (title, category, image, price, …).

Models, indexes and services only know item ids; people judge recommendations by looking at them (the
paper's Figure 8 and §9.4). :class:`ItemTable` is the one place that turns ids back into things to look
at: read from the files item catalogues come in (MovieLens ``movies.csv``, the simulator's
``items.parquet``, a product feed), with the event readers' rules — columns found by name, ids kept as
strings, bad input refused in one line naming the file — and joined onto any table of item ids
(``ledrec recommend --items``, API frames, pages).

Roles (:data:`ITEM_COLUMN_ALIASES`): ``id`` (required), ``title``, ``category``, ``image``, ``price``. A
role's column is renamed to the role; every other column keeps its own name (``merchant``, ``country``,
…). Ids are strings whatever the file stores (``"0012"`` stays ``"0012"``; an integer id 1 is ``"1"``,
which is how every model of this package names items read from an integer column).
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ledrec.data.interactions import DataError
from ledrec.data.readers import arrow_reason, unreadable, warn_if_cut

ITEM_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": (
        "item", "item_id", "itemId", "itemid", "product", "product_id", "movieId", "movie_id", "sku", "asin", "id",
    ),
    "title": ("title", "name", "product_name"),
    "category": ("category", "categories", "genre", "genres", "category_id"),
    "image": ("image", "image_url", "img", "thumbnail", "picture"),
    "price": ("price",),
}  # fmt: skip
ROLES = tuple(ITEM_COLUMN_ALIASES)
TEXT_ROLES = ("title", "category", "image")  # read as text from CSV whatever they look like
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")
# a number as a writer prints it: no leading zero ("0012" is a code, not 12), optional fraction and exponent
_NUMBER = r"^[-+]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_INTEGER = r"^[-+]?(0|[1-9][0-9]*)$"


def read_items(path: str | os.PathLike[str], columns: dict[str, str] | None = None) -> ItemTable:
    """The item table in ``path``: CSV / TSV, Parquet (a file or a folder of files) or JSON lines.

    ``columns`` names a role's column explicitly (``{"title": "label"}``); otherwise the first alias
    present is taken (:data:`ITEM_COLUMN_ALIASES`). Raises :class:`DataError` (one line: the file, what
    is wrong, the columns present) for a missing or empty file, no id column, duplicate or missing ids,
    or a named column that is absent.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    table, first_line = _read(path, columns)
    return ItemTable.from_frame(table, columns, where=str(path), first_line=first_line)


@dataclass(frozen=True, eq=False)
class ItemTable:
    """Item ids (unique strings) and their metadata, aligned row by row.

    ``columns`` holds the metadata only (no id column): the roles present under their role names
    (``title``, ``category``, ``image``, ``price``), then every other column under its own name. Lookups
    by id go through a dict built once, so a table of 100k items answers a page of ids in microseconds and
    :meth:`join` is one hash lookup in Arrow, with no Python loop over rows.
    """

    ids: np.ndarray
    columns: pa.Table
    source: str = "item table"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", np.asarray(self.ids).astype(str))
        index = {item: k for k, item in enumerate(self.ids.tolist())}
        if len(index) != len(self.ids):
            raise DataError(_duplicates_message(self.ids, self.source, 1, "row"))
        if self.columns.num_columns and self.columns.num_rows != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids but {self.columns.num_rows} metadata rows")
        object.__setattr__(self, "_index", index)

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def read(cls, path: str | os.PathLike[str], columns: dict[str, str] | None = None) -> ItemTable:
        """:func:`read_items`."""
        return read_items(path, columns)

    @classmethod
    def from_frame(
        cls, frame: Any, columns: dict[str, str] | None = None, *, where: str = "item table", first_line: int = 1
    ) -> ItemTable:
        """An item table from a pandas DataFrame or an Arrow table, by the rules of :func:`read_items`
        (a DataFrame's named index counts as a column: ``movies.set_index("movieId")`` works).
        ``first_line``: the file line of the first row, for error messages (2 in a CSV with a header)."""
        table = _arrow(frame)
        if table.num_rows == 0:
            raise DataError(f"{where}: no data rows; columns: {table.column_names}")
        chosen = choose_item_columns(table.column_names, columns, where)
        ids = _ids(table.column(chosen["id"]), where, chosen["id"], first_line)
        taken = set(chosen.values())
        names, arrays = [], []
        for role in ROLES[1:]:
            if role in chosen:
                names.append(role)
                arrays.append(_role_column(table.column(chosen[role]), role))
        for name in table.column_names:
            if name in taken:
                continue
            if name in names:
                raise DataError(
                    f"{where}: column {name!r} is not the {name} (columns= names {chosen[name]!r}) and would take "
                    f"its name; rename one of them; columns: {table.column_names}"
                )
            names.append(name)
            arrays.append(table.column(name))
        if len(np.unique(ids)) != len(ids):
            raise DataError(_duplicates_message(ids, where, first_line, "line" if first_line == 2 else "row"))
        return cls(ids, pa.table(arrays, names=names) if names else table.select([]), where)

    # ------------------------------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self._index

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles this table has besides ``id`` (a subset of title, category, image, price)."""
        return tuple(r for r in ROLES[1:] if r in self.columns.column_names)

    def index_of(self, item_ids: Iterable[Any]) -> np.ndarray:
        """Row of each id in this table, -1 for an id it does not hold (int64)."""
        keys = pa.array(np.asarray(list(item_ids) if not isinstance(item_ids, np.ndarray) else item_ids).astype(str))
        return pc.index_in(keys, value_set=self._id_array).fill_null(-1).to_numpy().astype(np.int64)

    def title(self, item_id: Any) -> str:
        """The item's title; the id itself when the table has no title for it (or does not know it), so
        that a page always has something to show."""
        k = self._index.get(str(item_id))
        return str(item_id) if k is None else self._titles[k]

    def titles(self, item_ids: Iterable[Any]) -> list[str]:
        """:meth:`title` of each id."""
        titles, get = self._titles, self._index.get
        out = []
        for item in item_ids:
            k = get(str(item))
            out.append(str(item) if k is None else titles[k])
        return out

    def row(self, item_id: Any) -> dict[str, Any]:
        """``{"id": …, role or column: value}`` of one item, every value None for an id the table does not
        hold (the same keys either way, so a template needs no special case)."""
        k = self._index.get(str(item_id))
        if k is None:
            return {"id": str(item_id)} | dict.fromkeys(self.columns.column_names)
        return {"id": str(item_id)} | {name: values[0] for name, values in self.columns.slice(k, 1).to_pydict().items()}

    def category(self, item_ids: Iterable[Any]) -> list[str | None]:
        """The first category of each id (``"Animation"`` of ``"Animation|Children"``, the first element of
        a list column), for colouring a plot by one category; None for unknown ids or no category. The full
        value stays in :meth:`row` and :meth:`join`."""
        firsts = self._first_categories
        return [None if k < 0 else firsts[k] for k in self.index_of(item_ids)]

    def search(self, text: str, limit: int = 20, popularity: Sequence[float] | np.ndarray | None = None) -> list[str]:
        """Ids whose title holds every word of ``text``, ignoring case and accents ("amelie" finds
        "Amélie"); those holding them as whole words first, then the most popular (``popularity``: one
        number per id of :attr:`ids`, e.g. event counts), then by title. An empty ``text`` matches every
        item. Items without a title are found by id."""
        words = _fold(text).split()
        hit = np.ones(len(self.ids), dtype=bool)
        for word in words:
            hit &= pc.match_substring(self._folded, word).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(hit)
        if popularity is None:
            pop = np.zeros(len(rows))
        else:
            pop = np.asarray(popularity, dtype=np.float64)
            if pop.shape != (len(self.ids),):
                raise ValueError(f"popularity has shape {pop.shape}; one number per item ({len(self.ids)}) is needed")
            pop = pop[rows]
        # titles holding each word as a whole word first ("17" finds "Film 17" before "Film 175")
        whole = np.ones(len(rows), dtype=bool)
        for word in words:
            pattern = rf"(^|[^\w]){re.escape(word)}($|[^\w])"
            whole &= pc.match_substring_regex(self._folded.take(rows), pattern).to_numpy(zero_copy_only=False)
        order = np.lexsort((self._title_rank[rows], -pop, ~whole))
        return self.ids[rows[order[: max(int(limit), 0)]]].tolist()

    def join(self, table: Any, on: str = "item", prefix: str = "") -> pa.Table:
        """``table`` (Arrow or pandas) with this table's columns added for the ids in its column ``on``: a
        left join, ``table``'s rows in their order, nulls where the id is unknown. A metadata column whose
        name (after ``prefix``) ``table`` already has is refused, never silently overwritten or renamed."""
        left = _arrow(table)
        if on not in left.column_names:
            raise DataError(f"join: no column {on!r} to join item metadata on; columns: {left.column_names}")
        names = [prefix + name for name in self.columns.column_names]
        clash = sorted(set(names) & set(left.column_names))
        if clash:
            raise DataError(
                f"join: {self.source} has column(s) {clash} that the table already has; pass prefix= "
                f"(e.g. prefix='item_') to keep both; columns: {left.column_names}"
            )
        keys = left.column(on)
        if not (pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type)):
            keys = pc.cast(keys, pa.string())
        rows = pc.index_in(keys, value_set=self._id_array)
        extra = self.columns.take(rows)
        for name, column in zip(names, extra.columns, strict=True):
            left = left.append_column(name, column)
        return left

    # ------------------------------------------------------------------------------------------ caches
    @cached_property
    def _id_array(self) -> pa.Array:
        return pa.array(self.ids, pa.string())

    @cached_property
    def _titles(self) -> list[str]:
        if "title" not in self.columns.column_names:
            return self.ids.tolist()
        return pc.coalesce(self.columns.column("title"), self._id_array).to_pylist()

    @cached_property
    def _folded_list(self) -> list[str]:
        return [_fold(t) for t in self._titles]

    @cached_property
    def _folded(self) -> pa.Array:
        return pa.array(self._folded_list, pa.string())

    @cached_property
    def _title_rank(self) -> np.ndarray:
        """Each row's place in title order (folded, then as written, then by id): a sort key for search."""
        order = np.lexsort((self.ids, np.array(self._titles, dtype=str), np.array(self._folded_list, dtype=str)))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank

    @cached_property
    def _first_categories(self) -> list[str | None]:
        if "category" not in self.columns.column_names:
            return [None] * len(self.ids)
        col = self.columns.column("category")
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            return [None if not v else str(v[0]) for v in col.to_pylist()]
        text = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
        first = pc.list_element(pc.split_pattern(text, "|"), 0)
        return [v.strip() if v else None for v in first.to_pylist()]

    def __repr__(self) -> str:
        return f"ItemTable({len(self.ids)} items, columns={self.columns.column_names}, source={self.source!r})"


def choose_item_columns(present: Sequence[str], columns: dict[str, str] | None, where: str) -> dict[str, str]:
    """Role → column name: ``columns`` where given, else the first alias present
    (:data:`ITEM_COLUMN_ALIASES`); DataError for an unknown role, a named column that is absent, or no id."""
    present_list = list(present)
    unknown = sorted(set(columns or {}) - set(ROLES))
    if unknown:
        raise DataError(f"{where}: unknown item role(s) {unknown} in columns=; roles: {list(ROLES)}")
    chosen: dict[str, str] = {}
    for role, aliases in ITEM_COLUMN_ALIASES.items():
        explicit = (columns or {}).get(role)
        if explicit is not None:
            if explicit not in present_list:
                raise DataError(f"{where}: column {explicit!r} (for {role}) not found; columns: {present_list}")
            chosen[role] = explicit
        else:
            hit = next((a for a in aliases if a in present_list and a not in chosen.values()), None)
            if hit is not None:
                chosen[role] = hit
    if "id" not in chosen:
        raise DataError(
            f"{where}: no item id column (one of {', '.join(ITEM_COLUMN_ALIASES['id'])}, or name it with "
            f"columns={{'id': ...}}); columns: {present_list}"
        )
    doubled = sorted({c for c in chosen.values() if list(chosen.values()).count(c) > 1})
    if doubled:
        raise DataError(f"{where}: column(s) {doubled} named for more than one role: {chosen}")
    return chosen


# ---------------------------------------------------------------------------------------------- reading
def _read(path: Path, columns: dict[str, str] | None) -> tuple[pa.Table, int]:
    """The file's table and the line of its first row (2 for a delimited file with a header, else 1)."""
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in PARQUET_SUFFIXES:
        return _read_parquet(path), 1
    if suffix in JSON_SUFFIXES:
        import pyarrow.json as pajson

        try:
            return pajson.read_json(path), 1
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not readable as JSON lines ({arrow_reason(exc)})") from None
    if suffix in CSV_SUFFIXES or not suffix:
        return _read_csv(path, "\t" if suffix == ".tsv" else ",", columns), 2
    raise DataError(
        f"{path}: cannot tell the format from the name; item tables are CSV/TSV, Parquet (a file or folder) or "
        f"JSON lines ({', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES + JSON_SUFFIXES)})"
    )


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    if path.is_dir() and not any(p.suffix.lower() in PARQUET_SUFFIXES for p in path.rglob("*")):
        raise DataError(f"{path}: a folder with no Parquet files; pass the item file itself")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(path, exc, "Parquet") from None


def _read_csv(path: Path, delimiter: str, columns: dict[str, str] | None) -> pa.Table:
    """Every column read as text first — an id or code "0012" must not become the number 12 —, then a
    column that is all numbers as a writer prints them (no leading zero) becomes numeric, like a price."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        header = next(csv.reader(f, delimiter=delimiter), [])
    if not any(h.strip() for h in header):
        raise DataError(f"{path}: no header line (the first line must name the columns)")
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: {arrow_reason(exc)}; columns: {header}") from None
    warn_if_cut(path)
    roles = choose_item_columns(table.column_names, columns, str(path))
    text = {roles[r] for r in ("id", *TEXT_ROLES) if r in roles}
    for k, name in enumerate(table.column_names):
        if name not in text:
            table = table.set_column(k, name, _numeric_if_numbers(table.column(k), plain=name != roles.get("price")))
    return table


def _numeric_if_numbers(col: pa.ChunkedArray, plain: bool = True) -> pa.ChunkedArray:
    """int64 when every value is a whole number, float64 when every value is a number, else the text.
    ``plain``: numbers must be written without leading zeros (a code "007" stays text); a price need not."""
    values = col.drop_null()
    if len(values) == 0:
        return col
    pattern = _NUMBER if plain else r"^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$"
    if not pc.all(pc.match_substring_regex(pc.utf8_trim_whitespace(values), pattern)).as_py():
        return col
    whole = plain and pc.all(pc.match_substring_regex(pc.utf8_trim_whitespace(values), _INTEGER)).as_py()
    try:
        return pc.cast(pc.utf8_trim_whitespace(col), pa.int64() if whole else pa.float64())
    except pa.ArrowInvalid:  # a whole number beyond int64: a code, kept as written
        return col


def _arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(frame, pd.DataFrame):
        try:
            return pa.Table.from_pandas(frame, preserve_index=None)
        except pa.ArrowException as exc:  # a column of mixed kinds (ints and strings)
            raise DataError(f"item table: {arrow_reason(exc)}; columns: {list(frame.columns)}") from None
    raise TypeError(f"an item table is a pandas DataFrame or a pyarrow Table, not {type(frame).__name__}")


def _role_column(col: pa.ChunkedArray, role: str) -> pa.ChunkedArray:
    """Title and image as text (whatever a Parquet writer stored); category and price as they are."""
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if role in ("title", "image") and not pa.types.is_string(col.type):
        try:
            col = pc.cast(col, pa.string())
        except pa.ArrowException:
            pass  # (a struct or list: kept as it is)
    return col


def _ids(col: pa.ChunkedArray, where: str, name: str, first_line: int) -> np.ndarray:
    """The id column as a numpy array of str; a missing id is a DataError naming its line or row."""
    unit = "line" if first_line == 2 else "row"
    if col.null_count:
        first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{where}: {unit} {first + first_line}: missing item id in column {name!r}")
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if pa.types.is_floating(col.type):
        values = col.to_numpy()
        bad = values != np.round(values)
        if bad.any():
            raise DataError(
                f"{where}: {unit} {int(np.flatnonzero(bad)[0]) + first_line}: column {name!r} holds "
                f"{float(values[bad][0])!r}: ids must be integers or strings"
            )
        col = pa.chunked_array([pa.array(values.astype(np.int64))])
    if not pa.types.is_string(col.type):
        try:
            col = pc.cast(col, pa.string())
        except pa.ArrowException as exc:
            raise DataError(f"{where}: column {name!r} ({col.type}) cannot be ids: {arrow_reason(exc)}") from None
    return np.asarray(col.to_numpy(zero_copy_only=False)).astype(str)


def _duplicates_message(ids: np.ndarray, where: str, first_line: int, unit: str) -> str:
    uniques, first, counts = np.unique(ids, return_index=True, return_counts=True)
    repeated = counts > 1
    example = uniques[repeated][np.argmin(first[repeated])]
    lines = np.flatnonzero(ids == example)[:2] + first_line
    return (
        f"{where}: {int((counts[repeated] - 1).sum())} duplicate item id(s) ({int(repeated.sum())} distinct), "
        f"e.g. {str(example)!r} on {unit}s {lines[0]} and {lines[1]}; item ids must be unique"
    )


def _fold(text: str) -> str:
    """Lower case without accents: the form titles and queries are compared in."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
