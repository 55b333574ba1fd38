"""From a directory on disk to a :class:`Retriever`: a serving export (``ledrec export``), or a run
directory of ``ledrec run --out`` (exported on the fly, one catalogue)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from ledrec.export.mips import ServingModel, from_model
from ledrec.io import MANIFEST, ArtifactError, load_artifact
from ledrec.models import get_model
from ledrec.serve.retriever import Retriever, RetrieverConfig

SERVING_DIR = "serving"  # RUN_DIR/serving: what `ledrec export` writes


def load_serving_model(path: str | os.PathLike[str]) -> ServingModel:
    path = Path(path)
    for candidate in (path, path / SERVING_DIR):
        if _is_serving(candidate):
            return ServingModel.load(candidate)
    if (path / "model" / MANIFEST).is_file():
        model_manifest = json.loads((path / "model" / MANIFEST).read_text())
        model = get_model(model_manifest["model"]).load(path / "model")
        ids, _ = load_artifact(path / "items", kind="vocabulary")
        serving = from_model(model, ids["item_ids"])
        serving.info.update({"run_dir": str(path), "dataset": model_manifest.get("dataset")})
        return serving
    raise ArtifactError(f"{path}: neither a serving export ('ledrec export') nor a run directory ('ledrec run --out')")


def load_retriever(path: str | os.PathLike[str], config: RetrieverConfig | None = None) -> Retriever:
    """The retriever of a directory; graphs are cached in the serving export when there is one."""
    config = config or RetrieverConfig()
    serving_dir = next((p for p in (Path(path), Path(path) / SERVING_DIR) if _is_serving(p)), None)
    if serving_dir is not None and config.cache_dir is None:
        config = replace(config, cache_dir=str(serving_dir / "index-cache"))
    return Retriever(load_serving_model(path), config)


def _is_serving(path: Path) -> bool:
    manifest = path / MANIFEST
    return manifest.is_file() and json.loads(manifest.read_text()).get("kind") == "serving-model"
