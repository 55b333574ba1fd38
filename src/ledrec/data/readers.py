"""Readers for the file formats of public recommendation data and for generic event tables.

Every reader returns a :class:`Dataset`: one or more named parts (``"all"`` for a plain event log;
``"train"``/``"valid"``/``"test"`` for fixed splits) that share user and item vocabularies.

Fast paths use pyarrow's CSV reader; when it rejects a file, or the data has holes, a line-by-line scan
finds the first bad line so that the error names the file, the line and what is wrong. Data is never
silently dropped or guessed.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ledrec.data.interactions import DataError, Interactions, Vocabulary, encode_shared

log = logging.getLogger(__name__)
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
        timestamp=numeric_seconds(cols["timestamp"], str(path), "timestamp"),
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
        timestamp=numeric_seconds(data["timestamp"], str(path), "timestamp") if "timestamp" in data else None,
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
    table: pa.Table,
    chosen: dict[str, str],
    where: str,
    default_event: str = "interaction",
    first_row: int = 1,
    time_unit: TimeUnit | None = None,
) -> Interactions:
    """The :class:`Interactions` of an Arrow table whose columns ``chosen`` names (:func:`choose_columns`);
    ``first_row``: the file line of the table's first row, for error messages (2 in a CSV with a header);
    ``time_unit``: the timestamp column's unit when the caller has decided it over more than this table
    (a streamed log: :class:`~ledrec.data.stream.EventSource`), else :func:`time_unit` decides it here."""
    check_column_types({name: table.schema.field(name).type for name in chosen.values()}, chosen, where)
    unit = "line" if first_row == 2 else "row"

    def column(role: str) -> pa.ChunkedArray:
        col = table.column(chosen[role])
        if col.null_count:
            first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{where}: {unit} {first + first_row}: missing value in column {chosen[role]!r}")
        return col

    users, u = _encode_arrow(column("user"), where, chosen["user"])
    items, i = _encode_arrow(column("item"), where, chosen["item"])
    feedback = None
    feedback_types: tuple[str, ...] = (default_event,)
    if "event" in chosen:
        types, codes = _encode_arrow(column("event"), where, chosen["event"])
        if len(types) > 127:
            raise DataError(f"{where}: {len(types)} distinct event types; at most 127 are supported")
        # Known types in funnel order (view before click before sale), unknown ones after, by name.
        order = sorted(range(len(types)), key=lambda k: (_funnel_rank(types.ids[k]), types.ids[k]))
        feedback_types = tuple(str(types.ids[k]) for k in order)
        feedback = np.argsort(order).astype(np.int8)[codes]
    timestamp = None
    if "timestamp" in chosen:
        timestamp = _timestamps(column("timestamp"), where, chosen["timestamp"], time_unit)
    partition, partitions = None, None
    if "partition" in chosen:
        partitions, partition = _encode_arrow(column("partition"), where, chosen["partition"])
    rating = None
    if "rating" in chosen:
        rating = column("rating").to_numpy().astype(np.float32)
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
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(path, exc, "Parquet") from None
    delimiter = "\t" if suffix == ".tsv" else ","
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        )
    except (pa.ArrowException, OSError) as exc:
        _scan_header_table(path, delimiter)
        raise DataError(f"{path}: {arrow_reason(exc)}") from None
    warn_if_cut(path)
    return table


def unreadable(path: str | os.PathLike[str], exc: BaseException, kind: str) -> DataError:
    """The one-line error for a file that pyarrow cannot open as ``kind`` (a file cut short while it was
    written, an empty file, another format under a .parquet name)."""
    return DataError(
        f"{path}: not a readable {kind} file ({arrow_reason(exc)}); it may have been cut short while being "
        "written: write it again, or move it out of the way"
    )


def arrow_reason(exc: BaseException) -> str:
    """pyarrow's message without the parts that repeat the path, first sentence only (one line)."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^.*?(?:source|from) '[^']*'[.:]?\s*(?:Is this a '\w+' file\?:\s*)?", "", text)
    text = re.sub(r"^.*?(?:source|from) '[^']*'[.:]?\s*", "", text)  # a nested "Could not open … source '…':"
    return text.split(". ")[0].rstrip(".")[:300] or type(exc).__name__


def warn_if_cut(path: str | os.PathLike[str]) -> None:
    """A text file whose last line has no line end was most likely cut short while being written (every
    writer ends its lines): its last row may be partial and yet parse, e.g. a timestamp missing its last
    digits. Said on stderr, not refused: a hand-written file may simply lack the final newline."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return
        f.seek(-1, os.SEEK_END)
        if f.read(1) not in (b"\n", b"\r"):
            log.warning("%s: the last line has no line end: if the file was cut short, its last row is partial", path)


def _scan_header_table(path: Path, delimiter: str) -> None:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline().rstrip("\n").split(delimiter)
        for lineno, line in enumerate(f, start=2):
            if line.strip() and len(line.rstrip("\n").split(delimiter)) != len(header):
                raise DataError(
                    f"{path}:{lineno}: expected {len(header)} fields like the header, "
                    f"found {len(line.rstrip(chr(10)).split(delimiter))}"
                )


# --------------------------------------------------------------------------------------------- column types
def column_kind(kind: pa.DataType) -> str:
    """A column's Arrow type as one word: integer, float, string, binary, timestamp, date, bool, or the
    type itself (a list, a struct: nothing a role accepts). Dictionary columns count as their values."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    for word, test in (
        ("integer", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
        ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)),
        ("timestamp", pa.types.is_timestamp),
        ("date", pa.types.is_date),
        ("bool", pa.types.is_boolean),
    ):
        if test(kind):
            return word
    return str(kind)


