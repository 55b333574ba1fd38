"""An event log too big to read whole: a Parquet file, a directory of Parquet files (one per day, say) or a
CSV file, read one catalogue and one time window at a time (the daily pipeline, seed paper §6.1).

pyarrow's dataset scanner applies the filters while it reads record batches, so memory holds the selected
rows only — one catalogue's window — never the whole log (the 100M-event run of docs/pipeline.md). Rows
are chosen by the partition column (country, merchant) and by time: ``days`` back from the latest event
(or from ``until``), or from ``since``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from ledrec.data.interactions import DataError, Interactions
from ledrec.data.readers import choose_columns, events_from_table
from ledrec.io import sha256_file, write_json

DAY = 86_400
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class EventSource:
    """Where the events are and which column plays which role (``columns``: role → name, as
    :func:`~ledrec.data.readers.choose_columns` finds them)."""

    path: str
    columns: dict[str, str]
    files: tuple[str, ...]
    format: str

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], columns: dict[str, str] | None = None, need_time: bool = True
    ) -> EventSource:
        """Check the path and the columns (one-line DataError naming what is wrong); ``need_time``: a
        timestamp column is required (time windows, holdouts)."""
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
            raise DataError(f"{root}: no Parquet (.parquet) or CSV (.csv) event files")
        if len(kinds) > 1:
            raise DataError(f"{root}: mixes Parquet and CSV files; use one format")
        fmt = kinds.pop()
        schema = pads.dataset([str(f) for f in files], format=fmt).schema
        chosen = choose_columns(schema.names, columns, str(root))
        if need_time and "timestamp" not in chosen:
            raise DataError(
                f"{root}: no timestamp column (one of timestamp, ts, time, event_time): a daily job needs one"
            )
        return cls(str(root), chosen, tuple(str(f) for f in files), fmt)

    @property
    def has_partition(self) -> bool:
        return "partition" in self.columns

    def dataset(self) -> pads.Dataset:
        return pads.dataset(list(self.files), format=self.format)

    def digest(self, cache: str | os.PathLike[str] | None = None) -> str:
        """sha256 over the files' contents (a cache is keyed by content, not by name). Each file's digest
        is kept in ``cache`` under (path, size, mtime), so a daily run hashes only the new files."""
        known: dict[str, Any] = {}
        if cache is not None and Path(cache).is_file():
            known = json.loads(Path(cache).read_text())
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
        return self.dataset().schema.field(self.columns["timestamp"]).type

    def latest(self, until: int | None = None) -> int:
        """The latest event time before ``until`` (seconds), from a scan of the timestamp column alone."""
        latest = None
        scan = self.dataset().to_batches(columns=[self.columns["timestamp"]], filter=self._time(None, until))
        for batch in scan:
            if batch.num_rows:
                value = pc.max(_seconds(batch.column(0)))
                if value.is_valid:
                    latest = value.as_py() if latest is None else max(latest, value.as_py())
        if latest is None:
            raise DataError(f"{self.path}: no events" + ("" if until is None else " before --until"))
        return int(latest)

    def catalogues(self, since: int | None = None) -> list[str]:
        """The partition values present (from ``since`` on), sorted; [""] without a partition column."""
        if "partition" not in self.columns:
            return [""]
        values: set[str] = set()
        for batch in self.dataset().to_batches(columns=[self.columns["partition"]], filter=self._time(since, None)):
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
        if "partition" in self.columns:
            column = pc.field(self.columns["partition"])
            kind = self.dataset().schema.field(self.columns["partition"]).type
            value = pa.scalar(catalogue).cast(kind) if not pa.types.is_string(kind) else pa.scalar(catalogue)
            where = column == value if where is None else where & (column == value)
        roles = {r: c for r, c in self.columns.items() if columns is None or r in columns}
        table = self.dataset().to_table(columns=list(dict.fromkeys(roles.values())), filter=where)
        label = f"{self.path} [{catalogue or 'all'}]"
        if table.num_rows == 0:
            raise DataError(f"{label}: no events in the window")
        return events_from_table(table, roles, label)

    def _time(self, since: int | None, until: int | None) -> pads.Expression | None:
        if since is None and until is None:
            return None
        column, kind = pc.field(self.columns["timestamp"]), self._ts_type()
        out = None
        if since is not None:
            out = column >= _scalar(since, kind)
        if until is not None:
            upper = column < _scalar(until, kind)
            out = upper if out is None else out & upper
        return out


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


def _seconds(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if pa.types.is_timestamp(column.type):
        return pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64())
    return column


def _scalar(seconds: int, kind: pa.DataType) -> pa.Scalar:
    if pa.types.is_timestamp(kind):
        return pa.scalar(dt.datetime.fromtimestamp(seconds, dt.UTC), type=pa.timestamp("s", tz=kind.tz)).cast(kind)
    if pa.types.is_floating(kind):
        return pa.scalar(float(seconds), type=kind)
    return pa.scalar(int(seconds), type=kind)
