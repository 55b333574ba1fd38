"""The seed paper's online A/B test (§7), simulated: users split at random into A (GBO), B (GBO+CBO) and
C (GBO+CBO+LED); every banner is built by the same two-stage system (candidates of the population's sources
→ one logistic-regression ranker, retrained every simulated day on the logged displays of *all*
populations); clicks and sales come from the hidden :class:`~ledrec.simulate.world.GroundTruth`.

A day: every user browses (organic views of the ground truth); after a view, with probability
``banners_per_view``, a banner of the viewed merchant is requested, built and shown; clicks join the
user's history. State (histories, GBO counts, CBO clusters) is refreshed once a day, so a banner sees the
user's views of the same day (a simplification: the paper's service reads the live timeline). LED is
trained once, on the pre-period log, and not retrained during the test (the paper retrains daily; a model
one to two weeks old handicaps LED, not the baselines). The request carries the item just viewed (the
banner's trigger): LED's query gives it ``trigger_share`` of its weight, the rest to the mean of the timeline
(:func:`~ledrec.twostage.candidates.with_trigger`) — the click depends on the category being browsed and its
complement, which a mean over weeks of history dilutes. The first ``warmup_days`` rank candidates in random
order (the exploration that gives the ranker its first training data) and are not reported.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ledrec.config import check_fields, option
from ledrec.data.interactions import user_item_matrix
from ledrec.errors import ConfigError
from ledrec.models.led import LED
from ledrec.pretrain.embeddings import PretrainConfig, pretrain
from ledrec.simulate.world import (
    CLICK,
    VIEW,
    GroundTruth,
    ProductionConfig,
    draw_outcomes,
    generate_log,
    summary,
)
from ledrec.twostage.artifact import save_system
from ledrec.twostage.candidates import CBO, GBO, LED_SCORES, LEDSource, with_trigger
from ledrec.twostage.ranker import FEATURES, SOURCES, Candidates, Catalog, Ranker, TwoStage, build_banners

log = logging.getLogger(__name__)

POPULATIONS = {"A": ("gbo",), "B": ("gbo", "cbo"), "C": ("gbo", "cbo", "led")}
LED_COLUMNS = [j for j, name in enumerate(FEATURES) if "led" in name]  # from_led, rr_led, led_score


@dataclass(frozen=True)
class SimulationConfig:
    """The simulated A/B test (module docstring); each field but ``world`` is also a flag of ``ledrec simulate
    ab`` and ``ledrec simulate sweep``."""

    world: ProductionConfig = field(default_factory=ProductionConfig)  # its `days` = the pre-period
    test_days: int = option(14, "simulated test days, the warm-up included", low=1)
    warmup_days: int = option(2, "first test days ranked at random (the ranker's first data), not reported", low=0)
    banner_size: int = option(6, "items per banner", low=1)
    candidates_per_source: int = option(20, "candidates each source proposes per request", low=1)
    cbo_clusters: int = option(30, "CBO's user clusters (MiniBatchKMeans on users' mean SVD vector)", low=1)
    led_dim: int = option(64, "dimension of the SVD pre-training and of LED", low=1)
    led_epochs: int = option(20, "LED's training epochs (on the pre-period)", low=0)
    led_score: str = option(
        "log_lift",
        "the ranker's led_score feature: log_lift = log(n_m x the merchant's softmax of LED's scores), which "
        "drops the per-user offset of the raw score; raw = the score itself (docs/twostage.md compares them)",
        choices=LED_SCORES,
    )
    trigger_share: float = option(
        0.5,
        "share of LED's query given to the item just viewed, whose merchant the banner shows (0: the mean of the "
        "whole timeline); GBO, CBO and the ranker read the same items either way",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    ranker_max_rows: int = option(500_000, "most recent logged displays the ranker is refit on", low=1)
    bootstrap: int = option(1000, "bootstrap resamples of the 95 percent intervals", low=10)
    diagnostic_requests: int = option(
        2000, "requests per population and reported day checked against the ground truth (0: none)", low=0
    )
    seed: int = option(0, "seed of the world, the A/B split and every draw", low=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.test_days <= self.warmup_days:
            raise ConfigError("test_days must exceed warmup_days (nothing would be reported)")
        if self.candidates_per_source < self.banner_size:
            raise ConfigError("need banner_size <= candidates_per_source")


@dataclass
class SimulationResult:
    config: SimulationConfig
    population: np.ndarray  # (n_users,) 0/1/2 for A/B/C
    clicks: np.ndarray  # (n_users, test_days) per user per day
    sales: np.ndarray
    value: np.ndarray
    displays: np.ndarray
    shown_sources: dict[str, np.ndarray]  # per population: (n_shown, S) bool, source flags of displayed items
    shown_popularity: dict[str, np.ndarray]  # per population: (n_shown,) pre-period popularity of the items
    ranker_coefficients: dict[str, float]
    timings: dict[str, float]
    pre_period: dict[str, Any]
    # per population, sums over the checked requests (:func:`truth_diagnostics`); averaged by the report
    diagnostics: dict[str, dict[str, float]] = field(default_factory=dict)


def simulate(config: SimulationConfig, progress: bool = True, save_system_dir: str | None = None) -> SimulationResult:
    """Run the A/B test of the module docstring. ``save_system_dir``: also write the final two-stage
    system (population C's sources and the last ranker) for ``ledrec serve``'s Banner call."""
    c, w = config, config.world
    t0 = time.perf_counter()
    truth = GroundTruth(w)
    pre = generate_log(truth)
    n_users, n_items = w.n_users, w.n_items
    rng = np.random.default_rng([c.seed, 2])
    population = rng.integers(0, 3, n_users)
    catalog = Catalog(truth.item_merchant, truth.item_category, truth.item_price, w.n_merchants, w.n_categories)

    # ---- models of the pre-period: inputs = views and clicks (the paper's timelines), SVD on views
    keep = (pre.event == VIEW) | (pre.event == CLICK)
    hist_user, hist_item = pre.user[keep], pre.item[keep]
    H = user_item_matrix(hist_user, hist_item, (n_users, n_items))
    views = pre.select(pre.event == VIEW)
    V = user_item_matrix(views.user, views.item, (n_users, n_items))
    emb = pretrain(V, PretrainConfig(dim=c.led_dim, seed=c.seed))
    led = LED(dim=c.led_dim, loss="mult", init="svd", epochs=c.led_epochs, patience=0, random_state=c.seed)
    led.progress = progress
    led.fit(H, pretrain_matrix=V)
    t_models = time.perf_counter() - t0
    popularity_pre = np.asarray(V.sum(axis=0)).ravel()  # users who viewed each item before the test

    gbo = GBO(truth.item_merchant, w.n_merchants, c.candidates_per_source).fit(H)
    cbo = CBO(emb.vectors, truth.item_merchant, w.n_merchants, c.cbo_clusters, c.candidates_per_source, c.seed)
    cbo.fit(H)
    sources = {"gbo": gbo, "cbo": cbo, "led": LEDSource(led, truth.item_merchant, w.n_merchants, c.led_score)}

    shape = (n_users, c.test_days)
    clicks, sales, value, displays = (np.zeros(shape) for _ in range(4))
    shown_sources: dict[str, list[np.ndarray]] = {p: [] for p in POPULATIONS}
    shown_popularity: dict[str, list[np.ndarray]] = {p: [] for p in POPULATIONS}
    logged_X: list[np.ndarray] = []
    logged_click: list[np.ndarray] = []
    logged_sale: list[np.ndarray] = []
    ranker: Ranker | None = None
    day_rng = np.random.default_rng([c.seed, 3])
    # the diagnostics draw from their own stream: checking the ground truth never changes what is simulated
    check_rng = np.random.default_rng([c.seed, 5])
    by_merchant = [np.flatnonzero(truth.item_merchant == m) for m in range(w.n_merchants)]
    diagnostics: dict[str, dict[str, float]] = {p: {} for p in POPULATIONS}
    for day in tqdm(range(c.test_days), desc="simulated days", disable=not progress):
        # ---- organic browsing, then the day's state
        n_views = day_rng.poisson(truth.user_activity)
        v_user = np.repeat(np.arange(n_users), n_views)
        v_item = truth.browse(v_user, day_rng)
        hist_user = np.concatenate([hist_user, v_user])
        hist_item = np.concatenate([hist_item, v_item])
        H = user_item_matrix(hist_user, hist_item, (n_users, n_items))
        popularity = gbo.item_counts_

        # ---- banner requests after some views: the viewed merchant, the browsed category
        trig = np.flatnonzero(day_rng.random(len(v_user)) < w.banners_per_view)
        req_user, req_item = v_user[trig], v_item[trig]
        req_merchant = truth.item_merchant[req_item]
        req_intent = truth.item_category[v_item[trig]]
        new_clicks = []
        for p, names in POPULATIONS.items():
            rows = np.flatnonzero(population[req_user] == "ABC".index(p))
            if len(rows) == 0:
                continue
            users = req_user[rows]
            histories = H[users] if not c.trigger_share else with_trigger(H[users], req_item[rows], c.trigger_share)
            system = TwoStage([sources[n] for n in names], catalog, ranker, c.candidates_per_source)
            banners, cand, slot, X, _ = system.banners(
                histories, req_merchant[rows], req_intent[rows], c.banner_size, popularity, day_rng
            )
            row, pos, clicked, sold = draw_outcomes(truth, users, banners, req_intent[rows], day_rng)
            item = banners[row, pos]
            shown_slot = slot[row, pos]
            X_shown = X[row, shown_slot].copy()
            X_shown[:, FEATURES.index("position")] = pos  # the logged position (0 when the banner was ranked)
            logged_X.append(X_shown)
            logged_click.append(clicked)
            logged_sale.append(sold)
            u = users[row]
            np.add.at(displays[:, day], u, 1)
            np.add.at(clicks[:, day], u[clicked], 1)
            np.add.at(sales[:, day], u[sold], 1)
            np.add.at(value[:, day], u[sold], truth.item_price[item[sold]])
            if day >= c.warmup_days:
                shown_sources[p].append(cand.proposed[row, shown_slot])
                shown_popularity[p].append(popularity_pre[item])
            if day >= c.warmup_days and c.diagnostic_requests:
                check = np.sort(check_rng.permutation(len(rows))[: c.diagnostic_requests])
                sub = Candidates(cand.items[check], cand.proposed[check], cand.rank[check], cand.led_score[check])
                without_led = None
                if "led" in names and ranker is not None:  # what the ranker shows when blind to LED's features
                    X_blind = X[check].copy()
                    X_blind[..., LED_COLUMNS] = 0.0
                    without_led = build_banners(sub, X_blind, ranker, c.banner_size, check_rng)[0]
                sums = truth_diagnostics(
                    truth,
                    users[check],
                    req_intent[rows][check],
                    sub,
                    banners[check],
                    by_merchant,
                    c.candidates_per_source,
                    without_led,
                )
                for key, v in sums.items():
                    diagnostics[p][key] = diagnostics[p].get(key, 0.0) + v
            new_clicks.append((u[clicked], item[clicked]))
        for u, it in new_clicks:  # clicks join the timelines
            hist_user = np.concatenate([hist_user, u])
            hist_item = np.concatenate([hist_item, it])

        # ---- nightly: sources and ranker refreshed on everything logged so far
        H = user_item_matrix(hist_user, hist_item, (n_users, n_items))
        gbo.fit(H)
        cbo.fit(H)
        X_all = np.concatenate(logged_X)[-c.ranker_max_rows :]
        y_click = np.concatenate(logged_click)[-c.ranker_max_rows :]
        y_sale = np.concatenate(logged_sale)[-c.ranker_max_rows :]
        ranker = Ranker(random_state=c.seed).fit(X_all, y_click, y_sale)
        log.info("day %d: %d banners, %d clicks", day, len(trig), int(clicks[:, day].sum()))

    if save_system_dir is not None and ranker is not None:
        save_system(
            save_system_dir,
            gbo,
            cbo,
            led,
            ranker,
            catalog,
            item_ids=np.char.add("i", np.arange(n_items).astype(str)),  # the ids of `ledrec simulate generate`
            merchant_ids=np.char.add("m", np.arange(w.n_merchants).astype(str)),
            candidates_per_source=c.candidates_per_source,
            led_score=c.led_score,
        )
    report_days = slice(c.warmup_days, None)
    return SimulationResult(
        config=c,
        population=population,
        clicks=clicks[:, report_days],
        sales=sales[:, report_days],
        value=value[:, report_days],
        displays=displays[:, report_days],
        shown_sources={p: _stack(v, (0, len(SOURCES)), bool) for p, v in shown_sources.items()},
        shown_popularity={p: _stack(v, (0,), float) for p, v in shown_popularity.items()},
        ranker_coefficients=ranker.coefficients("click") if ranker is not None else {},
        timings={"models_s": round(t_models, 1), "total_s": round(time.perf_counter() - t0, 1)},
        pre_period={"config": asdict(w), **summary(pre)},
        diagnostics=diagnostics,
    )


def _stack(parts: list[np.ndarray], empty_shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(empty_shape, dtype=dtype)


def truth_diagnostics(
    truth: GroundTruth,
    users: np.ndarray,
    intent: np.ndarray,
    cand: Candidates,
    banners: np.ndarray,
    by_merchant: list[np.ndarray],
    k: int,
    without_led: np.ndarray | None = None,
) -> dict[str, float]:
    """Sums, over n requests (``cand``, the ``banners`` (n, size) shown, of ``users`` browsing ``intent``), of
    what the ground truth says of the candidates: P₀ = the true P(click) at the first position.

    * ``oracle`` / ``ceiling`` / ``shown``: expected clicks of the best banner of the merchant's whole
      catalogue (items by P₀, positions decayed), of the best banner the candidates allow, and of the banner
      shown — so ceiling/oracle is what candidate generation lost, shown/ceiling what ranking lost;
    * ``merchant_items`` and ``candidates`` (distinct items proposed): the candidates' coverage;
    * per source s: ``{s}.proposed``, ``{s}.hits`` (proposals among the merchant's ``k`` best items by P₀ —
      precision against the ground truth), ``{s}.p0`` (sum of the proposals' P₀) and ``{s}.intent``
      (proposals in the browsed category or its complement, the click model's two largest terms);
    * ``shown_without_led``: expected clicks of the banners ``without_led`` (n, size), when given: what the
      ranker shows from the same candidates with LED's features zeroed (their contribution to ranking).
    """
    items, proposed, shown = cand.items, cand.proposed, banners
    merchants = truth.item_merchant[np.maximum(items[:, 0], 0)]  # every request has a candidate: its merchant's
    size = shown.shape[1]
    decay = (1.0 + np.arange(size)) ** -truth.config.position_decay
    out = {"requests": float(len(items)), "oracle": 0.0, "ceiling": 0.0, "shown": 0.0}
    if without_led is not None:
        out["shown_without_led"] = _expected_clicks(truth, users, intent, without_led)
    out["shown"] = _expected_clicks(truth, users, intent, shown)
    out["merchant_items"] = float(sum(len(by_merchant[m]) for m in merchants))
    out["candidates"] = float((items >= 0).sum())
    local = np.zeros(truth.n_items, dtype=np.int64)
    for m in np.unique(merchants):
        r = np.flatnonzero(merchants == m)
        own = by_merchant[m]
        local[own] = np.arange(len(own))
        n_r, n_m = len(r), len(own)
        p0 = truth.click_probability(
            np.repeat(users[r], n_m), np.tile(own, n_r), np.repeat(intent[r], n_m), np.zeros(n_r * n_m)
        ).reshape(n_r, n_m)
        best = -np.sort(-p0, axis=1)
        out["oracle"] += float((best[:, :size] * decay[: min(size, n_m)]).sum())
        kth = best[:, min(k, n_m) - 1 : min(k, n_m)]  # the k-th best P₀: the oracle's top k is P₀ >= it
        it = items[r]
        valid = it >= 0
        p_cand = np.where(valid, np.take_along_axis(p0, local[np.maximum(it, 0)], axis=1), -1.0)
        top_cand = -np.sort(-p_cand, axis=1)[:, :size]
        out["ceiling"] += float((np.maximum(top_cand, 0.0) * decay[: top_cand.shape[1]]).sum())
        cat = truth.item_category[np.maximum(it, 0)]
        on_intent = valid & ((cat == intent[r][:, None]) | (cat == truth.complement[intent[r]][:, None]))
        hit = valid & (p_cand >= kth)
        for j, s in enumerate(SOURCES):
            flags = proposed[r, :, j] & valid
            if not flags.any():
                continue
            for key, v in (("proposed", flags), ("hits", flags & hit), ("intent", flags & on_intent)):
                out[f"{s}.{key}"] = out.get(f"{s}.{key}", 0.0) + float(v.sum())
            out[f"{s}.p0"] = out.get(f"{s}.p0", 0.0) + float(np.where(flags, p_cand, 0.0).sum())
    return out


def _expected_clicks(truth: GroundTruth, users: np.ndarray, intent: np.ndarray, banners: np.ndarray) -> float:
    """Sum over the banners (n, size; -1 = empty slot) of the true P(click) of every item at its position."""
    row, pos = np.nonzero(banners >= 0)
    return float(truth.click_probability(users[row], banners[row, pos], intent[row], pos).sum())