_IDS = ("integer", "float", "string", "binary")
ROLE_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "user": (_IDS, "integers or strings"),
    "item": (_IDS, "integers or strings"),
    "event": (_IDS, "strings (view, click, sale…)"),
    "partition": (_IDS, "strings or integers"),
    "timestamp": (("integer", "float", "timestamp", "date"), ""),
    "rating": (("integer", "float"), "numeric"),
}


def check_column_types(types: dict[str, pa.DataType], chosen: dict[str, str], where: str) -> None:
    """DataError naming the column when a role's column has a type that role cannot take (ids that are
    lists, ratings that are text, timestamps that are text): one rule for the file readers and the
    streamed log. ``types``: column name → Arrow type."""
    for role, name in chosen.items():
        kind = types[name]
        allowed, what = ROLE_KINDS[role]
        if column_kind(kind) in allowed or column_kind(kind) == "null":  # (all missing: reported as such)
            continue
        if role == "timestamp":
            raise DataError(time_type_message(where, name, kind))
        if role == "rating":
            raise DataError(f"{where}: column {name!r} must be numeric, found {kind}")
        raise DataError(f"{where}: column {name!r} ({role}) is {kind}; {role} values must be {what}")


def time_type_message(where: str, name: str, kind: pa.DataType) -> str:
    hint = (
        ": parse the text first (pandas.to_datetime, pyarrow.compute.strptime)" if column_kind(kind) == "string" else ""
    )
    return (
        f"{where}: column {name!r} must be a number of seconds (or ms, µs, ns) since the epoch or a timestamp, "
        f"found {kind}{hint}"
    )


def _encode_arrow(col: pa.ChunkedArray, where: str, name: str) -> tuple[Vocabulary, np.ndarray]:
    """Vocabulary + int32 codes of an Arrow column: integer ids sort numerically, others as strings.
    Float ids (pandas writes an integer column with a hole as float) must be whole numbers: 1.0 is id 1,
    1.5 or NaN is an error, not an id "1.5" or "nan"."""
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if pa.types.is_floating(col.type):
        values = col.to_numpy()
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            raise DataError(
                f"{where}: row {int(np.flatnonzero(bad)[0]) + 1}: column {name!r} holds {values[bad][0]!r}: "
                "ids must be integers or strings"
            )
        return Vocabulary.encode(values.astype(np.int64))
    if pa.types.is_integer(col.type):
        return Vocabulary.encode(col.to_numpy())
    try:
        col = pc.cast(col, pa.string())
    except pa.ArrowException as exc:  # binary that is not UTF-8
        raise DataError(f"{where}: column {name!r}: {arrow_reason(exc)}") from None
    uniques = pc.unique(col)
    uniques = uniques.take(pc.sort_indices(uniques))
    codes = pc.index_in(col, value_set=uniques).to_numpy().astype(np.int32)
    return Vocabulary(np.asarray(uniques.to_numpy(zero_copy_only=False)).astype(str)), codes


