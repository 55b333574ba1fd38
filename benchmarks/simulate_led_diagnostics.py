"""LED in the simulated world, offline (no A/B loop): how good are its candidates against the ground truth for
a few training choices, and is its raw score comparable across requests (what one logistic ranker over
everyone's displays needs)?

The world, its pre-period log and LED are built as `ledrec simulate ab` builds them (same seeds); requests are
one simulated day of browsing after the pre-period, a banner after a view with the world's probability.

* candidates: per source (GBO, CBO, LED for each --epochs and --timelines), the share of its top k among the
  merchant's true top k by P(click) (precision) and the expected clicks of the best banner its k allow ÷ the
  best of the merchant's catalogue (`ledrec.simulate.ab.truth_diagnostics`, as in the sweep's table);
  timeline "all": LED's user vector = the mean of the whole history; "trigger": the viewed item alone; a
  number s: the viewed item given a share s of it (`ledrec.twostage.candidates.with_trigger`);
* score: over LED's top k of every request, the variance of the raw score ⟨q, v_i⟩ + b_i and of the log-lift
  (log of n_m × the merchant's softmax) between requests (of their means) and within them, their Pearson
  correlation with the true logit P(click), and the mean within-request Spearman correlation (the same for
  both: one is a per-request shift of the other).

    .venv/bin/python benchmarks/simulate_led_diagnostics.py --n-users 20000 --n-items 4000 --seed 9 --epochs 20 \
        --requests 10000   # the trigger share of `ledrec simulate ab` was chosen on this (docs/twostage.md)
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import scipy.sparse as sp
from scipy.stats import pearsonr, spearmanr

from ledrec.data.interactions import user_item_matrix
from ledrec.models.led import LED
from ledrec.pretrain.embeddings import PretrainConfig, pretrain
from ledrec.simulate.ab import SimulationConfig, truth_diagnostics
from ledrec.simulate.world import CLICK, VIEW, GroundTruth, ProductionConfig, generate_log
from ledrec.twostage.candidates import CBO, GBO, LEDSource, with_trigger
from ledrec.twostage.ranker import gather_candidates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-users", type=int, default=20_000)
    p.add_argument("--n-items", type=int, default=4_000)
    p.add_argument("--n-merchants", type=int, default=ProductionConfig.n_merchants)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", default="5,20,50", help="comma-separated LED epoch counts (the simulator's: 20)")
    p.add_argument(
        "--timelines",
        default="all,trigger,0.25,0.5,0.75",
        help="LED's history: all (the plain mean), trigger (the viewed item alone), or a number s: the viewed item "
        "given a share s of the query (with_trigger, the simulator's --trigger-share)",
    )
    p.add_argument("--requests", type=int, default=20_000, help="banner requests checked (at most)")
    args = p.parse_args()
    sim = SimulationConfig()
    w = ProductionConfig(n_users=args.n_users, n_items=args.n_items, n_merchants=args.n_merchants, seed=args.seed)
    truth = GroundTruth(w)
    pre = generate_log(truth)
    keep = (pre.event == VIEW) | (pre.event == CLICK)
    H = user_item_matrix(pre.user[keep], pre.item[keep], (w.n_users, w.n_items))
    views = pre.select(pre.event == VIEW)
    V = user_item_matrix(views.user, views.item, (w.n_users, w.n_items))
    # one day of browsing after the pre-period, and its banner requests (the simulator's day 0, own stream)
    rng = np.random.default_rng([args.seed, 9])
    v_user = np.repeat(np.arange(w.n_users), rng.poisson(truth.user_activity))
    v_item = truth.browse(v_user, rng)
    trig = np.flatnonzero(rng.random(len(v_user)) < w.banners_per_view)[: args.requests]
    users, viewed = v_user[trig], v_item[trig]
    merchants, intent = truth.item_merchant[viewed], truth.item_category[viewed]
    day = user_item_matrix(
        np.concatenate([pre.user[keep], v_user]), np.concatenate([pre.item[keep], v_item]), (w.n_users, w.n_items)
    )
    histories = {"all": day[users], "trigger": user_item_matrix(np.arange(len(trig)), viewed, (len(trig), w.n_items))}
    for timeline in args.timelines.split(","):
        if timeline not in histories:
            histories[timeline] = with_trigger(day[users], viewed, float(timeline))
    by_merchant = [np.flatnonzero(truth.item_merchant == m) for m in range(w.n_merchants)]
    k = sim.candidates_per_source

    def candidates(source, timeline: str = "all") -> dict[str, float]:
        cand = gather_candidates([source], histories[timeline], merchants, k)
        d = truth_diagnostics(truth, users, intent, cand, cand.items[:, : sim.banner_size], by_merchant, k)
        name = source.name
        return {
            "precision": round(d[f"{name}.hits"] / d[f"{name}.proposed"], 4),
            "candidates_best_over_oracle": round(d["ceiling"] / d["oracle"], 4),
            "coverage": round(d["candidates"] / d["merchant_items"], 4),
        }

    out: dict[str, object] = {"world": {"n_users": w.n_users, "n_items": w.n_items, "n_merchants": w.n_merchants}}
    out["seed"], out["requests"] = args.seed, len(trig)
    rows = {"gbo": candidates(GBO(truth.item_merchant, w.n_merchants, k).fit(H))}
    emb = pretrain(V, PretrainConfig(dim=sim.led_dim, seed=args.seed))
    cbo = CBO(emb.vectors, truth.item_merchant, w.n_merchants, sim.cbo_clusters, k, args.seed).fit(H)
    rows["cbo"] = candidates(cbo)
    default_led = None
    for epochs in (int(e) for e in args.epochs.split(",")):
        t = time.perf_counter()
        led = LED(dim=sim.led_dim, loss="mult", init="svd", epochs=epochs, patience=0, random_state=args.seed)
        led.progress = False
        led.fit(H, pretrain_matrix=V)
        fit_s = round(time.perf_counter() - t, 1)
        for timeline in args.timelines.split(","):
            rows[f"led epochs={epochs} timeline={timeline}"] = {
                **candidates(LEDSource(led, truth.item_merchant, w.n_merchants), timeline),
                "fit_s": fit_s,
            }
        if epochs == sim.led_epochs or default_led is None:
            default_led = (epochs, led)
        print(f"epochs {epochs}: fitted in {fit_s} s", file=sys.stderr, flush=True)
    out["candidates"] = rows
    epochs, led = default_led
    out["score"] = {"led_epochs": epochs, **score_offsets(led, truth, users, histories["all"], merchants, intent, k)}
    print(json.dumps(out, indent=2))


def score_offsets(
    led: LED,
    truth: GroundTruth,
    users: np.ndarray,
    histories: sp.csr_matrix,
    merchants: np.ndarray,
    intent: np.ndarray,
    k: int,
) -> dict[str, dict[str, float]]:
    """Raw vs log-lift LED scores of every request's top k: between/within-request variance and how they
    relate to the true logit P(click) at the first position."""
    raw = LEDSource(led, truth.item_merchant, truth.config.n_merchants).propose(histories, merchants, k)
    lift = LEDSource(led, truth.item_merchant, truth.config.n_merchants, "log_lift").propose(histories, merchants, k)
    items = raw[0]
    ok = items >= 0
    req = np.broadcast_to(np.arange(len(items))[:, None], items.shape)[ok]
    p0 = truth.click_probability(
        np.broadcast_to(users[:, None], items.shape)[ok],
        items[ok],
        np.broadcast_to(intent[:, None], items.shape)[ok],
        np.zeros(ok.sum()),
    )
    logit = np.log(p0 / (1 - p0))
    count = np.bincount(req)
    sample = np.flatnonzero(count > 2)[:3000]
    out = {}
    for name, scores in (("raw", raw[1]), ("log_lift", lift[1])):
        x = scores[ok]
        means = np.bincount(req, x) / count
        within = [spearmanr(x[req == r], logit[req == r])[0] for r in sample]
        out[name] = {
            "variance_between_requests": round(float(np.var(means[req])), 3),
            "variance_within_requests": round(float(np.var(x - means[req])), 3),
            "pearson_with_true_logit": round(float(pearsonr(x, logit)[0]), 3),
            "mean_within_request_spearman": round(float(np.nanmean(within)), 3),
        }
    return out


if __name__ == "__main__":
    main()
