"""An event log too big to read whole: a Parquet file, a directory of Parquet files (one per day, say) or a
CSV file, read one catalogue and one time window at a time (the daily pipeline, seed paper §6.1).

pyarrow's dataset scanner applies the filters while it reads record batches, so memory holds the selected
rows only — one catalogue's window — never the whole log (the 100M-event run of docs/pipeline.md). Rows
are chosen by the partition column (country, merchant) and by time: ``days`` back from the latest event
(or from ``until``), or from ``since``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from ledrec.data.interactions import DataError, Interactions
from ledrec.data.readers import (
    SECONDS,
    TimeUnit,
    _scan_header_table,
    arrow_reason,
    check_column_types,
    choose_columns,
    column_kind,
    events_from_table,
    time_unit,
    unit_note,
    unreadable,
    warn_if_cut,
)
from ledrec.io import sha256_file, write_json

DAY = 86_400
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class EventSource:
    """Where the events are and which column plays which role (``columns``: role → name, as
    :func:`~ledrec.data.readers.choose_columns` finds them); ``schema``: those columns' types, one for
    every file (what a scan casts each file to)."""

    path: str
    columns: dict[str, str]
    files: tuple[str, ...]
    format: str
    schema: pa.Schema | None = None

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], columns: dict[str, str] | None = None, need_time: bool = True
    ) -> EventSource:
        """Check the path, every file and the columns (one-line DataError naming the file and what is
        wrong: an empty file, one cut short or not of its format, a column missing or of another type than
        in the other files or than its role takes); ``need_time``: a timestamp column is required (time
        windows, holdouts)."""
        root = Path(path)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
            files = [p for p in files if not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)]
        elif root.is_file():
            files = [root]
        else:
            raise DataError(f"{root}: no such file or directory")
        kinds = {FORMATS.get(p.suffix.lower()) for p in files}
        if not files or None in kinds:
            found = "" if root.is_file() else f" (found {_names_in(root)})"
            raise DataError(f"{root}: no Parquet (.parquet) or CSV (.csv) event files{found}")
        if len(kinds) > 1:
            raise DataError(f"{root}: mixes Parquet and CSV files; use one format")
        fmt = kinds.pop()
        schemas = [_schema_of(f, fmt) for f in files]
        chosen = choose_columns(schemas[0].names, columns, str(files[0]) if root.is_dir() else str(root))
        if need_time and "timestamp" not in chosen:
            raise DataError(
                f"{root}: no timestamp column (one of timestamp, ts, time, event_time): a daily job needs one"
            )
        if not need_time and "timestamp" in chosen:
            del chosen["timestamp"]  # (not read: a command that needs no time must not fail on its type)
        schema = _common_schema(files, schemas, chosen)
        check_column_types({f.name: f.type for f in schema}, chosen, str(root))
        return cls(str(root), chosen, tuple(str(f) for f in files), fmt, schema)

    @property
    def has_partition(self) -> bool:
        return "partition" in self.columns

    def dataset(self) -> pads.Dataset:
        return pads.dataset(list(self.files), format=self.format, schema=self.schema)

    def digest(self, cache: str | os.PathLike[str] | None = None) -> str:
        """sha256 over the files' contents (a cache is keyed by content, not by name). Each file's digest
        is kept in ``cache`` under (path, size, mtime), so a daily run hashes only the new files."""
        known: dict[str, Any] = {}
        if cache is not None and Path(cache).is_file():
            try:
                known = json.loads(Path(cache).read_text())
            except (OSError, ValueError):  # (cut short by a full disk, say): hashing again is the only cost
                known = {}
            known = known if isinstance(known, dict) else {}
        digests = {}
        for f in self.files:
            st = os.stat(f)
            key = f"{os.path.abspath(f)}|{st.st_size}|{st.st_mtime_ns}"
            digests[f] = known.get(key) or sha256_file(f)
            known[key] = digests[f]
        if cache is not None:
            live = {f"{os.path.abspath(f)}|{os.stat(f).st_size}|{os.stat(f).st_mtime_ns}" for f in self.files}
            write_json(cache, {k: v for k, v in known.items() if k in live})
        blob = json.dumps([sorted(digests.values()), self.columns], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    # ---------------------------------------------------------------- scans (bounded memory)
    def _ts_type(self) -> pa.DataType:
        return (self.schema or self.dataset().schema).field(self.columns["timestamp"]).type

    @functools.cached_property
    def time_unit(self) -> TimeUnit:
        """The timestamp column's unit (:func:`~ledrec.data.readers.time_unit`: an Arrow timestamp's own;
        of numbers, decided once over every file from a scan of that column alone, and said on stderr when
        it is not seconds), so that every window and every catalogue of the log reads times alike."""
        name, kind = self.columns["timestamp"], self._ts_type()
        if column_kind(kind) in ("timestamp", "date"):
            return time_unit(kind, 0, 0, self.path, name)  # (its own unit: no scan)
        lo, hi = self._time_range
        return time_unit(kind, lo, hi, self.path, name)

    @property
    def time_note(self) -> str | None:
        """The warning :attr:`time_unit` gave (a number column in ms, µs or ns), or None."""
        unit = self.time_unit
        if unit is SECONDS or column_kind(self._ts_type()) not in ("integer", "float"):
            return None
        return unit_note(self.path, self.columns["timestamp"], unit, self._time_range[1])

    @functools.cached_property
    def _time_range(self) -> tuple[int | float, int | float]:
        """The smallest and the largest raw value of the timestamp column (one scan of that column alone;
        a timestamp's or a date's integer in its unit)."""
        return self._bounds(None)

    def _bounds(self, until: int | None) -> tuple[int | float, int | float]:
        name = self.columns["timestamp"]
        lo = hi = None
        with self._reading():
            scan = self.dataset().to_batches(columns=[name], filter=None if until is None else self._time(None, until))
            for batch in scan:
                column = batch.column(0)
                if pa.types.is_floating(column.type) and not pc.all(pc.is_finite(column)).as_py():
                    raise DataError(f"{self.path}: column {name!r} holds NaN or infinity, not a time")
                bounds = pc.min_max(column)
                if bounds["min"].is_valid:
                    low, high = _raw(bounds["min"]), _raw(bounds["max"])
                    lo, hi = (low, high) if lo is None else (min(lo, low), max(hi, high))
        if lo is None or hi is None:
            before = "" if until is None else f" before --until {_day(until)} (the first is at {_day(self.earliest())})"
            raise DataError(f"{self.path}: no events{before}")
        return lo, hi

    def latest(self, until: int | None = None) -> int:
        """The latest event time before ``until`` (seconds), from a scan of the timestamp column alone."""
        hi = self._time_range[1] if until is None else self._bounds(until)[1]
        return int(self.time_unit.seconds(np.array([hi]))[0])

    def earliest(self) -> int:
        """The earliest event time (seconds)."""
        return int(self.time_unit.seconds(np.array([self._time_range[0]]))[0])

    def catalogues(self, since: int | None = None, until: int | None = None) -> list[str]:
        """The partition values present (with ``since <= time < until``), sorted; [""] without a partition
        column."""
        if "partition" not in self.columns:
            return [""]
        values: set[str] = set()
        with self._reading():
            scan = self.dataset().to_batches(columns=[self.columns["partition"]], filter=self._time(since, until))
            for batch in scan:
                values |= {str(v) for v in pc.unique(batch.column(0)).to_pylist() if v is not None}
        return sorted(values)

    def read(
        self,
        catalogue: str = "",
        since: int | None = None,
        until: int | None = None,
        columns: tuple[str, ...] | None = None,
    ) -> Interactions:
        """One catalogue's events with ``since <= time < until`` (seconds; None: unbounded); ``columns``:
        the roles to read (default all the table has)."""
        where = self._time(since, until)
        label = f"{self.path} [{catalogue or 'all'}]"
        if "partition" in self.columns:
            column = pc.field(self.columns["partition"])
            kind = self.dataset().schema.field(self.columns["partition"]).type
            try:
                value = pa.scalar(catalogue).cast(kind) if not pa.types.is_string(kind) else pa.scalar(catalogue)
            except pa.ArrowException:
                raise DataError(
                    f"{label}: {catalogue!r} cannot be a value of the partition column "
                    f"{self.columns['partition']!r} ({kind})"
                ) from None
            where = column == value if where is None else where & (column == value)
        roles = {r: c for r, c in self.columns.items() if columns is None or r in columns}
        with self._reading():
            table = self.dataset().to_table(columns=list(dict.fromkeys(roles.values())), filter=where)
        if table.num_rows == 0:
            raise DataError(f"{label}: no events from {_day(since, 'the start')} to {_day(until, 'the end')}")
        unit = self.time_unit if "timestamp" in roles else None
        return events_from_table(table, roles, label, time_unit=unit)

    def _time(self, since: int | None, until: int | None) -> pads.Expression | None:
        if since is None and until is None:
            return None
        column, kind, unit = pc.field(self.columns["timestamp"]), self._ts_type(), self.time_unit
        out = None
        if since is not None:
            out = column >= _scalar(unit.raw(since), kind)
        if until is not None:
            upper = column < _scalar(unit.raw(until), kind)
            out = upper if out is None else out & upper
        return out

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """pyarrow's errors while scanning (a file whose pages are corrupt, a CSV line that does not parse,
        a value a file's column cannot be cast to) become one DataError naming the file."""
        try:
            yield
        except (pa.ArrowException, OSError) as exc:
            raise self._culprit(exc) from None

    def _culprit(self, exc: BaseException) -> DataError:
        """The error of the first file that fails alone (only run on failure: it reads file by file)."""
        names = list(dict.fromkeys(self.columns.values()))
        for f in self.files:
            try:
                pads.dataset([f], format=self.format, schema=self.schema).to_table(columns=names)
            except (pa.ArrowException, OSError) as alone:
                if self.format == "csv":
                    _scan_header_table(Path(f), ",")  # a line that does not parse: named with its number
                return DataError(f"{f}: {arrow_reason(alone)}")
        return DataError(f"{self.path}: {arrow_reason(exc)}")


