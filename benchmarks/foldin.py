"""New items between retrains: fold-in against popularity and a full retrain, on held-out new items.

    .venv/bin/python benchmarks/foldin.py --data simulator --out runs/foldin-sim
    .venv/bin/python benchmarks/foldin.py --data ../shared/data/ml-latest-small --out runs/foldin-ml

Protocol (times t0 < t1 < end):

* the **published model** is LED trained on the events before t0;
* **new items**: items with no event before t0 and at least ``--min-users`` users in [t0, t1) — on the
  simulator (``--data simulator``: the production-like world, organic views), a random ``--launch`` share
  of the catalogue is *launched* at t0 (their earlier events are removed, as if they did not exist); on a
  real log (MovieLens ratings ≥ 3.5), items genuinely first seen after t0;
* **fold-in** (``ledrec.export.foldin``, each method) adds them to the published model from the events in
  [t0, t1); **popularity** is the fold-in without vectors (bias from early popularity only); **retrain**
  is LED trained from scratch on everything before t1 (the cost fold-in avoids);
* **test**: users with an interaction with a new item in [t1, end): history = all their events before t1,
  targets = those new items. Recall@20 = hits / |targets|, ranking (a) over the whole catalogue (what a
  user is shown), (b) among the new items only (is the right new item on top?).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ledrec.data.interactions import Interactions
from ledrec.data.readers import read_dataset
from ledrec.data.splits import DAY, EvalSet
from ledrec.export.foldin import METHODS, fold_in
from ledrec.export.mips import ServingModel, from_model
from ledrec.models.led import LED
from ledrec.pipeline.daily import holdout_metrics


def simulator_log(seed: int, launch: float) -> tuple[Interactions, int, int, np.ndarray]:
    """Organic views of the production-like world; a ``launch`` share of items launched at day 21."""
    from ledrec.simulate.world import VIEW, GroundTruth, ProductionConfig, generate_log

    truth = GroundTruth(ProductionConfig(n_users=30_000, n_items=6_000, seed=seed))
    log = generate_log(truth)
    views = log.select(log.event == VIEW)
    data = Interactions.from_events(
        views.user.astype(np.int64), views.item.astype(np.int64), timestamp=views.timestamp.astype(np.int64)
    )
    t0, t1 = 21 * DAY, 24 * DAY
    rng = np.random.default_rng(seed)
    launched = rng.random(data.n_items) < launch
    keep = ~(launched[data.item] & (data.timestamp < t0))
    return data.select(keep), t0, t1, launched


def movielens_log(path: str) -> tuple[Interactions, int, int, None]:
    """Ratings >= 3.5; t0 and t1 at the 90% and 95% quantiles of time."""
    ds = read_dataset(path)
    data = ds.parts["all"]
    data = data.select(data.rating >= 3.5)
    t0, t1 = (int(q) for q in np.quantile(data.timestamp, [0.90, 0.95]))
    return data, t0, t1, None


def matrix_ids(data: Interactions, mask: np.ndarray) -> tuple[Interactions, np.ndarray]:
    """The events of ``mask`` with their own item vocabulary (a model's), and those item ids."""
    part = data.select(mask)
    used = np.unique(part.item)
    remap = np.full(data.n_items, -1, np.int64)
    remap[used] = np.arange(len(used))
    part = replace(part, item=remap[part.item].astype(np.int32), items=type(data.items)(data.items.ids[used]))
    return part, data.items.ids[used]


def train(data: Interactions, mask: np.ndarray, params: dict) -> tuple[ServingModel, float]:
    part, ids = matrix_ids(data, mask)
    t = time.perf_counter()
    model = LED(**params).fit(part.to_csr(n_users=data.n_users))
    return from_model(model, ids), time.perf_counter() - t


def test_set(data: Interactions, t1: int, new: np.ndarray | None) -> EvalSet:
    """Users with a new item (any item: ``new`` None) in [t1, end): history = events before t1, targets =
    those items."""
    before = data.timestamp < t1
    after = ~before & (np.isin(data.item, new) if new is not None else True)
    input_ = data.select(before).to_csr(n_users=data.n_users, n_items=data.n_items)
    target = data.select(after).to_csr(n_users=data.n_users, n_items=data.n_items)
    rows = np.flatnonzero(np.diff(target.indptr) > 0)
    return EvalSet(input_[rows], target[rows], data.users.ids[rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="'simulator' or a MovieLens folder (ratings with timestamps)")
    p.add_argument("--out", required=True)
    p.add_argument("--launch", type=float, default=0.05, help="simulator: share of items launched at t0")
    p.add_argument("--min-users", type=int, default=2)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.data == "simulator":
        data, t0, t1, _ = simulator_log(args.seed, args.launch)
    else:
        data, t0, t1, _ = movielens_log(args.data)
    params = {"dim": args.dim, "init": "svd", "epochs": args.epochs, "patience": 0, "random_state": args.seed}
    old = data.timestamp < t0
    seen_before = np.zeros(data.n_items, bool)
    seen_before[data.item[old]] = True
    window = (data.timestamp >= t0) & (data.timestamp < t1)
    users_in_window = np.bincount(np.unique(np.stack([data.item[window], data.user[window]]), axis=1)[0],
                                  minlength=data.n_items)  # fmt: skip
    new = np.flatnonzero(~seen_before & (users_in_window >= args.min_users))
    evalset = test_set(data, t1, new)
    everything = test_set(data, t1, None)
    k = 20
    published, train_s = train(data, old, params)
    recent = data.select(window)
    rows: list[dict] = []

    def score(name: str, model: ServingModel, seconds: float) -> None:
        ids = data.items.ids
        overall = holdout_metrics(model, evalset, ids, k, next(iter(model.partitions)), 10**9)
        new_ids = set(ids[new].tolist())
        in_model = np.flatnonzero(np.isin(model.item_ids, list(new_ids)))
        among = {"recall@20": 0.0}
        if len(in_model):
            only_new = replace(model, partitions={"new": in_model.astype(np.int64)})
            among = holdout_metrics(only_new, evalset, ids, k, "new", 10**9)
        every = holdout_metrics(model, everything, ids, k, next(iter(model.partitions)), 10**9)
        rows.append({"method": name, "recall@20": overall["recall@20"], "recall@20 among new": among["recall@20"],
                     "recall@20 all": every["recall@20"],
                     "new items with a vector": len(in_model), "seconds": round(seconds, 2)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)

    score("published model (no fold-in)", published, 0.0)
    for method in ("popularity", *[m for m in METHODS if m != "popularity"]):
        t = time.perf_counter()
        folded = fold_in(published, recent, method=method, min_users=args.min_users)
        score(f"fold-in: {method}", folded.model, time.perf_counter() - t)
    retrained, retrain_s = train(data, data.timestamp < t1, params)
    score("full retrain", retrained, retrain_s)
    summary = {
        "data": args.data, "t0": t0, "t1": t1, "new_items": len(new), "test_users": evalset.n_users,
        "test_targets": int(evalset.target.nnz), "published_train_s": round(train_s, 1), "params": params,
        "rows": rows,
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "foldin.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"Fold-in on {args.data}: {len(new)} new items, {evalset.n_users} test users, {evalset.target.nnz} "
        f"test interactions with new items; {everything.n_users} users with any test interaction, "
        f"{everything.target.nnz} in all (LED d = {args.dim}, {args.epochs} epochs). Recall@20 on the test "
        "interactions with new items (ranking the whole catalogue, or the new items only), and on all test "
        "interactions of every test user (what promoting new items costs the rest).",
        "",
        "| method | new items, whole catalogue | new items, among new | all items (every test user) | new items "
        "with a vector | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['recall@20']:.4f} | {r['recall@20 among new']:.4f} | "
                     f"{r['recall@20 all']:.4f} | {r['new items with a vector']} | {r['seconds']} |")  # fmt: skip
    (out / "foldin.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
