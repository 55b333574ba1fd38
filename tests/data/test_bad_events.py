"""Event tables that are broken, oddly typed or in another time unit, through both ways events are read: a
file read whole (``read_events``: ``ledrec run``, ``ledrec info``) and a log streamed one window at a time
(``EventSource``: ``ledrec pipeline``, ``fold-in``, ``recommend``). Every failure is one DataError line
naming the file; times in milliseconds (µs, ns) are read as such and said so."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledrec.data.interactions import DataError
from ledrec.data.readers import read_events
from ledrec.data.stream import DAY, EventSource

T0 = 1_700_000_000  # 2023-11-14, in seconds


def table(n: int = 60, seed: int = 0, times: np.ndarray | None = None) -> pa.Table:
    """n events of 6 users on 5 items over 10 days (seconds), in time order."""
    rng = np.random.default_rng(seed)
    stamps = T0 + np.sort(rng.integers(0, 10 * DAY, n)) if times is None else times
    return pa.table(
        {
            "user": rng.integers(0, 6, n),
            "item": rng.integers(0, 5, n),
            "event": np.array(["view", "click"])[rng.integers(0, 2, n)],
            "timestamp": stamps,
        }
    )


def streamed(path: Path, **open_options) -> None:
    """Everything the daily job does with a log, up to reading its window."""
    source = EventSource.open(path, **open_options)
    latest = source.latest()
    source.catalogues(latest - DAY)
    source.read("", latest - 5 * DAY)


def one_line(info: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def good_bytes(tmp_path: Path) -> bytes:
    pq.write_table(table(), tmp_path / "good.parquet")
    return (tmp_path / "good.parquet").read_bytes()


BROKEN = {
    "truncated": lambda raw: raw[: len(raw) // 2],
    "empty": lambda raw: b"",
    "not parquet": lambda raw: b"user,item\n1,2\n",
}


@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_parquet_file_is_one_line_naming_it(tmp_path, kind):
    raw = good_bytes(tmp_path)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(BROKEN[kind](raw))
    with pytest.raises(DataError) as info:
        read_events(bad)
    one_line(info, str(bad))
    with pytest.raises(DataError) as info:
        streamed(bad)
    one_line(info, str(bad))
    # in a folder of good days, first or last: the bad file is named, not the folder
    for name in ("day0.parquet", "day9.parquet"):
        folder = tmp_path / f"events-{name}"
        folder.mkdir()
        pq.write_table(table(seed=1), folder / "day5.parquet")
        (folder / name).write_bytes(BROKEN[kind](raw))
        with pytest.raises(DataError) as info:
            streamed(folder)
        one_line(info, str(folder / name))


def test_corrupt_pages_behind_a_good_footer_name_the_file(tmp_path):
    """A file whose footer reads but whose data does not: found by reading file by file."""
    folder = tmp_path / "events"
    folder.mkdir()
    pq.write_table(table(seed=1), folder / "a.parquet")
    pq.write_table(table(seed=2), folder / "b.parquet", compression="snappy")
    raw = bytearray((folder / "b.parquet").read_bytes())
    raw[8:400] = b"\xff" * 392  # the column chunks, not the footer at the end
    (folder / "b.parquet").write_bytes(bytes(raw))
    with pytest.raises(DataError) as info:
        streamed(folder)
    one_line(info, str(folder / "b.parquet"))


def test_a_csv_line_that_does_not_parse_names_the_file_and_line(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    text = "user,item,event,timestamp\n" + "".join(f"{u},{u % 3},view,{T0 + u * DAY}\n" for u in range(8))
    (folder / "a.csv").write_text(text)
    (folder / "b.csv").write_text(text + "9,1,vi\n")  # cut short in the middle of a row
    with pytest.raises(DataError) as info:
        streamed(folder)
    one_line(info, f"{folder / 'b.csv'}:10", "expected 4 fields")


def test_a_csv_cut_inside_its_last_field_is_said(tmp_path, caplog):
    """A row cut inside its last number still parses (a timestamp missing digits): no line end says so."""
    f = tmp_path / "events.csv"
    f.write_text("user,item,event,timestamp\n1,2,view,1700000000\n2,3,view,17000")
    with caplog.at_level(logging.WARNING):
        read_events(f)
    assert "events.csv: the last line has no line end" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        EventSource.open(f).latest()
    assert "events.csv: the last line has no line end" in caplog.text


def test_columns_of_a_type_their_role_cannot_take(tmp_path):
    listed = table().set_column(0, "user", pa.array([[u] for u in range(60)]))
    pq.write_table(listed, tmp_path / "lists.parquet")
    for read in (read_events, streamed):
        with pytest.raises(DataError) as info:
            read(tmp_path / "lists.parquet")
        one_line(info, "lists.parquet", "column 'user'", "integers or strings")
    holes = table().set_column(1, "item", pa.array([1.0, np.nan] + [2.0] * 58))  # pandas' int column with a hole
    pq.write_table(holes, tmp_path / "holes.parquet")
    with pytest.raises(DataError) as info:
        read_events(tmp_path / "holes.parquet")
    one_line(info, "holes.parquet", "row 2", "column 'item'")
    whole = table().set_column(1, "item", pa.array(np.arange(60) % 5 * 1.0))  # 1.0 is id "1", not "1.0"
    pq.write_table(whole, tmp_path / "whole.parquet")
    assert read_events(tmp_path / "whole.parquet").items.ids.tolist() == ["0", "1", "2", "3", "4"]


def test_a_file_whose_column_types_differ_from_the_others_is_named(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    pq.write_table(table(seed=1), folder / "day1.parquet")
    stamps = table(seed=2).column("timestamp").to_numpy()
    iso = [dt.datetime.fromtimestamp(int(t), dt.UTC).isoformat() for t in stamps]
    pq.write_table(table(seed=2).set_column(3, "timestamp", pa.array(iso)), folder / "day2.parquet")
    with pytest.raises(DataError) as info:
        streamed(folder)
    one_line(info, str(folder / "day2.parquet"), "column 'timestamp' is string, but int64 in day1.parquet")
    pq.write_table(table(seed=2).drop_columns(["event"]), folder / "day2.parquet")
    with pytest.raises(DataError) as info:
        streamed(folder)
    one_line(info, str(folder / "day2.parquet"), "no column 'event'")
    # a narrower type of the same kind is widened, not refused
    narrow = table(seed=2)
    narrow = narrow.set_column(0, "user", narrow.column("user").cast(pa.int32()))
    pq.write_table(narrow, folder / "day2.parquet")
    streamed(folder)


@pytest.mark.parametrize("text", ["2023-11-14T22:13:20+00:00", "1700000000"])
def test_text_timestamps_are_the_same_one_line_error_in_both_readers(tmp_path, text):
    f = tmp_path / "events.parquet"
    pq.write_table(table().set_column(3, "timestamp", pa.array([text] * 60)), f)
    with pytest.raises(DataError) as whole:
        read_events(f)
    with pytest.raises(DataError) as stream:
        streamed(f)
    one_line(whole, str(f), "column 'timestamp' must be a number of seconds", "found string")
    assert str(stream.value) == str(whole.value)


@pytest.mark.parametrize(("unit", "factor"), [("milliseconds", 10**3), ("microseconds", 10**6), ("nanoseconds", 10**9)])
def test_times_in_finer_units_are_read_as_such_and_said(tmp_path, caplog, unit, factor):
    seconds = table()
    f = tmp_path / "events.parquet"
    pq.write_table(seconds.set_column(3, "timestamp", pa.array(seconds.column("timestamp").to_numpy() * factor)), f)
    with caplog.at_level(logging.WARNING):
        data = read_events(f)
    assert data.timestamp.tolist() == seconds.column("timestamp").to_pylist()
    assert f"column 'timestamp' holds {unit} since the epoch" in caplog.text and "events.parquet" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        source = EventSource.open(f)
        latest = source.latest()
        window = source.read("", latest - 3 * DAY + 1)  # the last 3 days, in seconds
    assert latest == seconds.column("timestamp").to_numpy().max()
    expected = seconds.column("timestamp").to_numpy()
    assert sorted(window.timestamp.tolist()) == sorted(expected[expected > latest - 3 * DAY].tolist())
    assert caplog.text.count(f"holds {unit} since the epoch") == 1  # decided once for the whole log
    assert source.time_note is not None and unit in source.time_note


def test_float_seconds_and_arrow_timestamps_keep_their_unit(tmp_path):
    stamps = table().column("timestamp").to_numpy()
    cases = {
        "float": pa.array(stamps + 0.75),
        "ms": pa.array(stamps * 1000 + 123).cast(pa.timestamp("ms")),  # sub-second: not a lossy cast
        "ns_utc": pa.array(stamps * 10**9 + 5).cast(pa.timestamp("ns", tz="UTC")),
    }
    for name, column in cases.items():
        f = tmp_path / f"{name}.parquet"
        pq.write_table(table().set_column(3, "timestamp", column), f)
        assert read_events(f).timestamp.tolist() == stamps.tolist(), name
        source = EventSource.open(f)
        assert source.latest() == stamps.max() and source.time_note is None
        assert sorted(source.read("", int(stamps[10])).timestamp.tolist()) == sorted(stamps[10:].tolist())
    days = table().set_column(3, "timestamp", pa.array((stamps // DAY).astype(np.int32)).cast(pa.date32()))
    pq.write_table(days, tmp_path / "date.parquet")
    assert read_events(tmp_path / "date.parquet").timestamp.tolist() == (stamps // DAY * DAY).tolist()
    assert EventSource.open(tmp_path / "date.parquet").latest() == stamps.max() // DAY * DAY


def test_times_plausible_in_no_unit_are_refused(tmp_path):
    f = tmp_path / "events.parquet"
    pq.write_table(table(times=np.linspace(1e10, 5e10, 60).astype(np.int64)), f)  # after 2100 in s, 1970 in ms
    for read in (read_events, streamed):
        with pytest.raises(DataError) as info:
            read(f)
        one_line(info, "events.parquet", "not a time since the epoch")
    nan = table().set_column(3, "timestamp", pa.array([float(T0)] * 59 + [np.nan]))
    pq.write_table(nan, f)
    for read in (read_events, streamed):
        with pytest.raises(DataError) as info:
            read(f)
        one_line(info, "events.parquet", "column 'timestamp' holds", "not a time")


def test_a_log_of_files_in_seconds_and_files_in_milliseconds_is_refused(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    pq.write_table(table(seed=1), folder / "day1.parquet")
    ms = table(seed=2)
    pq.write_table(
        ms.set_column(3, "timestamp", pa.array(ms.column("timestamp").to_numpy() * 1000)), folder / "d2.parquet"
    )
    with pytest.raises(DataError) as info:
        streamed(folder)
    one_line(info, str(folder), "mixes units", "seconds", "milliseconds")


def test_a_folder_without_event_files_says_what_it_holds(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        EventSource.open(tmp_path)
    one_line(info, "no Parquet (.parquet) or CSV (.csv) event files", "notes.txt")


def test_a_command_without_time_reads_a_log_whose_time_column_it_does_not_need(tmp_path):
    """`ledrec recommend` reads users and items only: text timestamps must not stop it."""
    f = tmp_path / "events.parquet"
    pq.write_table(table().set_column(3, "timestamp", pa.array(["2023-11-14"] * 60)), f)
    events = EventSource.open(f, need_time=False).read("", columns=("user", "item"))
    assert len(events) == 60


def test_a_damaged_digest_cache_is_recomputed_not_an_error(tmp_path):
    pq.write_table(table(), tmp_path / "events.parquet")
    source = EventSource.open(tmp_path / "events.parquet")
    cache = tmp_path / "digests.json"
    digest = source.digest(cache)
    for damaged in ('{"a": ', "[1, 2]", "\xff"):
        cache.write_text(damaged)
        assert source.digest(cache) == digest