def _schema_of(path: Path, fmt: str) -> pa.Schema:
    """One file's columns, from its footer (Parquet) or its first block (CSV); DataError naming the file
    when it cannot be opened as its format."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        schema = pads.dataset(str(path), format="csv").schema
    except (pa.ArrowException, OSError) as exc:
        if fmt == "parquet":
            raise unreadable(path, exc, "Parquet") from None
        _scan_header_table(path, ",")  # a line that does not parse: named with its number
        raise DataError(f"{path}: not a readable CSV file ({arrow_reason(exc)})") from None
    warn_if_cut(path)
    return schema


def _common_schema(files: list[Path], schemas: list[pa.Schema], chosen: dict[str, str]) -> pa.Schema:
    """The chosen columns' types over every file: the same kind of column in each (a file without one of
    them, or with text where the others have numbers, is a DataError naming it), widened where the files
    differ within a kind (int32 and int64: int64; seconds and ms timestamps: ms)."""
    fields = []
    for role, name in chosen.items():
        types = []
        for f, schema in zip(files, schemas, strict=True):
            if name not in schema.names:
                raise DataError(
                    f"{f}: no column {name!r} ({role}); {files[0].name} has it: every file needs the same columns"
                )
            types.append(schema.field(name).type)
        fields.append(pa.field(name, _widest(types, files, name)))
    return pa.schema(fields)


def _widest(types: list[pa.DataType], files: list[Path], name: str) -> pa.DataType:
    kinds = [column_kind(t) for t in types]
    if len(set(types)) == 1:
        return types[0]
    if set(kinds) <= {"integer"}:
        return pa.int64()
    if set(kinds) <= {"integer", "float"}:
        return pa.float64()
    if set(kinds) <= {"string"}:
        return pa.string()
    if set(kinds) <= {"binary"}:
        return pa.binary()
    if set(kinds) == {"timestamp"}:
        finest = max(types, key=lambda t: ("s", "ms", "us", "ns").index(t.unit))
        return pa.timestamp(finest.unit, tz=types[0].tz)
    odd = next(k for k, t in enumerate(types) if column_kind(t) != kinds[0])
    raise DataError(
        f"{files[odd]}: column {name!r} is {types[odd]}, but {types[0]} in {files[0].name}: every file needs the "
        "same column types"
    )


def _names_in(root: Path) -> str:
    names = sorted(p.name for p in root.iterdir())
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "") if names else "nothing"


def _raw(value: pa.Scalar) -> int | float:
    """A time scalar's raw number (a timestamp's or date's integer in its unit)."""
    if pa.types.is_timestamp(value.type) or pa.types.is_date64(value.type):
        return value.cast(pa.int64()).as_py()
    if pa.types.is_date32(value.type):
        return value.cast(pa.int32()).as_py()
    return value.as_py()


