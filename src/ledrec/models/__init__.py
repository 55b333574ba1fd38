"""Recommenders: one module per algorithm, all following :class:`ledrec.models.base.Recommender`."""

from __future__ import annotations

from ledrec.models.als import ALS
from ledrec.models.base import Option, Recommender
from ledrec.models.bprmf import BPRMF
from ledrec.models.ease import EASE
from ledrec.models.gfcf import GFCF
from ledrec.models.led import LED
from ledrec.models.popularity import Popularity
from ledrec.models.svd import SVD
from ledrec.models.vae import MultDAE, MultVAE

MODELS: dict[str, type[Recommender]] = {
    m.name: m for m in (Popularity, EASE, SVD, LED, MultVAE, MultDAE, ALS, BPRMF, GFCF)
}


def get_model(name: str) -> type[Recommender]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


__all__ = [
    "ALS",
    "BPRMF",
    "EASE",
    "GFCF",
    "LED",
    "MODELS",
    "SVD",
    "MultDAE",
    "MultVAE",
    "Option",
    "Popularity",
    "Recommender",
    "get_model",
]
