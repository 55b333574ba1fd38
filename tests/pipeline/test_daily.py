"""The daily pipeline as a library: stages, resuming, the gate, publishing, retention and rollback."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ledrec.errors import ConfigError
from ledrec.export import publish
from ledrec.export.mips import ServingModel
from ledrec.pipeline import config as pipeline_config
from ledrec.pipeline.daily import holdout_metrics, run_pipeline
from tests.pipeline.conftest import settings, worse, write_days

STAGES = ("events", "candidate project", "train", "export", "refit", "refit export")


@pytest.fixture(scope="module")
def first_day(tmp_path_factory):
    """Days 0-14 published; the report of that run."""
    root = tmp_path_factory.mktemp("daily")
    events, out = root / "events", root / "published"
    write_days(events, np.arange(15))
    report = run_pipeline(settings(events, out), progress=False)
    return events, out, report


def test_first_run_publishes_each_catalogue(first_day):
    _, out, report = first_day
    assert set(report["catalogues"]) == {"country0", "country1"}
    assert publish.catalogues(out) == {"country0": out / "country0", "country1": out / "country1"}
    for name, part in report["catalogues"].items():
        assert part["decision"] == "published" and part["reason"].startswith("first version")
        folder = out / name
        assert publish.current(folder) == part["version"] and os.path.islink(folder / "current")
        release = json.loads((folder / "current" / "release.json").read_text())
        # ahead of the most popular items on the same holdout, by a margin (random ranking of ~150 items: ~.13)
        holdout = release["metrics"]["holdout"]["recall@20"]
        assert release["catalogue"] == name and holdout > 1.2 * release["metrics"]["popularity"]["recall@20"]
        assert part["popularity"] == release["metrics"]["popularity"]
        assert release["code"]["ledrec"] and release["inputs"]["events_digest"] == report["window"]["events_digest"]
        model = ServingModel.load(folder / "current")  # a valid serving export, one catalogue: this one
        assert list(model.partitions) == [name] and model.version == release["content_version"]
        # one candidate trained once on the window before validation, the winner before the holdout (scored
        # there by the gate) and on the whole window (published)
        assert set(part["stages"]) == set(STAGES) | {"gate+publish"}
        assert part["variant"] == "project" and [c["variant"] for c in part["candidates"]] == ["project"]
        assert release["choice"]["refit"] and release["choice"]["candidates"][0]["validation"]["recall@20"] > 0
        assert all(s["wall_s"] >= 0 and s["peak_rss_gib"] > 0 for s in part["stages"].values())
    assert len(list((out / "reports").glob("*.json"))) == 1


def test_a_run_on_unchanged_inputs_recomputes_nothing(first_day):
    events, out, report = first_day
    again = run_pipeline(settings(events, out), progress=False)
    for name, part in again["catalogues"].items():
        assert part["decision"] == "unchanged", part
        assert part["version"] == report["catalogues"][name]["version"]
        assert all(part["stages"][s]["cached"] for s in STAGES)


def test_a_new_day_publishes_a_new_version_and_a_worse_model_is_refused(first_day, tmp_path):
    events, out, report = first_day
    refused = run_pipeline(worse(events, out, tmp_path / "w"), progress=False)
    for name, part in refused["catalogues"].items():
        assert part["decision"] == "refused", part
        assert part["version"] == report["catalogues"][name]["version"] == publish.current(out / name)
        assert part["candidate"]["recall@20"] < part["published"]["recall@20"]
        assert "keeps serving" in part["reason"]
    # one more day of events, in a copy: the module's fixture stays days 0-14 for the tests that compare to it
    import shutil

    longer = tmp_path / "events"
    shutil.copytree(events, longer)
    write_days(longer, [15])
    later = run_pipeline(settings(longer, out, gate_margin=0.5), progress=False)
    for name, part in later["catalogues"].items():
        assert part["decision"] == "published", part
        assert part["version"] != report["catalogues"][name]["version"]
        assert set(part["published"]) == {"recall@20", "ndcg@20", "users"}  # the old model, same holdout
        assert publish.current(out / name) == part["version"]
        assert publish.versions(out / name) == sorted([report["catalogues"][name]["version"], part["version"]])
        # rollback: back to the first version, and the log says so
        assert publish.rollback(out / name) == (part["version"], report["catalogues"][name]["version"])
        assert publish.current(out / name) == report["catalogues"][name]["version"]
        assert [r["action"] for r in publish.releases(out / name)] == ["publish", "publish", "rollback"]


def test_a_pretraining_window_counts_pairs_of_timelines(first_day, tmp_path):
    events, _, report = first_day
    windowed = run_pipeline(settings(events, tmp_path / "pub", window=3, catalogues="country0"), progress=False)
    part = windowed["catalogues"]["country0"]
    assert part["decision"] == "published"
    # fewer pairs than all pairs of each timeline, and still a useful model
    assert (
        0
        < part["stages"]["train"]["cooccurrence_nnz"]
        < report["catalogues"]["country0"]["stages"]["train"]["cooccurrence_nnz"]
    )
    assert part["candidate"]["recall@20"] > 1.2 * part["popularity"]["recall@20"]


def test_retention_keeps_the_newest_and_the_current(tmp_path):
    folder = publish.register(tmp_path, "x")
    for k in range(4):
        staged = tmp_path / f"s{k}"
        staged.mkdir()
        publish.add_version(folder, staged, f"2026010{k}T000000Z-v{k}")
    publish.switch(folder, "20260100T000000Z-v0", {"action": "publish"})
    assert publish.prune(folder, keep=2) == ["20260101T000000Z-v1"]  # the current (oldest) one stays
    assert publish.versions(folder) == ["20260100T000000Z-v0", "20260102T000000Z-v2", "20260103T000000Z-v3"]


def test_catalogue_names_never_become_paths(tmp_path):
    for name in ("..", "a/b", "%41", ".hidden", "x" * 300, "FR"):
        folder = publish.register(tmp_path, name)
        assert folder.parent == tmp_path and folder.is_dir() and len(folder.name) <= 100
        assert folder.name == name or folder.name.startswith("%")
    names = {"..", "a/b", "%41", ".hidden", "x" * 300, "FR"}
    assert set(publish.catalogues(tmp_path)) == names and len({p.name for p in tmp_path.iterdir()}) == 7


def test_holdout_metrics_compare_models_of_other_vocabularies():
    """A model that lacks some of the holdout's items is scored on the same users and targets: what it
    cannot know counts as a miss, not as a smaller denominator."""
    import scipy.sparse as sp

    from ledrec.data.splits import EvalSet

    ids = np.array(["a", "b", "c", "d"])
    vectors = np.eye(4, 2, dtype=np.float32)
    known = ServingModel(
        ids[:3], vectors[:3], vectors[:3], np.array([0, 0, 1], np.float32), np.eye(2, dtype=np.float32)
    )
    holdout = EvalSet(
        sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32)),
        sp.csr_matrix(np.array([[0, 0, 1, 1], [0, 0, 1, 0]], np.float32)),
        np.array(["u1", "u2"]),
    )
    metrics = holdout_metrics(known, holdout, ids, k=1, partition="", max_users=10)
    # u1: top-1 without "a" is "c" (bias 1): 1 hit of 2 targets ("d" unknown) → .5; u2: cold start → "c": 1/1
    assert metrics["recall@1"] == pytest.approx(0.75) and metrics["users"] == 2


def test_config_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('events = "e"\nout = "o"\nholdout_days = -1\n')
    with pytest.raises(ConfigError, match="holdout_days must be a number > 0"):
        pipeline_config.load(str(bad))
    bad.write_text('events = "e"\nout = "o"\nnope = 1\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['nope'\]"):
        pipeline_config.load(str(bad))
    bad.write_text('events = "e"\nout = "o"\n[led]\ndim = "x"\n')
    with pytest.raises(ConfigError, match="dim must be an int"):
        pipeline_config.load(str(bad))
    with pytest.raises(ConfigError, match="out is required"):
        pipeline_config.load(None, {"events": "e"})
    with pytest.raises(ConfigError, match="no such file"):
        pipeline_config.load(str(tmp_path / "missing.toml"))


def test_a_killed_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    from ledrec.pipeline import daily

    events = tmp_path / "events"
    write_days(events, np.arange(15))
    config = settings(events, tmp_path / "pub", catalogues="country1")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies while exporting

    real = daily._export
    monkeypatch.setattr(daily, "_export", killed)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config, progress=False)
    assert publish.current(tmp_path / "pub" / "country1") is None  # nothing half-published
    monkeypatch.setattr(daily, "_export", real)
    part = run_pipeline(config, progress=False)["catalogues"]["country1"]
    assert [part["stages"][s]["cached"] for s in STAGES[:4]] == [True, True, True, False]
    assert part["decision"] == "published"


@pytest.mark.slow
def test_spark_pretraining_in_the_pipeline(first_day, tmp_path):
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java: Spark cannot start")
    events, _, report = first_day
    config = settings(events, tmp_path / "pub", engine="spark", catalogues="country0")
    part = run_pipeline(config, progress=False)["catalogues"]["country0"]
    local = report["catalogues"]["country0"]
    assert part["decision"] == "published"
    # the same pre-training (same pairs), and a model as good as the local engine's within noise
    assert part["stages"]["train"]["cooccurrence_nnz"] == local["stages"]["train"]["cooccurrence_nnz"]
    assert abs(part["candidate"]["recall@20"] - local["candidate"]["recall@20"]) < 0.03
