"""Readers for the file formats of public recommendation data and for generic event tables.

Every reader returns a :class:`Dataset`: one or more named parts (``"all"`` for a plain event log;
``"train"``/``"valid"``/``"test"`` for fixed splits) that share user and item vocabularies.

Fast paths use pyarrow's CSV reader; when it rejects a file, or the data has holes, a line-by-line scan
finds the first bad line so that the error names the file, the line and what is wrong. Data is never
silently dropped or guessed.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ledrec.data.interactions import DataError, Interactions, Vocabulary, encode_shared

FORMATS = ("movielens-csv", "movielens-dat", "movielens-udata", "recbole-inter", "bars", "pairs", "events")
EVENT_FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv")


@dataclass
class Dataset:
    """Named parts that share vocabularies. ``parts["all"]`` for a plain log, else a fixed split."""

    name: str
    format: str
    path: str
    parts: dict[str, Interactions]

    @property
    def is_fixed_split(self) -> bool:
        return "test" in self.parts

    @property
    def users(self) -> Vocabulary:
        return next(iter(self.parts.values())).users

    @property
    def items(self) -> Vocabulary:
        return next(iter(self.parts.values())).items

    def __repr__(self) -> str:
        inner = "; ".join(f"{k}: {v!r}" for k, v in self.parts.items())
        return f"Dataset({self.name!r}, format={self.format!r}, {inner})"


# --------------------------------------------------------------------------------------------- dispatch
def read_dataset(path: str | os.PathLike[str], format: str | None = None) -> Dataset:
    """Read a dataset file or folder; the format is detected from file names unless ``format`` names it.

    Folders: ``ratings.csv`` / ``ratings.dat`` / ``u.data`` / ``*.inter`` (MovieLens and RecBole);
    ``train.txt`` + ``test.txt`` (+ ``valid.txt``), one line per user (BARS); ``view.txt``/``cart.txt``/
    ``buy.txt`` pair files (+ ``test.txt``); ``events.parquet``/``events.csv``. Files: by name/extension.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    fmt, target = detect_format(path) if format is None else (format, path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    name = path.stem if path.is_file() else path.name
    if fmt == "bars":
        return read_bars(target, name=name)
    if fmt == "pairs":
        return read_pairs_folder(target, name=name)
    if fmt == "events":
        target = _single_file(target, EVENT_FILE_SUFFIXES, "event table")
        return Dataset(name, fmt, str(target), {"all": read_events(target)})
    reader = {
        "movielens-csv": read_movielens_csv,
        "movielens-dat": read_movielens_dat,
        "movielens-udata": read_movielens_udata,
        "recbole-inter": read_recbole_inter,
    }[fmt]
    target = _resolve_ratings_file(target, fmt)
    return Dataset(name, fmt, str(target), {"all": reader(target)})


def detect_format(path: Path) -> tuple[str, Path]:
    if path.is_file():
        n = path.name.lower()
        if n.endswith(".csv") and n.startswith("ratings"):
            return "movielens-csv", path
        if n.endswith(".dat"):
            return "movielens-dat", path
        if n == "u.data":
            return "movielens-udata", path
        if n.endswith(".inter"):
            return "recbole-inter", path
        if n.endswith(EVENT_FILE_SUFFIXES):
            return "events", path
        raise DataError(f"{path}: cannot tell the format from the file name; pass format= (one of {FORMATS})")
    names = {p.name.lower() for p in path.iterdir()}
    if "ratings.csv" in names:
        return "movielens-csv", path / "ratings.csv"
    if "ratings.dat" in names:
        return "movielens-dat", path / "ratings.dat"
    if "u.data" in names:
        return "movielens-udata", path / "u.data"
    if any(n.endswith(".inter") for n in names):
        return "recbole-inter", path
    if names & {"view.txt", "cart.txt", "buy.txt", "click.txt"}:
        return "pairs", path
    if {"train.txt", "test.txt"} <= names:
        return "bars", path
    if any(n.endswith(EVENT_FILE_SUFFIXES) for n in names):
        return "events", path
    raise DataError(
        f"{path}: no known dataset files (ratings.csv, ratings.dat, u.data, *.inter, train.txt+test.txt, "
        "view.txt/buy.txt pair files, events.parquet/csv)"
    )


def _single_file(path: Path, suffixes: Sequence[str], what: str) -> Path:
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if p.name.lower().endswith(tuple(suffixes)))
    preferred = [p for p in found if p.stem.lower() == "events"]
    if preferred:
        return preferred[0]
    if len(found) != 1:
        raise DataError(f"{path}: expected exactly one {what} file ({', '.join(suffixes)}), found {len(found)}")
    return found[0]