def _day(seconds: int | None, unbounded: str = "") -> str:
    if seconds is None:
        return unbounded
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} s"


def window(latest: int, days: float | None = None, since: str | int | None = None) -> int | None:
    """The first second of the window: ``days`` back from ``latest`` (inclusive of the latest second), or
    ``since`` (seconds, or an ISO date/time in UTC); None: everything."""
    if days is not None and since is not None:
        raise DataError("give one of days and since, not both")
    if days is not None:
        return latest - int(days * DAY) + 1
    if since is None or since == "":
        return None
    return parse_time(since)


def parse_time(value: str | int) -> int:
    """Seconds since the epoch from an int or an ISO 8601 date/time (UTC unless it says otherwise)."""
    if isinstance(value, int) or str(value).lstrip("-").isdigit():
        return int(value)
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"{value!r} is neither seconds nor an ISO date (2026-11-30 or 2026-11-30T06:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def _scalar(raw: int | float, kind: pa.DataType) -> pa.Scalar:
    """A filter bound in the column's own type and unit, clamped to what the type holds (a bound beyond it
    keeps or drops every row, as it would in seconds)."""
    if pa.types.is_floating(kind):
        return pa.scalar(float(raw), type=kind)
    storage = pa.int32() if pa.types.is_date32(kind) else kind if pa.types.is_integer(kind) else pa.int64()
    info = np.iinfo(storage.to_pandas_dtype())
    value = pa.scalar(max(int(info.min), min(int(info.max), int(raw))), type=storage)
    return value if storage == kind else value.cast(kind)
