"""A log without a partition column (one catalogue, named "all"; a root of an earlier version keeps its
unnamed one), and the gate on a holdout too small to decide on: a warning in the report and on stderr, the
published model kept, and an exit status a scheduler can see."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest

from ledrec.cli import main
from ledrec.export import publish
from ledrec.export.mips import ServingModel
from ledrec.pipeline.daily import run_pipeline
from ledrec.serve.batch import retrievers_of
from tests.pipeline.conftest import settings, write_days

TOO_FEW = {"holdout_users": 5000, "min_holdout_users": 1000}  # the log's holdout has ~180 users


@pytest.fixture(scope="module")
def one_catalogue(tmp_path_factory):
    """Days 0-14 of the log without its country column, published with a gate that wants 1,000 users."""
    root = tmp_path_factory.mktemp("one")
    events, out = root / "events", root / "published"
    write_days(events, np.arange(15), partition=False)
    return events, out, run_pipeline(settings(events, out, **TOO_FEW), progress=False)


def test_a_log_without_partitions_publishes_one_catalogue_named_all(one_catalogue):
    _, out, report = one_catalogue
    assert list(report["catalogues"]) == ["all"]
    assert publish.catalogues(out) == {"all": out / "all"} and not (out / "%").exists()
    assert list(publish.status(out)["catalogues"]) == ["all"]
    release = json.loads((out / "all" / "current" / publish.RELEASE).read_text())
    assert release["catalogue"] == "all" and release["inputs"]["partition_column"] is None
    # a client that names no catalogue is answered by it, as by a one-catalogue root before
    (retriever,) = retrievers_of(out).values()
    history = ServingModel.load(out / "all" / "current").item_ids[:3].tolist()
    assert len(retriever.recommend("", history, 5).item_ids) == 5


def test_a_holdout_too_small_to_decide_on_warns_and_keeps_the_published_model(one_catalogue, tmp_path, capsys, caplog):
    events, published, report = one_catalogue
    part = report["catalogues"]["all"]
    assert part["decision"] == "published"  # a first version: nothing else could serve
    users = part["stages"]["events"]["holdout_users"]
    assert 0 < users < 1000 and f"on {users} holdout users" in part["reason"]
    assert part["warnings"] == [
        f"the holdout has {users} users, fewer than min_holdout_users (1000): too few to compare models on "
        f"(recall@20's standard error is up to {0.5 / users**0.5:.2f})"
    ]
    assert report["warnings"] == [f"catalogue 'all': {part['warnings'][0]}"]
    out = tmp_path / "published"
    shutil.copytree(published, out, symlinks=True)
    first = publish.current(out / "all")
    # another model (within the margin) on the same too small holdout: refused, the report printed, exit
    # status 3, warned on stderr
    argv = ["pipeline", "run", "--events", str(events), "--out", str(out), "--quiet", "--led", "dim=8"]
    argv += ["--gate-margin", "0.5", "--holdout-users", "5000", "--min-holdout-users", "1000"]
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 3
    refused = json.loads(capsys.readouterr().out)["catalogues"]["all"]
    assert refused["decision"] == "refused" and "too few to replace it on" in refused["reason"]
    assert refused["published"]["users"] == users and publish.current(out / "all") == first
    # (a WARNING log: the command line's handler writes it to stderr)
    assert [r.getMessage() for r in caplog.records if r.name == "ledrec.pipeline.daily"] == [
        f"[all] {part['warnings'][0]}"
    ]
    # enough evidence by the operator's measure: the same model is published, exit status 0
    assert main([*argv[:-4], "--min-holdout-users", "20"]) == 0
    assert json.loads(capsys.readouterr().out)["catalogues"]["all"]["decision"] == "published"
    assert publish.current(out / "all") != first


def test_a_root_of_an_earlier_version_keeps_its_unnamed_catalogue(one_catalogue, tmp_path):
    """Such a root holds "" in the folder "%": it is still read, served and published to, never renamed
    under a service that follows it."""
    events, published, _ = one_catalogue
    legacy = tmp_path / "legacy"
    model = ServingModel.load(published / "all" / "current")
    model = replace(model, partitions={"": model.partitions["all"]}, info=model.info)
    model.save(legacy / "%" / publish.VERSIONS / "v0")
    os.symlink(os.path.join(publish.VERSIONS, "v0"), legacy / "%" / publish.CURRENT)
    (legacy / publish.MARKER).write_text(json.dumps({"kind": publish.KIND, "catalogues": {"": "%"}}))
    assert publish.status(legacy)["catalogues"][""]["current"] == "v0"
    report = run_pipeline(settings(events, legacy, min_holdout_users=20, gate_margin=0.5, seed=1), progress=False)
    assert list(report["catalogues"]) == [""] and report["catalogues"][""]["decision"] == "published"
    assert publish.catalogues(legacy) == {"": legacy / "%"} and not (legacy / "all").exists()
    assert publish.current(legacy / "%") == report["catalogues"][""]["version"]
    (retriever,) = retrievers_of(legacy).values()
    assert len(retriever.recommend("", model.item_ids[:3].tolist(), 5).item_ids) == 5
