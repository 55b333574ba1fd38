"""The second stage (seed paper §6): candidates of several sources → features → a logistic-regression
ranker trained on logged displays → the banner.

Features of a candidate (the same computation whatever sources proposed it, so no population is favoured
by construction): for each source, whether it proposed the item and 1/(1 + its rank there); the LED score
when LED proposed it; log popularity (users who interacted) and log price; the share of the user's history
in the item's category and whether the category is the one being browsed; and, in training only, the
display position (set to 0 when ranking: position bias is learned, then removed, the usual correction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Self

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ledrec.data.interactions import dedupe_rows
from ledrec.twostage.candidates import CandidateSource

SOURCES = ("gbo", "cbo", "led")


@dataclass
class Catalog:
    """What the ranker knows of items (index space)."""

    merchant: np.ndarray  # (I,)
    category: np.ndarray  # (I,)
    price: np.ndarray  # (I,)
    n_merchants: int
    n_categories: int


@dataclass
class Candidates:
    """Merged candidates of several sources for n requests: ``items`` (n, C) -1 = empty slot."""

    items: np.ndarray  # (n, C)
    proposed: np.ndarray  # (n, C, S) bool: source s proposed the item
    rank: np.ndarray  # (n, C, S) rank in source s (0 = its first), -1 if not proposed
    led_score: np.ndarray  # (n, C) LED score when proposed by LED, else 0


def gather_candidates(
    sources: Sequence[CandidateSource], histories: sp.csr_matrix, merchants: np.ndarray, k: int
) -> Candidates:
    """Ask every source for k items per request and merge them: an item proposed by several sources
    appears once, with every source's flag and rank."""
    S = len(SOURCES)
    proposals = {s.name: s.propose(histories, merchants, k) for s in sources}
    items = np.concatenate([p[0] for p in proposals.values()], axis=1)  # (n, |sources|·k) with repeats
    items = dedupe_rows(items)
    proposed = np.zeros((*items.shape, S), dtype=bool)
    rank = np.full((*items.shape, S), -1, dtype=np.int64)
    led_score = np.zeros(items.shape)
    for name, (src_items, src_scores) in proposals.items():
        s = SOURCES.index(name)
        match = (items[:, :, None] == src_items[:, None, :]) & (items[:, :, None] >= 0)  # (n, C, k)
        hit = match.any(axis=2)
        proposed[:, :, s] = hit
        rank[:, :, s] = np.where(hit, match.argmax(axis=2), -1)
        if name == "led":
            score = np.take_along_axis(src_scores, match.argmax(axis=2), axis=1)
            led_score = np.where(hit, score, 0.0)
    return Candidates(items, proposed, rank, led_score)


FEATURES = (
    *(f"from_{s}" for s in SOURCES),
    *(f"rr_{s}" for s in SOURCES),
    "led_score",
    "log_popularity",
    "log_price",
    "category_share",
    "browsing_category",
    "position",
)


def features(
    cand: Candidates,
    catalog: Catalog,
    popularity: np.ndarray,
    category_share: np.ndarray,
    browsing: np.ndarray,
    position: np.ndarray | None = None,
) -> np.ndarray:
    """(n, C, F) features of the candidates. ``category_share`` (n, n_categories): share of each request's
    history per category; ``browsing`` (n,): the category being browsed; ``position`` (n, C) display
    positions when the rows are logged displays (0 when ranking)."""
    items = np.maximum(cand.items, 0)
    cat = catalog.category[items]
    rr = np.where(cand.rank >= 0, 1.0 / (1.0 + np.maximum(cand.rank, 0)), 0.0)
    columns = [
        cand.proposed.astype(np.float64),  # (n, C, S)
        rr,
        cand.led_score[..., None],
        np.log1p(popularity[items])[..., None],
        np.log(catalog.price[items])[..., None],
        np.take_along_axis(category_share, cat, axis=1)[..., None],
        (cat == browsing[:, None])[..., None].astype(np.float64),
        (np.zeros(items.shape) if position is None else position)[..., None].astype(np.float64),
    ]
    return np.concatenate(columns, axis=2)


