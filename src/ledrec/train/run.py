"""``ledrec run``: prepare data, choose hyper-parameters on validation only, fit, evaluate on test, report.

The contract (later stages and outside checks rely on it): one JSON object
``{"dataset", "protocol", "model", "params", "metrics": {"recall@20", …}, "timings": {"fit_s", "eval_s"}}``
plus extra keys (``validation``, ``data``) that carry the evidence for each choice.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.data.load import load_prepared
from ledrec.data.splits import EvalSet, PreparedData
from ledrec.errors import ConfigError
from ledrec.evaluate.ranking import DEFAULT_KS, evaluate
from ledrec.io import save_artifact, write_json
from ledrec.models import get_model
from ledrec.models.base import Recommender

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    data: str
    protocol: str
    model: str
    params: dict[str, list[Any]] = field(default_factory=dict)  # each searchable option: candidate values
    seed: int = 0
    format: str | None = None
    feedback: list[str] | None = None
    protocol_options: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    progress: bool = True
    select_max_items: int | None = None  # choose hyper-parameters on the most popular items only
    select: bool = True  # False: no validation run; one fit on the test-time training data, as configured
    # False: the model selected on validation is the final model even where validation was carved out of
    # train (BARS without a valid file), instead of a refit on all of train: half the cost of an
    # early-stopped network, for 10% less training data per user
    refit: bool = True
    overwrite: bool = False  # an ``out`` that holds anything is refused unless this (then it is cleared first)


def candidate_params(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The grid: every combination of the candidate values."""
    keys = list(params)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(params[k] for k in keys))]


def run(config: RunConfig) -> dict[str, Any]:
    start = time.perf_counter()
    if config.out:
        claim_run_dir(config.out, config.overwrite)
    data = load_prepared(
        config.data,
        config.protocol,
        seed=config.seed,
        format=config.format,
        feedback=config.feedback,
        protocol_options=config.protocol_options,
    )
    prepare_s = time.perf_counter() - start
    log.info("data: %s", data.summary())
    model_cls = get_model(config.model)
    candidates = candidate_params(config.params)
    metric = data.selection_metric
    if not config.select and len(candidates) > 1:
        raise ConfigError(
            f"--no-select: nothing to choose between {len(candidates)} candidate settings without a validation run; "
            "give one value per option"
        )

    # ---- selection on validation (only when there is something to choose)
    fit_valid, valid, subproblem, subproblem_items = data.fit_valid, data.valid, None, slice(None)
    if config.select_max_items and data.n_items > config.select_max_items:
        fit_valid, valid, subproblem, subproblem_items = popular_subproblem(
            data.fit_valid, data.valid, config.select_max_items
        )
        log.info("selection on a subproblem: %s", subproblem)
    validation: list[dict[str, Any]] = []
    best: Recommender | None = None
    best_fit_s = 0.0
    select_start = time.perf_counter()
    # one candidate and a fixed schedule (no early stopping): validation would choose nothing, train once
    chooses = len(candidates) > 1 or model_cls(**candidates[0]).selects_on_validation(data.n_items)
    if config.select and chooses:
        best_value = -np.inf
        for params in candidates:
            t0 = time.perf_counter()
            model = model_cls(**params, random_state=config.seed)
            model.progress, model.item_ids = config.progress, data.items.ids[subproblem_items]
            model.fit(fit_valid, validation=valid, **side(model_cls, data, "fit_valid", subproblem_items))
            fit_s = _fit_seconds(model, time.perf_counter() - t0)
            res = evaluate(model.score, valid, DEFAULT_KS, progress=config.progress, desc="validate")
            tried = _searched(model.used_params(), params)  # as fitted: a preset's values filled in
            validation.append(
                {"params": tried, metric: res[metric], "recall@20": res["recall@20"], "fit_s": round(fit_s, 3)}
            )
            log.info("validation %s: %s=%.5f (fit %.1fs)", tried, metric, res[metric], fit_s)
            if res[metric] > best_value:
                best_value, best, best_fit_s = res[metric], model, fit_s
            else:
                del model
    select_s = time.perf_counter() - select_start
    chosen = best.get_params() if best is not None else {**candidates[0], "random_state": config.seed}
    refit = best.refit_params() if best is not None else chosen
    edges = grid_edges(config.params, chosen)
    for name in edges:
        log.warning("the chosen %s=%s is at the edge of the searched values; widen the search", name, chosen[name])

    # ---- final model on the test-time training matrix
    fit_start = time.perf_counter()
    if best is not None and subproblem is None and (data.fit_valid is data.fit_test or not config.refit):
        final = best  # same training matrix (or no refit asked): the selected model is final
        refitted = False
        fit_s = best_fit_s
    else:
        best = None  # free the selection model's memory before refitting
        final = model_cls(**refit)
        final.progress, final.item_ids = config.progress, data.items.ids
        final.fit(data.fit_test, **side(model_cls, data, "fit_test"))
        fit_s = _fit_seconds(final, time.perf_counter() - fit_start)
        refitted = validation != []
    result_test = evaluate(final.score, data.test, DEFAULT_KS, progress=config.progress, desc="test")

    result = {
        "dataset": data.name,
        "protocol": data.protocol,
        "model": config.model,
        "params": final.used_params(),  # (values a model's preset decided at fit time included)
        "metrics": {k: round(v, 6) for k, v in result_test.metrics.items()},
        "timings": {
            "fit_s": round(fit_s, 3),
            "eval_s": round(result_test.seconds, 3),
            "select_s": round(select_s, 3),
            "prepare_s": round(prepare_s, 3),
            "total_s": round(time.perf_counter() - start, 3),
        },
        "selection": {
            "metric": metric,
            "candidates": validation,
            "subproblem": subproblem,
            "at_grid_edge": edges,
            "refit": refitted,
        },
        "data": data.summary(),
    }
    if hasattr(final, "history_"):
        result["training"] = {"best_epoch": final.best_epoch_, "history": final.history_}
    if config.out:
        save_run(config.out, final, data, result)
    return result


