"""What a directory holds for serving — a serving export (``ledrec export``) or a run directory of ``ledrec
run --out`` (exported on the fly, one catalogue) — and :func:`export_run`, what ``ledrec export`` does.

Which of the two a directory is, is decided once and strictly: a directory with a manifest, or with a
``serving/`` folder, is an export and must be a valid one; only a run directory without either is read as
a raw run. So a broken export is an error, never a silent fallback to the run beside it.

Only numpy at import: serving (``ledrec.serve.loading``) builds on this and never imports torch or the
training code.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ledrec.export.mips import ServingModel, catalogues_from_events, is_export
from ledrec.io import MANIFEST, ArtifactError

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
    """The serving form of a directory that :func:`locate` accepts (validated as it loads)."""
    kind, where = locate(path)
    return ServingModel.load(where) if kind == EXPORT else ServingModel.from_run(where)


def export_run(
    run_dir: str | os.PathLike[str],
    data: str | None = None,
    format: str | None = None,
    out: str | os.PathLike[str] | None = None,
) -> tuple[ServingModel, Path, str | None]:
    """Write the serving form of a run directory (or of an export, again): item vectors with the bias as an
    extra dimension, the encoder, and with ``data`` (events, read by
    :func:`ledrec.data.load.load_dataset`, ``format`` forcing the reader) one catalogue per value of its
    partition column. Saved to ``out`` (default ``RUN_DIR/serving``).

    Returns the model, where it was written, and a note when ``data`` has no partition column (the export
    then has one catalogue of every item), else None."""
    from ledrec.data.load import load_dataset

    serving = load_serving_model(run_dir)
    note = None
    if data:
        catalogues = catalogues_from_events(serving, load_dataset(data, format).parts.values())
        if catalogues is None:
            note = f"{data} has no partition column: one catalogue of all {len(serving.item_ids)} items"
        else:
            serving = replace(serving, partitions=catalogues)
    where = Path(out) if out else Path(run_dir) / SERVING_DIR
    serving.save(where)
    return serving, where, note
