"""The seed paper's online A/B test (§7), simulated: users split at random into A (GBO), B (GBO+CBO) and
C (GBO+CBO+LED); every banner is built by the same two-stage system (candidates of the population's sources
→ one logistic-regression ranker, retrained every simulated day on the logged displays of *all*
populations); clicks and sales come from the hidden :class:`~ledrec.simulate.world.GroundTruth`.

A day: every user browses (organic views of the ground truth); after a view, with probability
``banners_per_view``, a banner of the viewed merchant is requested, built and shown; clicks join the
user's history. State (histories, GBO counts, CBO clusters) is refreshed once a day, so a banner sees the
user's views of the same day (a simplification: the paper's service reads the live timeline). LED is
trained once, on the pre-period log, and not retrained during the test (the paper retrains daily; a model
one to two weeks old handicaps LED, not the baselines). The first ``warmup_days`` rank candidates in random
order (the exploration that gives the ranker its first training data) and are not reported.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ledrec.data.interactions import user_item_matrix
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
from ledrec.twostage.candidates import CBO, GBO, LEDSource
from ledrec.twostage.ranker import FEATURES, SOURCES, Catalog, Ranker, TwoStage

log = logging.getLogger(__name__)

POPULATIONS = {"A": ("gbo",), "B": ("gbo", "cbo"), "C": ("gbo", "cbo", "led")}


@dataclass(frozen=True)
class SimulationConfig:
    world: ProductionConfig = field(default_factory=ProductionConfig)  # its `days` = the pre-period
    test_days: int = 14
    warmup_days: int = 2
    banner_size: int = 6
    candidates_per_source: int = 20
    cbo_clusters: int = 30
    led_dim: int = 64
    led_epochs: int = 20
    ranker_max_rows: int = 500_000  # most recent logged displays the ranker is refit on
    bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.test_days <= self.warmup_days:
            raise ValueError("test_days must exceed warmup_days (nothing would be reported)")
        if self.banner_size < 1 or self.candidates_per_source < self.banner_size:
            raise ValueError("need 1 <= banner_size <= candidates_per_source")


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
    sources = {"gbo": gbo, "cbo": cbo, "led": LEDSource(led, truth.item_merchant, w.n_merchants)}

    shape = (n_users, c.test_days)
    clicks, sales, value, displays = (np.zeros(shape) for _ in range(4))
    shown_sources: dict[str, list[np.ndarray]] = {p: [] for p in POPULATIONS}
    shown_popularity: dict[str, list[np.ndarray]] = {p: [] for p in POPULATIONS}
    logged_X: list[np.ndarray] = []
    logged_click: list[np.ndarray] = []
    logged_sale: list[np.ndarray] = []
    ranker: Ranker | None = None
    day_rng = np.random.default_rng([c.seed, 3])
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
        req_user, req_merchant = v_user[trig], truth.item_merchant[v_item[trig]]
        req_intent = truth.item_category[v_item[trig]]
        new_clicks = []
        for p, names in POPULATIONS.items():
            rows = np.flatnonzero(population[req_user] == "ABC".index(p))
            if len(rows) == 0:
                continue
            users = req_user[rows]
            system = TwoStage([sources[n] for n in names], catalog, ranker, c.candidates_per_source)
            banners, cand, slot, X, _ = system.banners(
                H[users], req_merchant[rows], req_intent[rows], c.banner_size, popularity, day_rng
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
    )


def _stack(parts: list[np.ndarray], empty_shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(empty_shape, dtype=dtype)