def popular_subproblem(
    fit: sp.csr_matrix, valid: EvalSet, max_items: int
) -> tuple[sp.csr_matrix, EvalSet, dict[str, Any], np.ndarray]:
    """The selection problem restricted to the ``max_items`` items most frequent in ``fit``.

    Why: a fit that costs O(I³) (EASE) makes a validation search at full size expensive (13 minutes per λ
    on Gowalla here); the hyper-parameter that wins on the popular head is then refit once at full size.
    Validation users left without any target are dropped. Returns the restricted training matrix and
    validation set, a dict that says how much was kept, and the kept item indices.
    """
    counts = np.asarray(fit.sum(axis=0)).ravel()
    keep = np.sort(np.argsort(-counts, kind="stable")[:max_items])
    sub_fit = fit[:, keep].tocsr()
    sub_input, sub_target = valid.input[:, keep].tocsr(), valid.target[:, keep].tocsr()
    rows = np.flatnonzero(np.diff(sub_target.indptr) > 0)
    info = {
        "items": len(keep),
        "fit_interactions_kept": round(sub_fit.nnz / max(fit.nnz, 1), 4),
        "valid_targets_kept": round(sub_target.nnz / max(valid.target.nnz, 1), 4),
        "valid_users_kept": len(rows),
    }
    sub_valid = replace(valid, input=sub_input[rows], target=sub_target[rows], user_ids=valid.user_ids[rows])
    return sub_fit, sub_valid, info, keep


def side(
    model_cls: type[Recommender], data: PreparedData, which: str, items: slice | np.ndarray = slice(None)
) -> dict[str, sp.csr_matrix]:
    """Multi-feedback target / pre-training matrices for models that take them (restricted to ``items``)."""
    if not model_cls.accepts_side_matrices:
        return {}
    return {k: m[:, items].tocsr() for k, m in data.side(which).items()}


def grid_edges(params: dict[str, list[Any]], chosen: dict[str, Any]) -> list[str]:
    """Numeric options searched over 3+ values whose chosen value is the smallest or largest tried."""
    edges = []
    for name, values in params.items():
        if len(values) >= 3 and all(isinstance(v, int | float) for v in values) and name in chosen:
            if chosen[name] in (min(values), max(values)):
                edges.append(name)
    return edges


def _fit_seconds(model: Recommender, wall: float) -> float:
    """The fit's wall time, or, for a model resumed from a checkpoint, its training time over all runs."""
    return max(wall, float(getattr(model, "train_s_", 0.0)))


def _searched(params: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in template}


def claim_run_dir(out: str, overwrite: bool) -> None:
    """Refuse a run directory that holds anything (a new run over an old one left a mixed directory: the
    manifest of one model beside the arrays and the serving export of another), unless ``overwrite``,
    which clears it first. Checked before any work, so nothing is lost to a late refusal."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not overwrite:
            raise ConfigError(f"--out {out}: already exists and is not empty; choose another or add --overwrite")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def save_run(out: str, model: Recommender, data: PreparedData, result: dict[str, Any]) -> Path:
    """RUN_DIR/model (arrays + manifest), RUN_DIR/items (id vocabulary), RUN_DIR/result.json."""
    out_dir = Path(out)
    model.save(out_dir / "model", extra={"dataset": data.name, "protocol": data.protocol})
    save_artifact(out_dir / "items", "vocabulary", {"item_ids": data.items.ids})
    write_json(out_dir / "result.json", result)
    return out_dir