def _resolve_ratings_file(path: Path, fmt: str) -> Path:
    if path.is_file():
        return path
    if fmt == "recbole-inter":
        return _single_file(path, (".inter",), "RecBole .inter")
    return path / {"movielens-csv": "ratings.csv", "movielens-dat": "ratings.dat", "movielens-udata": "u.data"}[fmt]


# --------------------------------------------------------------------------------------------- delimited text
@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "int" | "float" | "str"


_PA_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}


def read_delimited(
    path: Path, columns: Sequence[Column], delimiter: str = ",", header: bool = False, replace: bytes | None = None
) -> dict[str, np.ndarray]:
    """Parse a delimited text file with exactly ``len(columns)`` typed fields per line.

    ``replace`` turns a multi-character separator (MovieLens ``::``) into ``delimiter`` first. Any
    problem (wrong field count, a value that is not a number, a missing value) raises :class:`DataError`
    naming the first offending line.
    """
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    if replace is not None:
        raw = raw.replace(replace, delimiter.encode())
    read_opts = pacsv.ReadOptions(
        column_names=[c.name for c in columns], skip_rows=1 if header else 0, block_size=1 << 24
    )
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True)
    convert_opts = pacsv.ConvertOptions(
        column_types={c.name: _PA_TYPES[c.kind] for c in columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(
            io.BytesIO(raw), read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _scan_for_bad_line(path, raw, columns, delimiter, header)
        raise DataError(f"{path}: {exc}") from exc  # the scan found nothing more precise
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows")
    if any(table.column(c.name).null_count for c in columns):
        _scan_for_bad_line(path, raw, columns, delimiter, header)
        raise DataError(f"{path}: missing values")
    return {c.name: table.column(c.name).to_numpy() for c in columns}


def _scan_for_bad_line(path: Path, raw: bytes, columns: Sequence[Column], delimiter: str, header: bool) -> None:
    """Slow path, only run on failure: raise a DataError at the first line that does not parse."""
    parse = {"int": int, "float": float, "str": str}
    for lineno, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if header and lineno == 1:
            continue
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) != len(columns):
            raise DataError(
                f"{path}:{lineno}: expected {len(columns)} fields "
                f"({', '.join(c.name for c in columns)}), found {len(fields)}: {line[:80]!r}"
            )
        for col, value in zip(columns, fields, strict=True):
            value = value.strip()
            if value == "":
                raise DataError(f"{path}:{lineno}: missing value for {col.name!r}")
            try:
                parse[col.kind](value)
            except ValueError:
                raise DataError(f"{path}:{lineno}: {col.name!r} must be {col.kind}, got {value!r}") from None


def _header_of(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().strip()


RATING_COLUMNS = [Column("user", "int"), Column("item", "int"), Column("rating", "float"), Column("timestamp", "int")]


def _ratings(cols: dict[str, np.ndarray], path: Path) -> Interactions:
    users, (u,) = encode_shared(cols["user"])
    items, (i,) = encode_shared(cols["item"])
    return Interactions(
        user=u,
        item=i,
        users=users,
        items=items,
        feedback_types=("rating",),
        rating=cols["rating"].astype(np.float32),
        timestamp=cols["timestamp"].astype(np.int64),
        source=str(path),
    )


def read_movielens_csv(path: str | os.PathLike[str]) -> Interactions:
    """MovieLens ``ratings.csv`` (ml-latest, ml-latest-small, ml-20m, ml-25m): ``userId,movieId,rating,timestamp``."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty" if path.is_file() else f"{path}: no such file")
    head = [h.strip() for h in _header_of(path).split(",")]
    if head != ["userId", "movieId", "rating", "timestamp"]:
        raise DataError(f"{path}:1: header must be 'userId,movieId,rating,timestamp', found {','.join(head)!r}")
    return _ratings(read_delimited(path, RATING_COLUMNS, ",", header=True), path)


def read_movielens_dat(path: str | os.PathLike[str]) -> Interactions:
    """MovieLens ``ratings.dat`` (ml-1m, ml-10m): ``UserID::MovieID::Rating::Timestamp``, no header."""
    path = Path(path)
    return _ratings(read_delimited(path, RATING_COLUMNS, "\t", replace=b"::"), path)


def read_movielens_udata(path: str | os.PathLike[str]) -> Interactions:
    """MovieLens-100k ``u.data``: ``user<TAB>item<TAB>rating<TAB>timestamp``, no header."""
    path = Path(path)
    return _ratings(read_delimited(path, RATING_COLUMNS, "\t"), path)


def read_recbole_inter(path: str | os.PathLike[str]) -> Interactions:
    """RecBole atomic ``.inter`` file: tab-separated, typed header such as ``user_id:token item_id:token
    rating:float timestamp:float``. User and item columns are required; rating and timestamp optional."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty" if path.is_file() else f"{path}: no such file")
    header = _header_of(path).split("\t")
    names = [h.split(":")[0] for h in header]
    kinds = {"token": "str", "float": "float", "token_seq": "str", "float_seq": "str"}
    cols = []
    for h in header:
        if ":" not in h:
            raise DataError(f"{path}:1: RecBole header fields look like 'name:type', found {h!r}")
        name, typ = h.split(":", 1)
        if typ not in kinds:
            raise DataError(f"{path}:1: unknown RecBole field type {typ!r} in {h!r}")
        cols.append(Column(name, kinds[typ]))
    for required in ("user_id", "item_id"):
        if required not in names:
            raise DataError(f"{path}:1: RecBole header has no {required!r} column (found {names})")
    data = read_delimited(path, cols, "\t", header=True)
    users, (u,) = encode_shared(_maybe_int(data["user_id"]))
    items, (i,) = encode_shared(_maybe_int(data["item_id"]))
    return Interactions(
        user=u,
        item=i,
        users=users,
        items=items,
        feedback_types=("rating",) if "rating" in data else ("interaction",),
        rating=data["rating"].astype(np.float32) if "rating" in data else None,
        timestamp=data["timestamp"].astype(np.int64) if "timestamp" in data else None,
        source=str(path),
    )


def _maybe_int(values: np.ndarray) -> np.ndarray:
    """Token ids that are all integers are kept numeric so that vocabularies sort 1, 2, 10."""
    try:
        return values.astype(np.int64)
    except (ValueError, TypeError):
        return values


# --------------------------------------------------------------------------------------------- BARS lines
def read_user_lines(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One line per user, ``user item item ...`` (whitespace-separated integers). Returns (users, items) pairs.

    A line with a user and no items is allowed (that user has nothing in this file).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    users: list[int] = []
    counts: list[int] = []
    items: list[np.ndarray] = []
    seen: set[int] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = np.array(line.split(), dtype=np.int64)
        except ValueError:
            bad = next(t for t in line.split() if not t.lstrip("-").isdigit())
            raise DataError(f"{path}:{lineno}: ids must be integers, got {bad!r}") from None
        if (values < 0).any():
            raise DataError(f"{path}:{lineno}: ids must be non-negative")
        if values[0] in seen:
            raise DataError(f"{path}:{lineno}: user {values[0]} appears on more than one line")
        seen.add(int(values[0]))
        users.append(int(values[0]))
        counts.append(len(values) - 1)
        items.append(values[1:])
    return np.repeat(np.array(users, dtype=np.int64), counts), np.concatenate(items)


def read_bars(path: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """BARS fixed split: ``train.txt``, ``test.txt`` and optionally ``valid.txt``, one line per user.

    Vocabularies cover the union of all files; ids keep their numeric order (the files are already remapped).
    """
    path = Path(path)
    files = {part: path / f"{part}.txt" for part in ("train", "valid", "test") if (path / f"{part}.txt").is_file()}
    if "train" not in files or "test" not in files:
        raise DataError(f"{path}: BARS format needs train.txt and test.txt")
    pairs = {part: read_user_lines(f) for part, f in files.items()}
    users, ucodes = encode_shared(*(p[0] for p in pairs.values()))
    items, icodes = encode_shared(*(p[1] for p in pairs.values()))
    parts = {}
    for (part, f), u, i in zip(files.items(), ucodes, icodes, strict=True):
        inter = Interactions(user=u, item=i, users=users, items=items, source=str(f))
        _reject_duplicates(inter, f)
        parts[part] = inter
    return Dataset(name or path.name, "bars", str(path), parts)


def _reject_duplicates(inter: Interactions, path: Path) -> None:
    key = inter.user.astype(np.int64) * inter.n_items + inter.item
    if len(np.unique(key)) != len(key):
        raise DataError(f"{path}: the same (user, item) pair appears twice")


# --------------------------------------------------------------------------------------------- pair files
PAIR_FEEDBACK_FILES = ("view", "click", "cart", "buy", "sale")


def read_pairs(files: dict[str, str | os.PathLike[str]]) -> Dataset:
    """Pair files (``user item`` per line), one per feedback type; a ``test`` entry becomes the test part.

    Example: ``read_pairs({"view": "view.txt", "cart": "cart.txt", "buy": "buy.txt", "test": "test.txt"})``.
    The feedback types keep the order given (put the target type last by convention).
    """
    columns = [Column("user", "int"), Column("item", "int")]
    raw = {kind: read_delimited(Path(f), columns, " ") for kind, f in files.items()}
    users, ucodes = encode_shared(*(r["user"] for r in raw.values()))
    items, icodes = encode_shared(*(r["item"] for r in raw.values()))
    # Test pairs are of the target behaviour: the last feedback type given.
    target = [k for k in files if k != "test"][-1]
    events = []
    test = None
    for (kind, f), u, i in zip(files.items(), ucodes, icodes, strict=True):
        inter = Interactions(
            user=u,
            item=i,
            users=users,
            items=items,
            feedback_types=(target if kind == "test" else kind,),
            source=str(f),
        )
        if kind == "test":
            test = inter
        else:
            events.append(inter)
    parts = {"train": Interactions.concat(events)} if test is not None else {"all": Interactions.concat(events)}
    if test is not None:
        parts["test"] = test
    first = Path(next(iter(files.values())))
    return Dataset(first.parent.name, "pairs", str(first.parent), parts)


def read_pairs_folder(path: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """A folder of pair files named after feedback types (``view.txt``, ``cart.txt``, ``buy.txt``…) and
    ``test.txt``. ``train.txt`` (Taobao: identical to ``buy.txt``) and ``valid.txt`` (Taobao: every pair is
    also in train, so it is no hold-out) are ignored: carve validation from train instead."""
    path = Path(path)
    files: dict[str, Path] = {k: path / f"{k}.txt" for k in PAIR_FEEDBACK_FILES if (path / f"{k}.txt").is_file()}
    if not files:
        raise DataError(f"{path}: no pair files named {', '.join(k + '.txt' for k in PAIR_FEEDBACK_FILES)}")
    if (path / "test.txt").is_file():
        files["test"] = path / "test.txt"
    ds = read_pairs(files)
    ds.name = name or path.name
    return ds


# --------------------------------------------------------------------------------------------- event tables
EVENT_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userId", "uid"),
    "item": ("item", "item_id", "itemId", "product", "product_id", "movieId"),
    "event": ("event", "event_type", "feedback", "type", "behavior"),
    "timestamp": ("timestamp", "ts", "time", "event_time"),
    "partition": ("partition", "country", "merchant", "catalog"),
    "rating": ("rating",),
}


def read_events(
    path: str | os.PathLike[str], columns: dict[str, str] | None = None, default_event: str = "interaction"
) -> Interactions:
    """A generic event table in Parquet or CSV: columns ``user``, ``item`` (required), ``event``,
    ``timestamp``, ``partition``, ``rating`` (optional). Common aliases are recognised (``user_id``,
    ``item_id``, ``country``, …); ``columns={"user": "visitor"}`` names others explicitly.

    Event names become feedback types; known ones (view, display, click, cart, sale, buy) come first in
    funnel order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    table = _read_table(path)
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows")
    chosen = choose_columns(table.column_names, columns, str(path))
    first_row = 2 if path.suffix.lower() in (".csv", ".tsv") else 1  # 1-based line of the first data row
    return events_from_table(table, chosen, str(path), default_event, first_row)


def choose_columns(present: Sequence[str], columns: dict[str, str] | None, where: str) -> dict[str, str]:
    """Role (user, item, event, timestamp, partition, rating) → column name: ``columns`` where given, else
    the first alias present (:data:`EVENT_COLUMN_ALIASES`); DataError without a user or item column."""
    present_set = set(present)
    chosen: dict[str, str] = {}
    for role, aliases in EVENT_COLUMN_ALIASES.items():
        explicit = (columns or {}).get(role)
        if explicit is not None:
            if explicit not in present_set:
                raise DataError(f"{where}: column {explicit!r} (for {role}) not found; columns: {sorted(present_set)}")
            chosen[role] = explicit
        else:
            hit = next((a for a in aliases if a in present_set), None)
            if hit is not None:
                chosen[role] = hit
    for role in ("user", "item"):
        if role not in chosen:
            raise DataError(
                f"{where}: missing required column {role!r} (or one of {EVENT_COLUMN_ALIASES[role]}); "
                f"columns: {sorted(present_set)}"
            )
    return chosen


def events_from_table(
    table: pa.Table, chosen: dict[str, str], where: str, default_event: str = "interaction", first_row: int = 1
) -> Interactions:
    """The :class:`Interactions` of an Arrow table whose columns ``chosen`` names (:func:`choose_columns`);
    ``first_row``: the file line of the table's first row, for error messages (2 in a CSV with a header)."""
    unit = "line" if first_row == 2 else "row"

    def column(role: str) -> pa.ChunkedArray:
        col = table.column(chosen[role])
        if col.null_count:
            first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{where}: {unit} {first + first_row}: missing value in column {chosen[role]!r}")
        return col

    users, u = _encode_arrow(column("user"))
    items, i = _encode_arrow(column("item"))
    feedback = None
    feedback_types: tuple[str, ...] = (default_event,)
    if "event" in chosen:
        types, codes = _encode_arrow(column("event"))
        if len(types) > 127:
            raise DataError(f"{where}: {len(types)} distinct event types; at most 127 are supported")
        # Known types in funnel order (view before click before sale), unknown ones after, by name.
        order = sorted(range(len(types)), key=lambda k: (_funnel_rank(types.ids[k]), types.ids[k]))
        feedback_types = tuple(str(types.ids[k]) for k in order)
        feedback = np.argsort(order).astype(np.int8)[codes]
    timestamp = None
    if "timestamp" in chosen:
        timestamp = _timestamps(column("timestamp"), where, chosen["timestamp"])
    partition, partitions = None, None
    if "partition" in chosen:
        partitions, partition = _encode_arrow(column("partition"))
    rating = None
    if "rating" in chosen:
        col = column("rating")
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            raise DataError(f"{where}: column {chosen['rating']!r} must be numeric, found {col.type}")
        rating = col.to_numpy().astype(np.float32)
    return Interactions(
        user=u,
        item=i,
        users=users,
        items=items,
        feedback=feedback,
        feedback_types=feedback_types,
        rating=rating,
        timestamp=timestamp,
        partition=partition,
        partitions=partitions,
        source=where,
    )


FUNNEL = ("view", "display", "click", "cart", "sale", "buy")


def _funnel_rank(name: str) -> int:
    return FUNNEL.index(name) if name in FUNNEL else len(FUNNEL)


def _read_table(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        delimiter = "\t" if suffix == ".tsv" else ","
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        if suffix in (".csv", ".tsv"):
            _scan_header_table(path, "\t" if suffix == ".tsv" else ",")
        raise DataError(f"{path}: {exc}") from exc


def _scan_header_table(path: Path, delimiter: str) -> None:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline().rstrip("\n").split(delimiter)
        for lineno, line in enumerate(f, start=2):
            if line.strip() and len(line.rstrip("\n").split(delimiter)) != len(header):
                raise DataError(
                    f"{path}:{lineno}: expected {len(header)} fields like the header, "
                    f"found {len(line.rstrip(chr(10)).split(delimiter))}"
                )


def _encode_arrow(col: pa.ChunkedArray) -> tuple[Vocabulary, np.ndarray]:
    """Vocabulary + int32 codes of an Arrow column: integer ids sort numerically, others as strings."""
    if pa.types.is_integer(col.type):
        return Vocabulary.encode(col.to_numpy())
    col = pc.cast(col, pa.string())
    uniques = pc.unique(col)
    uniques = uniques.take(pc.sort_indices(uniques))
    codes = pc.index_in(col, value_set=uniques).to_numpy().astype(np.int32)
    return Vocabulary(np.asarray(uniques.to_numpy(zero_copy_only=False)).astype(str)), codes


def _timestamps(col: pa.ChunkedArray, path: Path | str, name: str) -> np.ndarray:
    """Seconds since the epoch from an integer, float or timestamp column."""
    if pa.types.is_timestamp(col.type):
        return pc.cast(pc.cast(col, pa.timestamp("s")), pa.int64()).to_numpy()
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return col.to_numpy().astype(np.int64)
    raise DataError(f"{path}: column {name!r} must be a number of seconds or a timestamp, found {col.type}")
