"""The daily job chooses LED's variant on its own data: every candidate trained once on the window before the
validation cut (pre-training included: it never sees the validation period), scored once on validation, the
winner scored on the holdout by the gate and published refit on the whole window."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ledrec.data.splits import PreparedData
from ledrec.export import publish
from ledrec.models.led import LED
from ledrec.pipeline.daily import run_pipeline
from tests.pipeline.conftest import settings, write_days


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    folder = tmp_path_factory.mktemp("choice") / "events"
    write_days(folder, np.arange(15))
    return folder


def test_candidates_learn_only_from_before_the_validation_cut(events, tmp_path, monkeypatch):
    """What each fit learns from, pre-training included: the candidates the window before validation, the
    gate's model the window before the holdout, the published one everything."""
    seen: list[tuple[int, int]] = []
    fit = LED.fit

    def recording(self, X, validation=None, **side):
        pretrain = side.get("pretrain_matrix")
        seen.append((X.nnz, -1 if pretrain is None else pretrain.nnz))
        return fit(self, X, validation, **side)

    monkeypatch.setattr(LED, "fit", recording)
    config = settings(events, tmp_path / "pub", catalogues="country0", pretrain_feedback="view")
    report = run_pipeline(config, progress=False)
    data = PreparedData.load(next((tmp_path / "pub" / ".work" / "country0").glob("events-*")))
    windows = [(m.nnz, data.pretrain[k].nnz) for m, k in ((data.fit_valid, "fit_valid"), (data.fit_test, "fit_test"))]
    windows.append((data.fit_all.nnz, data.pretrain["fit_all"].nnz))
    assert windows[0] < windows[1] < windows[2]  # (the three windows differ: the test can tell them apart)
    assert seen == windows  # candidate (fit_valid), the gate's model (fit_test), the published refit (fit_all)
    assert report["catalogues"]["country0"]["decision"] == "published"


def test_the_best_variant_on_validation_is_published_refit_and_every_candidate_is_reported(events, tmp_path):
    config = settings(events, tmp_path / "pub", catalogues="country1", variants="spectral,project")
    part = run_pipeline(config, progress=False)["catalogues"]["country1"]
    scores = {c["variant"]: c["validation"]["recall@20"] for c in part["candidates"]}
    assert set(scores) == {"spectral", "project"} and part["variant"] == max(scores, key=scores.get)
    trainings = [s for s in part["stages"] if s.startswith("candidate ")]
    assert sorted(trainings) == ["candidate project", "candidate spectral"]  # one training each
    assert {part["stages"][s]["variant"] for s in ("train", "refit")} == {part["variant"]}
    folder = tmp_path / "pub" / "country1"
    release = json.loads((folder / "current" / publish.RELEASE).read_text())
    assert release["choice"]["variant"] == part["variant"] and release["choice"]["refit"]
    assert [c["variant"] for c in release["choice"]["candidates"]] == ["spectral", "project"]
    assert release["metrics"]["holdout"] == part["candidate"]  # the gate's score: before the refit
    # what is published is the refit (the whole window), not the model the gate scored
    again = run_pipeline(
        settings(events, tmp_path / "pub2", catalogues="country1", variants="spectral,project", refit=False),
        progress=False,
    )
    unrefit = json.loads((tmp_path / "pub2" / "country1" / "current" / publish.RELEASE).read_text())
    assert not unrefit["choice"]["refit"] and again["catalogues"]["country1"]["variant"] == part["variant"]
    assert unrefit["content_version"] != release["content_version"]


def test_a_variant_that_cannot_learn_from_the_data_is_skipped_with_why(events, tmp_path):
    config = settings(
        events, tmp_path / "pub", catalogues="country0", variants="wls,project", input_feedback="view,click",
        target_feedback="click",
    )  # fmt: skip
    part = run_pipeline(config, progress=False)["catalogues"]["country0"]
    wls = next(c for c in part["candidates"] if c["variant"] == "wls")
    assert "separate targets" in wls["skipped"] and part["variant"] == "project"
