"""What the daily job and the commands around it refuse before training anything — each one line on stderr
and exit status 2 from the command line, a ledrec error naming what to fix in Python: broken event files,
windows and catalogues that select nothing, settings that cannot work, folders of another kind."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledrec.cli import main
from ledrec.data.interactions import DataError
from ledrec.data.synthetic import DAY
from ledrec.errors import ConfigError
from ledrec.export import publish
from ledrec.io import ArtifactError
from ledrec.pipeline import config as pipeline_config
from ledrec.pipeline.daily import run_pipeline
from tests.pipeline.conftest import publish_toy, settings, write_days


def fails(capsys, *argv: str) -> str:
    """Run one ``ledrec`` command that must fail as a user error: its one line on stderr."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    return captured.err.strip()


def test_a_truncated_file_in_the_events_folder_is_one_line_for_every_command(tmp_path, capsys):
    events, out = tmp_path / "events", tmp_path / "published"
    write_days(events, np.arange(5))
    bad = events / "day=004.parquet"
    bad.write_bytes(bad.read_bytes()[:500])  # a copy that stopped half-way
    line = fails(capsys, "pipeline", "--events", str(events), "--out", str(out), "--quiet")
    assert line.startswith("ledrec pipeline run: error: ") and f"{bad}: not a readable Parquet file" in line
    publish_toy(out, ["country0"])
    line = fails(capsys, "fold-in", str(out), "--events", str(events), "--quiet")
    assert line.startswith("ledrec fold-in: error: ") and str(bad) in line
    line = fails(capsys, "recommend", str(out), "--histories", str(events), "--out", str(tmp_path / "r.parquet"))
    assert line.startswith("ledrec recommend: error: ") and str(bad) in line
    line = fails(capsys, "info", "--data", str(bad))
    assert line.startswith("ledrec info: error: ") and str(bad) in line


def test_string_and_millisecond_timestamps_in_the_daily_job(tmp_path, capsys):
    events = tmp_path / "events"
    write_days(events, np.arange(5))
    day = pq.read_table(events / "day=004.parquet")
    text = [f"1970-01-05T{h % 24:02d}:00:00" for h in range(day.num_rows)]
    pq.write_table(day.set_column(3, "timestamp", pa.array(text)), tmp_path / "text.parquet")
    line = fails(capsys, "pipeline", "--events", str(tmp_path / "text.parquet"), "--out", str(tmp_path / "o"))
    assert "column 'timestamp' must be a number of seconds" in line and "found string" in line
    ms = day.set_column(3, "timestamp", pa.array(day.column("timestamp").to_numpy() * 1000 + 1_700_000_000_000))
    pq.write_table(ms, tmp_path / "ms.parquet")
    # (the window's check fails fast: a catalogue named that the window does not have)
    with pytest.raises(DataError, match=r"no events of catalogue\(s\) \['nowhere'\]") as info:
        run_pipeline(settings(tmp_path / "ms.parquet", tmp_path / "o", catalogues="nowhere"), progress=False)
    assert "2023-11-" in str(info.value)  # the window's dates, read as milliseconds: November 2023, not 55901


def test_windows_that_select_nothing_name_their_dates(tmp_path):
    events, out = tmp_path / "events", tmp_path / "published"
    write_days(events, np.arange(10))  # the log's days 0-9: 1970-01-01 .. 1970-01-10
    with pytest.raises(DataError, match=r"the window starts at 1971-01-01 00:00, after the latest event \(1970-01-10"):
        run_pipeline(settings(events, out, since="1971-01-01"), progress=False)
    with pytest.raises(DataError, match=r"no events before --until 1969-12-01 00:00 UTC \(the first is at 1970-01-01"):
        run_pipeline(settings(events, out, until="1969-12-01"), progress=False)
    with pytest.raises(DataError, match=r"\['country7'\] .* the window has \['country0', 'country1'\]"):
        run_pipeline(settings(events, out, catalogues="country0,country7"), progress=False)
    flat = tmp_path / "flat"
    write_days(flat, np.arange(10), partition=False)
    with pytest.raises(ConfigError, match="has no partition column"):
        run_pipeline(settings(flat, out, catalogues="country0"), progress=False)
    assert not publish.is_published(out)  # nothing registered, nothing trained


