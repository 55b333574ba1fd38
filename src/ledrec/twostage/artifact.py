"""A fitted two-stage system on disk (arrays + JSON manifests, no pickle), for the service's Banner call:
``DIR/system`` (catalogue, popularity, GBO and CBO tables, CBO centroids, ranker coefficients, id
vocabularies), ``DIR/model`` (the LED model) and ``DIR/items`` (its item ids) — so ``DIR`` is also a run
directory that ``ledrec serve`` answers Recommend calls from."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ledrec.data.interactions import user_item_matrix
from ledrec.io import load_artifact, save_artifact
from ledrec.twostage.candidates import CBO, GBO, Centroids, LEDSource
from ledrec.twostage.ranker import SOURCES, Catalog, Ranker, TwoStage

KIND = "two-stage"


@dataclass
class SavedSystem:
    system: TwoStage
    popularity: np.ndarray  # (I,) the popularity feature
    item_ids: np.ndarray  # (I,) original item ids
    merchant_ids: np.ndarray  # (M,) original merchant ids
    max_size: int = 100

    def __post_init__(self) -> None:
        self._item_index = {str(i): k for k, i in enumerate(self.item_ids)}
        self._merchant_index = {str(m): k for k, m in enumerate(self.merchant_ids)}

    def banner(self, merchant: str, item_ids: list[str], size: int) -> tuple[list[tuple[str, float, list[str]]], int]:
        """One banner for a user's recent ``item_ids`` (most recent last) at ``merchant``: a list of
        (item id, P(click), proposing sources), and the number of unknown history ids (ignored).
        Raises ValueError for an unknown merchant or a size outside 1..max_size."""
        if not 1 <= size <= self.max_size:
            raise ValueError(f"size must be in 1..{self.max_size}, not {size}")
        if merchant not in self._merchant_index:
            raise ValueError(f"unknown merchant {merchant!r}")
        known = [self._item_index[i] for i in item_ids if i in self._item_index]
        n_items = len(self.item_ids)
        history = user_item_matrix(np.zeros(len(known), int), np.array(known, int), (1, n_items))
        cat = self.system.catalog.category
        browsing = np.array([cat[known[-1]] if known else -1])
        merchants = np.array([self._merchant_index[merchant]])
        shown = self.system.banners(history, merchants, browsing, size, self.popularity)
        scores = shown.scores[0] if self.system.ranker else np.zeros(size)
        out = []
        for j, item in enumerate(shown.items[0]):
            if item < 0:
                break
            sources = [s for k, s in enumerate(SOURCES) if shown.candidates.proposed[0, shown.slot[0, j], k]]
            out.append((str(self.item_ids[item]), float(scores[j]), sources))
        return out, len(item_ids) - len(known)


def save_system(
    directory: str | os.PathLike[str],
    gbo: GBO,
    cbo: CBO,
    led: Any,
    ranker: Ranker,
    catalog: Catalog,
    item_ids: np.ndarray,
    merchant_ids: np.ndarray,
    candidates_per_source: int,
    led_score: str = "raw",
) -> Path:
    directory = Path(directory)
    led.save(directory / "model")
    save_artifact(directory / "items", "vocabulary", {"item_ids": np.asarray(item_ids).astype(str)})
    arrays = {
        "item_ids": np.asarray(item_ids).astype(str),
        "merchant_ids": np.asarray(merchant_ids).astype(str),
        "item_merchant": catalog.merchant,
        "item_category": catalog.category,
        "item_price": catalog.price,
        "popularity": gbo.item_counts_,
        "gbo.top": gbo.top_,
        "cbo.top": cbo.top_,
        "cbo.counts": cbo.cluster_counts_,
        "cbo.centers": cbo.kmeans_.cluster_centers_,
        "cbo.item_vectors": cbo.item_vectors,
        **{f"ranker.{k}": v for k, v in ranker.arrays().items()},
    }
    config = {
        "n_merchants": catalog.n_merchants,
        "n_categories": catalog.n_categories,
        "candidates_per_source": candidates_per_source,
        "objective": ranker.objective,
        "led_score": led_score,  # the ranker learned on this form of LED's score: serve the same
    }
    return save_artifact(directory / "system", KIND, arrays, config=config)


def load_system(directory: str | os.PathLike[str]) -> SavedSystem:
    directory = Path(directory)
    a, manifest = load_artifact(directory / "system", KIND)
    cfg = manifest["config"]
    catalog = Catalog(a["item_merchant"], a["item_category"], a["item_price"], cfg["n_merchants"], cfg["n_categories"])
    gbo = GBO(catalog.merchant, catalog.n_merchants, a["gbo.top"].shape[1])
    gbo.item_counts_, gbo.top_ = a["popularity"], a["gbo.top"]
    cbo = CBO(
        a["cbo.item_vectors"], catalog.merchant, catalog.n_merchants, len(a["cbo.centers"]), a["cbo.top"].shape[2]
    )
    cbo.kmeans_, cbo.top_, cbo.cluster_counts_ = Centroids(a["cbo.centers"]), a["cbo.top"], a["cbo.counts"]
    # LED's learned arrays, read without the training stack (the service loads this)
    led_arrays, led_manifest = load_artifact(directory / "model", kind="model")
    reduce = led_manifest.get("fitted", {}).get("reduce_") or led_manifest["config"].get("reduce") or "mean"
    led = SimpleNamespace(**led_arrays, reduce=reduce)
    ranker_arrays = {k.removeprefix("ranker."): v for k, v in a.items() if k.startswith("ranker.")}
    ranker = Ranker.from_arrays(ranker_arrays, cfg["objective"])
    # (a system saved before the choice existed ranked on the raw score)
    sources = [gbo, cbo, LEDSource(led, catalog.merchant, catalog.n_merchants, cfg.get("led_score", "raw"))]
    system = TwoStage(sources, catalog, ranker, cfg["candidates_per_source"])
    return SavedSystem(system, a["popularity"], a["item_ids"], a["merchant_ids"])