# --------------------------------------------------------------------------------------------- time
@dataclass(frozen=True)
class TimeUnit:
    """How a timestamp column's raw numbers become seconds since the epoch: ``floor(raw * mul / div)``."""

    name: str
    mul: int = 1
    div: int = 1

    def seconds(self, raw: np.ndarray) -> np.ndarray:
        """int64 seconds of raw values (floats floored: 12.7 s is second 12, as for a cut by time)."""
        if raw.dtype.kind == "f":
            return np.floor(raw * (self.mul / self.div)).astype(np.int64)
        return raw.astype(np.int64) * self.mul // self.div

    def raw(self, seconds: int) -> int:
        """The smallest raw value that is at ``seconds`` or later: a filter on the raw column that keeps
        exactly the rows :meth:`seconds` puts at or after it."""
        return -((-seconds * self.div) // self.mul)


SECONDS = TimeUnit("seconds")
MILLISECONDS = TimeUnit("milliseconds", 1, 10**3)
MICROSECONDS = TimeUnit("microseconds", 1, 10**6)
NANOSECONDS = TimeUnit("nanoseconds", 1, 10**9)
DAYS = TimeUnit("days", 86_400, 1)
ARROW_UNITS = {"s": SECONDS, "ms": MILLISECONDS, "us": MICROSECONDS, "ns": NANOSECONDS}
# Plausible times: after 1973-03-03 (1e8 s) and before 2100-01-01. Seconds up to 2100 stay below 4.1e9 and
# milliseconds of any date after 1973 are above 1e11, so the ranges of the four units never overlap.
LATEST_SECOND = 4_102_444_800  # 2100-01-01T00:00:00Z
EARLIEST_SECOND = 100_000_000  # 1973-03-03T09:46:40Z


def _unit_of(magnitude: float, floor: float) -> TimeUnit | None:
    """The unit in which ``magnitude`` is a time before 2100 and after 1973 — in seconds, after ``floor``
    seconds (0: 1970 on, small counters) —, or None."""
    for unit in (SECONDS, MILLISECONDS, MICROSECONDS, NANOSECONDS):
        after = floor if unit is SECONDS else EARLIEST_SECOND * unit.div
        if after <= magnitude < LATEST_SECOND * unit.div:
            return unit
    return None


def time_unit(kind: pa.DataType, lo: float, hi: float, where: str, name: str) -> TimeUnit:
    """The unit of a timestamp column, from its Arrow type and its smallest and largest values.

    * An Arrow timestamp or date column carries its unit: it is used as it is.
    * A number column is seconds since the epoch when its largest magnitude is below 4.1e9 (2100-01-01);
      milliseconds when it lies in [1e11, 4.1e12), microseconds in [1e14, 4.1e15), nanoseconds in
      [1e17, 4.1e18) — a time between 1973 and 2100 in that unit, as every event logger writes. The
      conversion is said on stderr (a log at WARNING, naming the column and the unit): a 7-day holdout of
      a log in milliseconds read as seconds holds a few minutes of events, without a word otherwise.
    * A column whose largest magnitude is in none of these ranges (4.1e9 to 1e11, say: seconds after 2100,
      milliseconds before 1973), or whose smallest value is a plausible time in a coarser unit than its
      largest (a folder of files in seconds and files in milliseconds), is a DataError: no unit would put
      its events in a true order, and a time split on it would be meaningless.

    Values below 1e8 are accepted in any column (1970-based counters, synthetic logs: day 0 is 0).
    """
    word = column_kind(kind)
    if word == "timestamp":
        return ARROW_UNITS[kind.unit]
    if word == "date":
        return DAYS if pa.types.is_date32(kind) else MILLISECONDS
    if word not in ("integer", "float"):
        raise DataError(time_type_message(where, name, kind))
    magnitude = max(abs(lo), abs(hi))
    unit = _unit_of(magnitude, floor=0)
    if unit is None:
        raise DataError(
            f"{where}: column {name!r} holds {hi:.4g}, not a time since the epoch before 2100 in seconds, "
            "milliseconds, microseconds or nanoseconds: write times in one of those units"
        )
    smallest = min(abs(lo), abs(hi))
    coarser = _unit_of(smallest, floor=EARLIEST_SECOND)
    if unit is not SECONDS and coarser is not None and coarser is not unit:
        raise DataError(
            f"{where}: column {name!r} mixes units: its smallest value {smallest:.4g} is a time in {coarser.name} "
            f"({_date(coarser.seconds(np.array([smallest]))[0])}), its largest {magnitude:.4g} one in {unit.name} "
            f"({_date(unit.seconds(np.array([magnitude]))[0])}); write every file in one unit"
        )
    if unit is not SECONDS:
        log.warning("%s", unit_note(where, name, unit, hi))
    return unit


def unit_note(where: str, name: str, unit: TimeUnit, hi: float) -> str:
    """What :func:`time_unit` says of a number column it reads in another unit than seconds."""
    latest = _date(unit.seconds(np.array([hi]))[0])
    return f"{where}: column {name!r} holds {unit.name} since the epoch (max {hi:.3g}: {latest}); read as {unit.name}"


def numeric_seconds(values: np.ndarray, where: str, name: str, unit: TimeUnit | None = None) -> np.ndarray:
    """int64 seconds since the epoch of a number array, its unit decided by :func:`time_unit` unless given;
    NaN or infinity is a DataError naming the row."""
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"{where}: row {row}: column {name!r} holds {values[bad][0]}, not a time")
    if len(values) == 0:
        return values.astype(np.int64)
    kind = pa.from_numpy_dtype(values.dtype)
    unit = unit or time_unit(kind, float(values.min()), float(values.max()), where, name)
    return unit.seconds(values)


def raw_times(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A time column's raw numbers as numpy (int64 in the column's unit for timestamps and dates)."""
    if pa.types.is_timestamp(col.type) or pa.types.is_date64(col.type):
        return pc.cast(col, pa.int64()).to_numpy()
    if pa.types.is_date32(col.type):
        return pc.cast(col, pa.int32()).to_numpy().astype(np.int64)
    return col.to_numpy()


def _timestamps(col: pa.ChunkedArray, where: str, name: str, unit: TimeUnit | None = None) -> np.ndarray:
    """Seconds since the epoch from an integer, float, timestamp or date column (:func:`time_unit`)."""
    if column_kind(col.type) not in ("integer", "float", "timestamp", "date"):
        raise DataError(time_type_message(where, name, col.type))
    raw = raw_times(col)
    if unit is None and column_kind(col.type) in ("timestamp", "date"):
        unit = time_unit(col.type, 0, 0, where, name)
    return numeric_seconds(raw, where, name, unit)


def _date(seconds: int) -> str:
    try:
        return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return f"{int(seconds)} s"
