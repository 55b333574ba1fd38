"""From a directory on disk to a :class:`Retriever` that has proven itself: a serving export (``ledrec
export``), or a run directory of ``ledrec run --out`` (exported on the fly, one catalogue).

Which of the two a directory is, is decided once and strictly (:func:`ledrec.export.loading.locate`): a
directory with a manifest, or with a ``serving/`` folder, is an export and must be a valid one; only a run
directory without either is read as a raw run. So a broken export is an error, never a silent fallback to
the run beside it.

Only numpy and the index libraries: serving never imports torch or the training code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledrec.export.loading import EXPORT, RUN, SERVING_DIR, load_serving_model, locate
from ledrec.export.mips import ServingModel
from ledrec.serve.retriever import Retriever, RetrieverConfig

__all__ = ["EXPORT", "RUN", "SERVING_DIR", "load_retriever", "load_servable", "load_serving_model", "locate"]


def load_retriever(
    path: str | os.PathLike[str], config: RetrieverConfig | None = None, check: bool = True
) -> Retriever:
    """The retriever of a directory, validated and (with ``check``) self-checked against exact scoring.
    Graphs are cached in the serving export when there is one."""
    config = config or RetrieverConfig()
    kind, where = locate(path)
    if kind == EXPORT and config.cache_dir is None:
        config = replace(config, cache_dir=str(where / "index-cache"))
    model = ServingModel.load(where) if kind == EXPORT else ServingModel.from_run(where)
    retriever = Retriever(model, config)
    retriever.source = kind
    if check:
        retriever.self_check()
    return retriever


def load_servable(config: RetrieverConfig, front: str) -> Callable[[Path], Any]:
    """The loader of a front (TensorFlow Serving's *loader*): a directory → a model that has proven itself,
    what the manager swaps in. The Python front serves the retriever itself; the native front a C++ model
    made from exactly what the retriever verified, self-checked through its own request path."""

    def load(path: Path) -> Any:
        retriever = load_retriever(path, config)
        if front != "native":
            return retriever
        from ledrec.serve import native

        return native.load(retriever)

    return load
