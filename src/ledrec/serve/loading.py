"""From a directory on disk to a :class:`Retriever` that has proven itself: a serving export (``ledrec
export``), or a run directory of ``ledrec run --out`` (exported on the fly, one catalogue).

Which of the two a directory is, is decided once and strictly: a directory with a manifest, or with a
``serving/`` folder, is an export and must be a valid one; only a run directory without either is read as
a raw run. So a broken export is an error, never a silent fallback to the run beside it.

Only numpy and the index libraries: serving never imports torch or the training code.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ledrec.export.mips import ServingModel, is_export
from ledrec.io import MANIFEST, ArtifactError
from ledrec.serve.retriever import Retriever, RetrieverConfig

SERVING_DIR = "serving"  # RUN_DIR/serving: what `ledrec export` writes
EXPORT, RUN = "export", "run"  # what a served directory is


def locate(path: str | os.PathLike[str]) -> tuple[str, Path]:
    """(EXPORT, the export's folder) or (RUN, the run directory); ArtifactError for anything else."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: no such directory")
    if (path / MANIFEST).exists():
        if not is_export(path):
            raise ArtifactError(f"{path / MANIFEST}: not a serving export (kind serving-model)")
        return EXPORT, path
    if (path / SERVING_DIR).exists():
        if not is_export(path / SERVING_DIR):
            raise ArtifactError(f"{path / SERVING_DIR / MANIFEST}: missing or not a serving export")
        return EXPORT, path / SERVING_DIR
    if (path / "model" / MANIFEST).is_file():
        return RUN, path
    raise ArtifactError(f"{path}: neither a serving export ('ledrec export') nor a run directory ('ledrec run --out')")


def load_serving_model(path: str | os.PathLike[str]) -> ServingModel:
    kind, where = locate(path)
    return ServingModel.load(where) if kind == EXPORT else ServingModel.from_run(where)


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
