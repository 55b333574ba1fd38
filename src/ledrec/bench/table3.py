"""The seed paper's Table 3 as a command, on the production-like log (§9.2): Recall@20 on the clicks of
the last 7 days and click-rank over the clicked banners' items, for LED trained with BPR, init {random,
SVD pre-trained on views} × tuning {full, project}, with uniform negatives and with half of each user's
negatives taken from the banners it saw and did not click (the paper's choice), against LED-Mult,
Mult-VAE and popularity. Banner-negative rows are trained for the order *within* banners, so their epoch
is chosen on the validation users' click-rank; the others on validation NDCG@20.

Mult-VAE has one row (random init, full training): its encoder's first layer is I → 600, so there is no
d-dimensional SVD to start it from nor a d×d projection to tune — the paper's SVD/project variants are
LED's. Every model is chosen on the validation users (early stopping on NDCG@20); the test period is
touched once.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.evaluate.metrics import click_rank
from ledrec.evaluate.ranking import evaluate
from ledrec.io import write_json
from ledrec.models import LED, MultVAE, Popularity, Recommender
from ledrec.simulate.world import BannerSet, EventLog, ProductionConfig, production_protocol, world_log

log = logging.getLogger(__name__)

# (name, model, options, banner negatives?)
ROWS: tuple[tuple[str, str, dict[str, Any], bool], ...] = (
    *(
        (f"LED-BPR {negs} negatives {init}/{tuning}", "led", {"loss": "bpr", "init": init, "tuning": tuning}, banner)
        for negs, banner in (("uniform", False), ("banner", True))
        for init in ("random", "svd")
        for tuning in ("full", "project")
    ),
    ("LED-Mult svd/full", "led", {"loss": "mult", "init": "svd", "tuning": "full"}, False),
    ("Mult-VAE random/full", "vae", {"loss": "mult"}, False),
    ("popularity (GBO)", "pop", {}, False),
)


def banner_click_rank(model: Recommender, inputs: sp.csr_matrix, banners: BannerSet, batch: int = 2048) -> float:
    """Mean click-rank (0 = every click ranked first among its banner's items, 0.5 = random) of banners
    whose ``rows`` index the histories ``inputs``."""
    ranks = []
    for lo in range(0, inputs.shape[0], batch):
        in_batch = np.flatnonzero((banners.rows >= lo) & (banners.rows < lo + batch))
        if len(in_batch) == 0:
            continue
        scores = model.score(inputs[lo : lo + batch])  # (batch, I)
        for b in in_batch:
            shown = banners.items[b] >= 0
            row = scores[banners.rows[b] - lo]
            ranks.append(click_rank(row[banners.items[b][shown]], banners.clicked[b][shown]))
    ranks_arr = np.asarray(ranks)
    return float(np.nanmean(ranks_arr)) if len(ranks_arr) else float("nan")


def _minus_click_rank(model: Recommender, inputs: sp.csr_matrix, banners: BannerSet) -> float:
    return -banner_click_rank(model, inputs, banners)


def table3(
    event_log: EventLog,
    n_items: int,
    out: str | Path,
    *,
    epochs: int = 30,
    dim: int = 64,
    negatives: int = 100,
    seed: int = 0,
    progress: bool = True,
    rows: tuple[tuple[str, str, dict[str, Any], bool], ...] = ROWS,
) -> list[dict[str, Any]]:
    """Fit and evaluate every row; write ``table3.json`` and ``table3.md`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data, banners, negatives_matrix = production_protocol(event_log, n_items, seed=seed)
    log.info("table3 data: %s", data.summary())
    results = []
    for name, model_name, options, banner_negatives in rows:
        t0 = time.perf_counter()
        model: Recommender
        if model_name == "led":
            model = LED(dim=dim, negatives=negatives, epochs=epochs, patience=5, random_state=seed, **options)
        elif model_name == "vae":
            model = MultVAE(epochs=epochs, patience=10, random_state=seed, **options)
        else:
            model = Popularity()
        model.progress = progress
        side: dict[str, Any] = {}
        if model_name in ("led", "vae"):
            side = {"targets": data.targets["fit_test"], "validation": data.valid}
        if model_name == "led":
            side["pretrain_matrix"] = data.pretrain["fit_test"]
            if banner_negatives:  # trained for the order within banners: selected on validation click-rank
                side["negatives_matrix"] = negatives_matrix
                model.validation_score = partial(_minus_click_rank, inputs=data.valid.input, banners=banners["valid"])
        model.fit(data.fit_test, **side)
        fit_s = time.perf_counter() - t0
        res = evaluate(model.score, data.test, (20, 50))
        row = {
            "row": name,
            "model": model_name,
            **options,
            "recall@20": res["recall@20"],
            "recall@50": res["recall@50"],
            "ndcg@20": res["ndcg@20"],
            "click_rank": banner_click_rank(model, data.test.input, banners["test"]),
            "selected_on": "valid click-rank" if banner_negatives else "valid NDCG@20",
            "best_epoch": getattr(model, "best_epoch_", None),
            "fit_s": round(fit_s, 1),
        }
        log.info("table3 %s: %s", name, row)
        results.append(row)
    meta = {"data": data.summary(), "test_banners": len(banners["test"].rows), "epochs": epochs, "dim": dim}
    write_json(out / "table3.json", {"rows": results, **meta})
    (out / "table3.md").write_text(markdown(results, meta))
    return results


def world_table3(
    directory: str | Path | None, world: ProductionConfig | None, out: str | Path, **options: Any
) -> list[dict[str, Any]]:
    """``ledrec bench table3``: :func:`table3` (``options`` are its keyword arguments) on the log of a
    directory of ``ledrec simulate generate``, or, without one, of a world generated from ``world``
    (:func:`~ledrec.simulate.world.world_log`)."""
    event_log, n_items = world_log(directory, world)
    return table3(event_log, n_items, out, **options)


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    test = meta["data"]["test"]
    lines = [
        f"Table 3 analogue on the production-like log: {test['users']:,} test users with a click in the last 7 "
        f"days, {meta['test_banners']:,} clicked test banners. Recall@20 over all items (items already clicked "
        "excluded, viewed items rankable); click-rank over each clicked banner's items (0 = first, 0.5 = random).",
        "",
        "| row | Recall@20 | Recall@50 | NDCG@20 | click-rank | selected on | best epoch | training |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['row']} | {r['recall@20']:.4f} | {r['recall@50']:.4f} | {r['ndcg@20']:.4f} | "
            f"{r['click_rank']:.3f} | {r['selected_on'] if r['model'] != 'pop' else '–'} | "
            f"{r['best_epoch'] if r['best_epoch'] is not None else '–'} | {r['fit_s']:.0f} s |"
        )
    return "\n".join(lines) + "\n"
