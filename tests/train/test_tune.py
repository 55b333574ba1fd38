"""``ledrec tune``: a search on validation only, the winner run as ``ledrec run`` runs it."""

from __future__ import annotations

import json

import pytest

from ledrec.cli import main
from ledrec.models import LED
from tests.conftest import planted_task

DATA = "synthetic:n_users=300,n_items=80"


def test_the_search_keeps_the_best_validation_trial_and_tests_it_once(capsys):
    pytest.importorskip("optuna")
    assert main(["tune", "--data", DATA, "--protocol", "strong", "--model", "ease", "--trials", "6", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    tuning = result["tuning"]
    assert len(tuning["trials"]) == 6 and tuning["pruned"] == 0
    metric = tuning["metric"]
    best = max(tuning["trials"], key=lambda t: t[metric])
    assert tuning["best"] == {"lam": best["params"]["lam"]} == {"lam": result["params"]["lam"]}
    assert set(result["metrics"]) >= {"recall@20", "ndcg@20"}  # the winner, tested


def test_options_given_are_kept_not_searched(capsys):
    pytest.importorskip("optuna")
    argv = ["tune", "--data", DATA, "--protocol", "strong", "--model", "led", "--trials", "2", "--quiet"]
    assert main([*argv, "--dim", "8", "--epochs", "2", "--encoder", "untied"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert all(t["params"]["dim"] == 8 and t["params"]["encoder"] == "untied" for t in result["tuning"]["trials"])
    assert "dim" not in result["tuning"]["space"] and result["params"]["dim"] == 8
    assert main([*argv, "--dim", "8,16"]) == 2  # a list would be a search of its own: refused
    assert "give one value" in capsys.readouterr().err


def test_every_validation_is_reported_and_may_stop_the_fit():
    train, held = planted_task()
    seen = []

    def report(step: int, value: float) -> None:
        seen.append((step, value))
        if step >= 2:
            raise KeyboardInterrupt  # what a pruner does to a candidate that falls behind

    model = LED(dim=8, epochs=10, patience=0)
    model.on_validation = report
    with pytest.raises(KeyboardInterrupt):
        model.fit(train, validation=held)
    assert [s for s, _ in seen] == [0, 1, 2] and all(0 <= v <= 1 for _, v in seen)


def test_led_on_als_loss_searches_its_own_space(capsys):
    pytest.importorskip("optuna")
    argv = ["tune", "--data", DATA, "--protocol", "strong", "--model", "led", "--loss", "wls", "--trials", "2"]
    assert main([*argv, "--epochs", "2", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["tuning"]["space"]) == {"dim", "wls_confidence", "wls_regularization"}
    assert all(t["params"]["loss"] == "wls" for t in result["tuning"]["trials"])
