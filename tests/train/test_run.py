"""The one-shot pipeline: selection on validation only, refits, subproblem selection, grid edges."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ledrec.data.load import parse_synthetic_spec
from ledrec.data.splits import EvalSet
from ledrec.train.run import RunConfig, candidate_params, grid_edges, popular_subproblem, run
from tests.conftest import random_binary

SMALL = "synthetic:n_users=500,n_items=200,n_topics=5"


def test_candidate_grid_and_edges():
    grid = candidate_params({"lam": [1.0, 10.0], "x": ["a"]})
    assert grid == [{"lam": 1.0, "x": "a"}, {"lam": 10.0, "x": "a"}]
    assert grid_edges({"lam": [1, 10, 100]}, {"lam": 100}) == ["lam"]
    assert grid_edges({"lam": [1, 10, 100]}, {"lam": 10}) == []
    assert grid_edges({"lam": [1, 10]}, {"lam": 10}) == []  # two values have no inside


def test_synthetic_spec():
    cfg = parse_synthetic_spec("synthetic:n_users=50,seed=3,click_rate=0.5")
    assert (cfg.n_users, cfg.seed, cfg.click_rate) == (50, 3, 0.5)


def test_popular_subproblem_keeps_the_head():
    fit = random_binary(100, 30, 0.2, seed=0)
    valid = EvalSet(random_binary(10, 30, 0.2, seed=1), random_binary(10, 30, 0.1, seed=2), np.arange(10))
    sub_fit, sub_valid, info, keep = popular_subproblem(fit, valid, 10)
    counts = np.asarray(fit.sum(axis=0)).ravel()
    assert len(keep) == 10 and counts[keep].min() >= np.sort(counts)[-10]
    assert sub_fit.shape == (100, 10) and sub_valid.input.shape[1] == 10
    assert np.all(np.diff(sub_valid.target.indptr) > 0)
    assert info["items"] == 10 and 0 < info["fit_interactions_kept"] <= 1


def test_selection_never_sees_test_and_reuses_the_selected_model():
    result = run(
        RunConfig(data=SMALL, protocol="strong", model="ease", params={"lam": [1.0, 10.0, 100.0]}, progress=False)
    )
    chosen = result["params"]["lam"]
    best = max(result["selection"]["candidates"], key=lambda c: c["ndcg@100"])
    assert best["params"]["lam"] == chosen
    # strong protocol: the selection model is the final model, so its fit time is reported once
    assert result["timings"]["fit_s"] == best["fit_s"]


def write_bars_without_valid(folder) -> None:
    """A BARS folder with train and test only, so validation is carved out of train."""
    rng = np.random.default_rng(0)
    x = random_binary(200, 60, 0.15, seed=4).tocoo()
    test = rng.random(x.nnz) < 0.2
    for name, mask in (("train", ~test), ("test", test)):
        lines = {}
        for u, i in zip(x.row[mask], x.col[mask], strict=True):
            lines.setdefault(u, []).append(str(i))
        (folder / f"{name}.txt").write_text("".join(f"{u} {' '.join(v)}\n" for u, v in sorted(lines.items())))


CARVED_LED = {"dim": [8], "epochs": [4], "init": ["random"]}


def test_led_refits_with_the_chosen_number_of_epochs_on_a_carved_split(tmp_path):
    write_bars_without_valid(tmp_path)
    result = run(RunConfig(data=str(tmp_path), protocol="bars", model="led", params=CARVED_LED, progress=False))
    assert result["selection"]["refit"]
    assert result["params"]["patience"] == 0  # the refit runs the chosen epochs, no early stopping
    assert 1 <= result["params"]["epochs"] <= 4
    assert result["training"]["best_epoch"] == result["params"]["epochs"]


def test_without_refit_the_selected_checkpoint_is_tested(tmp_path):
    write_bars_without_valid(tmp_path)
    config = RunConfig(data=str(tmp_path), protocol="bars", model="led", params=CARVED_LED, progress=False)
    result = run(replace(config, refit=False))
    assert not result["selection"]["refit"]
    (candidate,) = result["selection"]["candidates"]
    assert result["timings"]["fit_s"] == candidate["fit_s"]  # one training run, not two
    assert result["params"]["patience"] > 0  # the selection run's early stopping, not a refit's fixed epochs
    assert len(result["training"]["history"]) >= result["training"]["best_epoch"]
    refitted = run(config)
    assert result["metrics"] != refitted["metrics"]  # a different model: trained without the carve-out


def test_without_selection_led_trains_exactly_the_given_epochs_once():
    params = {"dim": [8], "epochs": [3], "init": ["random"], "patience": [1]}
    result = run(RunConfig(data=SMALL, protocol="strong", model="led", params=params, progress=False, select=False))
    assert result["selection"]["candidates"] == [] and result["timings"]["select_s"] < 0.01
    assert len(result["training"]["history"]) == 3  # every epoch, no validation to stop early on
    assert result["metrics"]["recall@20"] > 0
    with pytest.raises(ValueError, match="nothing to choose"):
        run(RunConfig(data=SMALL, protocol="strong", model="ease", params={"lam": [1.0, 10.0]}, select=False))


def test_multi_feedback_run_passes_targets_and_pretraining(tmp_path):
    rng = np.random.default_rng(1)
    views = {(u, i) for u in range(120) for i in rng.choice(40, 12, replace=False)}
    buys = sorted(p for p in views if rng.random() < 0.4)
    test = sorted({(u, int(rng.integers(0, 40))) for u in range(120)} - set(buys))
    for name, pairs in (("view", sorted(views)), ("buy", buys), ("test", test)):
        (tmp_path / f"{name}.txt").write_text("".join(f"{u} {i}\n" for u, i in pairs))
    result = run(
        RunConfig(
            data=str(tmp_path),
            protocol="bars",
            model="led",
            params={"dim": [4], "epochs": [2]},
            protocol_options={"pretrain_feedback": ["view"], "exclude": "target"},
            progress=False,
        )
    )
    assert result["data"]["target_feedback"] == "buy"
    assert result["data"]["pretrain_feedback"] == ["view"] and result["data"]["exclude"] == "target"
    assert 0 <= result["metrics"]["recall@20"] <= 1


def test_a_checkpointed_run_refits_into_its_own_checkpoint_and_resumes_both(tmp_path):
    """The selection run and the refit train different matrices with different early stopping: the refit
    keeps its own checkpoint beside the selection's, and running the command again resumes both."""
    data = tmp_path / "data"
    data.mkdir()
    write_bars_without_valid(data)
    ckpt = tmp_path / "ckpt"
    params = {**CARVED_LED, "checkpoint_dir": [str(ckpt)]}
    config = RunConfig(data=str(data), protocol="bars", model="led", params=params, progress=False)
    first = run(config)
    assert first["selection"]["refit"]
    assert (ckpt / "manifest.json").is_file() and (tmp_path / "ckpt-refit" / "manifest.json").is_file()
    again = run(config)  # both runs are complete: resumed, nothing retrained, the same model
    assert again["metrics"] == first["metrics"]
