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

from ledrec.export.directory import EXPORT, MODEL, RUN, SERVING_DIR, TWO_STAGE, expect, identify
from ledrec.export.mips import KIND, ServingModel, catalogues_from_events, is_export
from ledrec.io import MANIFEST, read_manifest

EXPORT_KINDS = (EXPORT, RUN, MODEL)  # what serving reads: an export, or a run / saved model exported on the fly


def locate(path: str | os.PathLike[str], command: str = "this command") -> tuple[str, Path]:
    """(EXPORT, the export's folder) or (RUN, a run directory or a saved model, exported on the fly: see
    :meth:`ServingModel.from_run`); an ArtifactError naming what ``path`` is for anything else
    (:func:`ledrec.export.directory.expect`). A folder with a manifest or a ``serving/`` folder is judged by
    it, so a broken export is an error naming its file, never a fallback to the run beside it."""
    path = Path(path)
    kind = identify(path)
    if kind == EXPORT:
        where = path if is_export(path) else path / SERVING_DIR
        if not is_export(where):
            read_manifest(where, KIND)  # the precise reason: missing, unreadable, another kind
        return EXPORT, where
    if kind in (RUN, MODEL, TWO_STAGE):
        return RUN, path
    if (path / MANIFEST).exists():
        read_manifest(path)  # an unreadable manifest: its own error, naming the file
    expect(path, EXPORT_KINDS, command)  # raises: what it is instead, and what makes what is needed
    raise AssertionError("unreachable")


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
