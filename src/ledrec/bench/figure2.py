"""The seed paper's Figure 2 as a command: how much pre-training helps when fine-tuning data is scarce.

LED Recall@50 on test for init {random, SVD} × tuning {full, project}, fine-tuned on 1%, 10% and 100% of
the training users (a seeded subset). The SVD is always computed on all training users, as in the paper:
pre-training is cheap and unsupervised, fine-tuning data is what is scarce. Checkpoints are chosen on the
validation users, as everywhere else.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ledrec.data.splits import PreparedData
from ledrec.evaluate.ranking import evaluate
from ledrec.io import write_json
from ledrec.models.led import LED
from ledrec.pretrain import PretrainConfig, pretrain

log = logging.getLogger(__name__)

INITS = ("random", "svd")
TUNINGS = ("full", "project")


def figure2(
    data: PreparedData,
    out: str | Path,
    fractions: Sequence[float] = (0.01, 0.1, 1.0),
    led_params: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run the grid, write ``figure2.json``, ``figure2.md`` and ``figure2.png`` into ``out``; return rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = {"dim": 128, **(led_params or {})}
    emb = pretrain(data.fit_valid, PretrainConfig(dim=params["dim"], seed=seed), item_ids=data.items.ids)
    emb_dir = out / "embeddings"
    emb.save(emb_dir)  # every fraction starts from the same SVD of all training users
    rng = np.random.default_rng(seed)
    order = rng.permutation(data.fit_valid.shape[0])
    rows = []
    for fraction in fractions:
        n = max(1, round(fraction * len(order)))
        subset = data.fit_valid[np.sort(order[:n])]
        for init in INITS:
            for tuning in TUNINGS:
                start = time.perf_counter()
                pretrained = {"embeddings": str(emb_dir)} if init == "svd" else {}  # (the pre-trained SVD vectors)
                model = LED(**{**params, "init": init, "tuning": tuning, **pretrained}, random_state=seed)
                model.item_ids = data.items.ids  # random + project: frozen random vectors, the control
                model.progress = False
                model.fit(subset, validation=data.valid)
                result = evaluate(model.score, data.test, ks=(20, 50))
                row = {
                    "fraction": fraction,
                    "train_users": n,
                    "init": init,
                    "tuning": tuning,
                    "recall@50": result["recall@50"],
                    "recall@20": result["recall@20"],
                    "best_epoch": model.best_epoch_,
                    "fit_s": round(time.perf_counter() - start, 1),
                }
                rows.append(row)
                log.info("figure2: %s", row)
                if progress:
                    print(json.dumps(row), flush=True)
    write_json(out / "figure2.json", {"dataset": data.name, "protocol": data.protocol, "led": params, "rows": rows})
    (out / "figure2.md").write_text(markdown(rows))
    plot(rows, out / "figure2.png", title=f"LED on {data.name} ({data.protocol})")
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    fractions = sorted({r["fraction"] for r in rows})
    head = "| init | tuning | " + " | ".join(f"R@50, {f:.0%} users" for f in fractions) + " |\n"
    head += "|---|---|" + "---|" * len(fractions) + "\n"
    lines = []
    for init in INITS:
        for tuning in TUNINGS:
            cells = [
                next((r for r in rows if (r["fraction"], r["init"], r["tuning"]) == (f, init, tuning)), None)
                for f in fractions
            ]
            lines.append(
                f"| {init} | {tuning} | "
                + " | ".join("" if c is None else f"{c['recall@50']:.4f}" for c in cells)
                + " |"
            )
    return head + "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for init in INITS:
        for tuning in TUNINGS:
            pts = sorted((r["fraction"], r["recall@50"]) for r in rows if r["init"] == init and r["tuning"] == tuning)
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o", linestyle="-" if init == "svd" else "--", label=f"{init} init, {tuning}")
    ax.set_xscale("log")
    ax.set_xlabel("share of training users used for fine-tuning")
    ax.set_ylabel("Recall@50 (test)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