def test_settings_that_cannot_work_are_refused_naming_the_key(tmp_path):
    events = tmp_path / "events"
    with pytest.raises(ConfigError, match=r"since: 'yesterday' is neither seconds nor an ISO date"):
        settings(events, tmp_path / "o", since="yesterday")
    with pytest.raises(ConfigError, match=r"days \(2\) must be more than 2 x holdout_days \(1\)"):
        settings(events, tmp_path / "o", days=2)
    with pytest.raises(ConfigError, match=r"holdout_users \(50\) is below min_holdout_users \(100\)"):
        settings(events, tmp_path / "o", holdout_users=50, min_holdout_users=100)
    with pytest.raises(ConfigError, match="min_holdout_users must be an int >= 1, not 'many'"):
        pipeline_config.load(None, {"events": "e", "out": "o", "min_holdout_users": "many"})
    assert pipeline_config.BY_NAME["min_holdout_users"].default == 100
    events.mkdir()
    with pytest.raises(ConfigError, match=r"a folder, not a TOML config file; events go in with --events"):
        pipeline_config.load(str(events))
    toml = tmp_path / "daily.toml"
    toml.write_text('events = "e"\nout = "o"\nkeep = 2.5\n')
    with pytest.raises(ConfigError, match=r"daily.toml: keep must be an int >= 1, not 2.5"):
        pipeline_config.load(str(toml))


def test_out_must_be_a_published_root_or_a_new_folder(tmp_path):
    events = tmp_path / "events"
    write_days(events, np.arange(10))
    with pytest.raises(ConfigError, match=r"out .*events: not a folder ledrec wrote holding day=000.parquet"):
        run_pipeline(settings(events, events), progress=False)
    assert not (events / publish.MARKER).exists()  # the events folder was not made a published root
    # a log of one catalogue into a root of catalogues by country, and the other way round
    publish_toy(tmp_path / "by-country", ["country0"])
    flat = tmp_path / "flat"
    write_days(flat, np.arange(10), partition=False)
    with pytest.raises(ConfigError, match=r"holds the catalogues \['country0'\] of a log with a partition column"):
        run_pipeline(settings(flat, tmp_path / "by-country"), progress=False)
    legacy = tmp_path / "legacy"  # a root of an earlier version: its one catalogue is "" in the folder "%"
    (legacy / "%" / publish.VERSIONS).mkdir(parents=True)
    (legacy / publish.MARKER).write_text(json.dumps({"kind": publish.KIND, "catalogues": {"": "%"}}))
    with pytest.raises(ConfigError, match="holds the one catalogue of a log without a partition column"):
        run_pipeline(settings(events, legacy), progress=False)


def test_a_catalogue_with_fewer_items_than_dimensions_is_named(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{rng.integers(0, 5)}", d * DAY + u) for u in range(30) for d in range(10)]
    users, items, times = zip(*rows, strict=True)
    pq.write_table(
        pa.table({"user": users, "item": items, "timestamp": times, "country": ["tiny"] * len(rows)}),
        tmp_path / "tiny.parquet",
    )
    with pytest.raises(DataError, match=r"tiny.parquet\[tiny\]: 5 item\(s\) .* too few for LED's dim 16"):
        run_pipeline(settings(tmp_path / "tiny.parquet", tmp_path / "o"), progress=False)


def test_status_and_rollback_name_what_a_folder_is_instead(tmp_path, capsys):
    events = tmp_path / "events"
    write_days(events, [0])
    line = fails(capsys, "pipeline", "status", str(events))
    assert line == (
        f"ledrec pipeline status: error: {events}: not a folder ledrec wrote; ledrec pipeline status takes a "
        "published root (ledrec pipeline --out ROOT)"
    )
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "manifest.json").write_text(json.dumps({"kind": "model"}))
    with pytest.raises(ArtifactError, match=r"run: a run directory \(ledrec run ... --out DIR\); ledrec pipeline"):
        publish.status(run)
    root = tmp_path / "published"
    publish_toy(root, ["country0"])
    with pytest.raises(ArtifactError, match=r"catalogue 'country0' of the published root .*published: give the root"):
        publish.status(root / "country0")
    line = fails(capsys, "pipeline", "rollback", str(root), "--to", "nope")
    assert "no version 'nope'; kept: " in line
    assert fails(capsys, "pipeline", "status", str(tmp_path / "missing")).endswith("missing: no such directory")


def test_a_fold_in_goes_on_past_a_catalogue_without_recent_events(tmp_path, capsys):
    events, out = tmp_path / "events", tmp_path / "published"
    write_days(events, np.arange(3))
    publish_toy(out, ["country0", "country1"])
    recent = tmp_path / "recent"
    recent.mkdir()
    day = pq.read_table(events / "day=002.parquet")
    pq.write_table(day.filter(pa.compute.equal(day.column("country"), "country0")), recent / "day=002.parquet")
    capsys.readouterr()
    assert main(["fold-in", str(out), "--events", str(recent), "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)["catalogues"]
    assert report["country1"] == {"decision": "unchanged", "reason": "no events since 1970-01-02 23:59 UTC"}
    assert report["country0"]["decision"] in ("published", "unchanged") and "from" in report["country0"]
