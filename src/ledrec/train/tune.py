"""``ledrec tune``: a budgeted hyper-parameter search on validation only, then ``ledrec run``'s final fit
and one test evaluation of the winner.

Optuna's TPE sampler proposes a candidate from each model's search space (:data:`SPACES`: the few options
that matter, with the ranges measured so far); iterative models report their validation metric after every
epoch, and a candidate below the median of earlier ones at the same epoch is pruned (Optuna's
``MedianPruner``), so a budget of trials or seconds goes to the promising region. The winner is then run
exactly as ``ledrec run`` would run it with those values (its own validation selection and refit), so the
JSON result is ``ledrec run``'s, with a ``tuning`` record of every trial.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from ledrec.data.load import load_prepared
from ledrec.errors import ConfigError
from ledrec.evaluate.ranking import evaluate
from ledrec.models import get_model
from ledrec.train.run import RunConfig, run, side

log = logging.getLogger(__name__)

# model → option → ("int"|"float"|"log"|"choice", low/choices, high); the search spaces. LED's: dimension,
# input dropout, learning rate, initial norm (docs/led.md: the options that moved it), the encoder and the
# reduction; ALS's: what its grid in `ledrec bench peers` had to widen twice (regularisation to 1,000).
SPACES: dict[str, dict[str, tuple[Any, ...]]] = {
    # LED's default start, the spectral closed form (no epoch): its rank, degree exponent and filter shape
    "led": {
        "dim": ("choice", (64, 128, 256, 512, 1024)),
        "spectral_exponent": ("float", 0.0, 0.75),
        "spectral_order": ("choice", (0.0, 2.0, 4.0, 8.0)),
        "spectral_cutoff": ("float", 0.2, 1.0),
    },
    # LED trained from an SVD or random start (--init svd|random)
    "led-trained": {
        "dim": ("choice", (64, 128, 256, 512)),
        "dropout": ("float", 0.1, 0.8),
        "lr": ("log", 1e-3, 3e-2),
        "init_scale": ("log", 1.0, 8.0),
        "encoder": ("choice", ("tied", "untied")),
        "reduce": ("choice", ("mean", "sqrt")),
    },
    # LED on ALS's loss (--loss wls): its rank, confidence and L2 weight (validation: amazon-cds and Gowalla λ 100
    # with the frequency scaling; ML-1M 100-1,000)
    "led-wls": {
        "dim": ("choice", (128, 256, 512, 1024)),
        "wls_confidence": ("log", 1.0, 100.0),
        "wls_regularization": ("log", 0.1, 3000.0),
    },
    "als": {
        "factors": ("choice", (64, 128, 256, 512)),
        "regularization": ("log", 0.1, 3000.0),
        "alpha": ("log", 1.0, 100.0),
    },
    # implicit's BPR: its grid in `ledrec bench peers` chose an edge on two boards of three (docs/peers.md)
    "bprmf": {
        "factors": ("choice", (64, 128, 256)),
        "learning_rate": ("log", 1e-3, 0.1),
        "regularization": ("log", 1e-5, 0.1),
        "iterations": ("choice", (100, 200, 400)),
    },
    "ease": {"lam": ("log", 1.0, 30000.0)},
    "vae": {"dropout": ("float", 0.2, 0.8), "lr": ("log", 1e-4, 1e-2), "latent": ("choice", (100, 200, 400))},
}


def tune(
    config: RunConfig,
    trials: int = 30,
    timeout: float | None = None,
    seed: int = 0,
    given: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Search ``config.model``'s space for at most ``trials`` candidates or ``timeout`` seconds, then run
    the winner; returns ``ledrec run``'s result with ``tuning``. Options named in ``given`` keep their value
    in ``config.params`` instead of being searched."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("ledrec tune needs Optuna: pip install 'ledrec[tune]'") from None
    if config.model not in SPACES or config.model.startswith("led-"):
        raise ConfigError(f"no search space for --model {config.model}; tune one of {sorted(SPACES)}")
    start = time.perf_counter()
    data = load_prepared(
        config.data, config.protocol, seed=config.seed, format=config.format, feedback=config.feedback,
        protocol_options=config.protocol_options,
    )  # fmt: skip
    model_cls = get_model(config.model)
    searched = {k: v for k, v in config.params.items() if len(v) > 1}
    if searched:
        raise ConfigError(f"ledrec tune searches by itself: give one value for {sorted(searched)}")
    key = config.model
    if config.model == "led":  # which LED: its loss as it will be for this catalogue (large: wls by default)
        probe = model_cls(**{k: v[0] for k, v in config.params.items()})
        if probe.effective("variant", data.fit_valid.shape[1]) == "wls":
            key = "led-wls"
        elif probe.init != "spectral":
            key = "led-trained"
    space = {k: v for k, v in SPACES[key].items() if k not in given}
    if "dim" in space:  # a rank the catalogue has (the spectral start's SVD needs dim < min(users, items))
        fitting = min(data.fit_valid.shape)
        space["dim"] = ("choice", tuple(d for d in space["dim"][1] if d < fitting) or (max(1, fitting // 2),))
    fixed = {k: v[0] for k, v in config.params.items() if k not in space}
    metric = data.selection_metric
    ks = (int(metric.split("@")[1]),)
    records: list[dict[str, Any]] = []

    def objective(trial: Any) -> float:
        params = fixed | {name: _suggest(trial, name, spec) for name, spec in space.items()}
        model = model_cls(**params, random_state=config.seed)
        model.progress, model.item_ids = False, data.items.ids

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        model.on_validation = report
        t0 = time.perf_counter()
        try:
            model.fit(data.fit_valid, validation=data.valid, **side(model_cls, data, "fit_valid"))
        except optuna.TrialPruned:
            records.append({"params": params, "pruned": True, "fit_s": round(time.perf_counter() - t0, 1)})
            raise
        value = evaluate(model.score, data.valid, ks)[metric]
        records.append({"params": params, metric: value, "best_epoch": getattr(model, "best_epoch_", None),
                        "fit_s": round(time.perf_counter() - t0, 1)})  # fmt: skip
        log.info("trial %d: %s -> %s %.5f", trial.number, params, metric, value)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    study.optimize(objective, n_trials=trials, timeout=timeout, show_progress_bar=config.progress)
    best = study.best_trial.params
    search_s = time.perf_counter() - start
    final = run(replace(config, params={**config.params, **{k: [v] for k, v in best.items()}}))
    final["tuning"] = {
        "metric": metric,
        "trials": records,
        "best": best,
        "best_value": study.best_value,
        "pruned": sum(1 for r in records if r.get("pruned")),
        "search_s": round(search_s, 1),
        "space": {k: list(v[1:]) for k, v in space.items()},
    }
    return final


def _suggest(trial: Any, name: str, spec: tuple[Any, ...]) -> Any:
    kind = spec[0]
    if kind == "choice":
        return trial.suggest_categorical(name, list(spec[1]))
    if kind == "int":
        return trial.suggest_int(name, spec[1], spec[2])
    return trial.suggest_float(name, spec[1], spec[2], log=kind == "log")
