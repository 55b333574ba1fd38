"""The source: what is published for serving, and when it changed (TensorFlow Serving's *source*).

A served path is one of the folders :func:`ledrec.export.directory.identify` knows: an export, a run
directory or a saved model (one model, which holds its catalogues itself), or a published root (one model per
catalogue, each at its ``current`` link). :meth:`Source.targets` names what each catalogue serves now, and
:func:`signature` says whether that changed, from a few ``stat`` calls: where a link resolves, and the
manifest that a writer replaces last (``ledrec export`` and the daily job write manifests atomically; a
published version never changes). Nothing re-reads every file of a million-item export every poll.

Only the standard library: the service's control plane.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ledrec.export import publish
from ledrec.export.directory import PUBLISHED, SERVING_DIR, TWO_STAGE, identify
from ledrec.io import MANIFEST

# the files whose replacement means a new model, in each kind of folder (a run directory exported on the fly
# has two; a published version adds its release)
_WATCHED = (MANIFEST, f"{SERVING_DIR}/{MANIFEST}", f"model/{MANIFEST}", f"items/{MANIFEST}", publish.RELEASE)


class Source:
    """A served path and what it serves per catalogue (``""``: one model for every catalogue)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.kind = identify(self.path)
        self.routed = self.kind == PUBLISHED
        self.two_stage = self.kind == TWO_STAGE  # (the Banner call: the Python front)

    def targets(self) -> dict[str, Path]:
        """Catalogue → the folder that serves it now (a published catalogue's ``current`` link, which may
        not exist yet: registered, nothing published)."""
        if not self.routed:
            return {"": self.path}
        return {name: folder / publish.CURRENT for name, folder in publish.catalogues(self.path).items()}

    def roster(self) -> tuple[Any, ...]:
        """Changes when catalogues are added to a published root (its marker is rewritten)."""
        return _stat(self.path / publish.MARKER) if self.routed else ()


def signature(target: str | os.PathLike[str]) -> tuple[Any, ...]:
    """What ``target`` resolves to and the identity of its manifests: any new model there — a symlink
    switched, an export rewritten in place (its manifest replaced) — changes it."""
    real = Path(target).resolve()
    return (str(real), tuple(_stat(real / name) for name in _WATCHED))


def _stat(path: Path) -> tuple[Any, ...]:
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)