@dataclass
class LogisticModel:
    """A fitted logistic regression on standardised features, as plain arrays (saved without pickle)."""

    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (F,)
    intercept: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = ((X - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


class Ranker:
    """Two logistic regressions on logged displays: P(click) and P(sale); banners ranked by ``objective``."""

    def __init__(self, objective: str = "click", C: float = 1.0, random_state: int = 0) -> None:
        if objective not in ("click", "sale"):
            raise ValueError("objective must be 'click' or 'sale'")
        self.objective, self.C, self.random_state = objective, C, random_state

    def fit(self, X: np.ndarray, clicked: np.ndarray, sold: np.ndarray) -> Self:
        """``X`` (n, F) features of displayed items (with their position), and what happened."""
        self.models_: dict[str, LogisticModel | None] = {}
        for name, y in (("click", clicked), ("sale", sold)):
            if y.min() == y.max():  # nothing (or everything) happened yet: no model, constant score
                self.models_[name] = None
                continue
            pipe = make_pipeline(
                StandardScaler(), LogisticRegression(C=self.C, max_iter=300, random_state=self.random_state)
            ).fit(X, y)
            scaler, lr = pipe.steps[0][1], pipe.steps[1][1]
            self.models_[name] = LogisticModel(scaler.mean_, scaler.scale_, lr.coef_[0], float(lr.intercept_[0]))
        return self

    def predict(self, X: np.ndarray, target: str | None = None) -> np.ndarray:
        model = self.models_[target or self.objective]
        return np.zeros(len(X)) if model is None else model.predict(X)

    def coefficients(self, target: str = "click") -> dict[str, float]:
        """Coefficients of the standardised features (comparable across features)."""
        model = self.models_[target]
        if model is None:
            return {}
        return {name: float(c) for name, c in zip(FEATURES, model.coef, strict=True)}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for name, m in self.models_.items():
            if m is not None:
                out |= {f"{name}.mean": m.mean, f"{name}.scale": m.scale, f"{name}.coef": m.coef}
                out[f"{name}.intercept"] = np.array([m.intercept])
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], objective: str = "click") -> Ranker:
        ranker = cls(objective)
        ranker.models_ = {}
        for name in ("click", "sale"):
            if f"{name}.coef" not in arrays:
                ranker.models_[name] = None
                continue
            ranker.models_[name] = LogisticModel(
                arrays[f"{name}.mean"],
                arrays[f"{name}.scale"],
                arrays[f"{name}.coef"],
                float(arrays[f"{name}.intercept"][0]),
            )
        return ranker


def build_banners(
    cand: Candidates, X: np.ndarray | None, ranker: Ranker | None, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-``size`` candidates of each request by the ranker (random order without a ranker: the
    exploration of the first days). Returns (n, size) items (-1 = fewer candidates), (n, size) the slot
    of each shown item in ``cand.items``, and (n, size) the score it was ranked by (P(click) with a ranker)."""
    n, C = cand.items.shape
    if ranker is None:
        score = rng.random((n, C))
    else:
        score = ranker.predict(X.reshape(n * C, -1)).reshape(n, C)
    score = np.where(cand.items >= 0, score, -np.inf)
    slot = np.argsort(-score, axis=1, kind="stable")[:, :size]
    banners = np.take_along_axis(cand.items, slot, axis=1)
    return banners, slot, np.take_along_axis(score, slot, axis=1)


class Banners(NamedTuple):
    items: np.ndarray  # (n, size) shown items, -1 = fewer candidates
    candidates: Candidates
    slot: np.ndarray  # (n, size) each shown item's slot among the candidates
    features: np.ndarray  # (n, C, F) the candidates' features
    scores: np.ndarray  # (n, size) the ranker's P(click) of each shown item (random numbers without a ranker)


@dataclass
class TwoStage:
    """The whole second stage as one object: candidate sources + features + ranker → banners.

    >>> system = TwoStage([gbo, cbo, led_source], catalog, ranker)  # doctest: +SKIP
    >>> banners, cand, slot, X, scores = system.banners(histories, merchants, browsing, size=6)  # doctest: +SKIP
    """

    sources: Sequence[CandidateSource]
    catalog: Catalog
    ranker: Ranker | None = None  # None: random order (exploration)
    candidates_per_source: int = 20

    def banners(
        self,
        histories: sp.csr_matrix,
        merchants: np.ndarray,
        browsing: np.ndarray,
        size: int,
        popularity: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> Banners:
        """Banners of ``size`` items for n requests: ``histories`` (n, I) the users' items, ``merchants``
        (n,), ``browsing`` (n,) the category being browsed, ``popularity`` (I,) the popularity feature.
        Returns the banners (n, size; -1 = fewer candidates), the candidates, the slot of each shown item
        among them, the candidates' features (n, C, F) and the shown items' scores."""
        rng = rng or np.random.default_rng(0)
        cand = gather_candidates(self.sources, histories, merchants, self.candidates_per_source)
        onehot = _onehot(self.catalog.category, self.catalog.n_categories)
        counts = ((histories > 0).astype(np.float64) @ onehot).toarray()  # (n, n_categories)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        X = features(cand, self.catalog, popularity, share, browsing)
        banners, slot, scores = build_banners(cand, X, self.ranker, size, rng)
        return Banners(banners, cand, slot, X, scores)


def _onehot(labels: np.ndarray, n: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)), shape=(len(labels), n))
