"""What a directory is: the one place that knows. Every command that takes a folder asks :func:`identify`, and
one that gets a folder of another kind says what it found and which command makes what it needs
(:func:`expect`), instead of "not a serving export (kind serving-model)".

Only the standard library and ``ledrec.io`` (manifests are JSON): the service asks too, without the training
stack.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ledrec.io import MANIFEST, ArtifactError

EXPORT, RUN, MODEL, PUBLISHED, TWO_STAGE = "export", "run", "model", "published", "two-stage"
EMBEDDINGS, PREPARED = "embeddings", "prepared"
SERVING_DIR = "serving"  # RUN_DIR/serving: what `ledrec export` writes
PUBLISHED_MARKER = "published.json"  # (ledrec.export.publish.MARKER: that module imports this one)

# kind → (what it is, what makes it)
KINDS = {
    EXPORT: ("a serving export", "ledrec export RUN_DIR"),
    RUN: ("a run directory", "ledrec run ... --out DIR"),
    MODEL: ("a saved model", "model.save(DIR) in Python"),
    PUBLISHED: ("a published root", "ledrec pipeline --out ROOT"),
    TWO_STAGE: ("a two-stage system", "ledrec simulate ab --save-system DIR"),
    EMBEDDINGS: ("pre-trained item embeddings", "ledrec pretrain --out DIR"),
    PREPARED: ("a prepared dataset", "ledrec prepare --out DIR"),
}
# the manifest kinds (ledrec.io.save_artifact) of the folders above
_MANIFEST_KINDS = {"serving-model": EXPORT, "model": MODEL, "embeddings": EMBEDDINGS, "prepared": PREPARED}


def manifest_kind(directory: Path) -> str | None:
    """The ``kind`` of ``directory/manifest.json``, or None when there is none (or it is not JSON)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    return kind if isinstance(kind, str) else None


def identify(path: str | os.PathLike[str]) -> str | None:
    """The kind of a directory (a key of :data:`KINDS`, ``"artifact:KIND"`` for another ledrec artifact),
    or None for a folder ledrec did not write. A run directory with an export inside (``RUN/serving``) is an
    export; a two-stage system is also a run directory of its LED, and is named for what it adds."""
    p = Path(path)
    if not p.is_dir():
        return None
    if (p / PUBLISHED_MARKER).is_file():
        return PUBLISHED
    if (p / "system" / MANIFEST).is_file():
        return TWO_STAGE
    if (p / MANIFEST).exists():
        kind = manifest_kind(p)
        if kind == "model" and (p / SERVING_DIR).exists():
            return EXPORT  # a saved model exported in place (ledrec export DIR)
        return _MANIFEST_KINDS.get(kind or "", f"artifact:{kind}")
    if (p / SERVING_DIR).exists():
        return EXPORT
    if (p / "model" / MANIFEST).is_file():
        return RUN
    return None


def describe(kind: str | None) -> str:
    """A kind in words, with the command that makes it."""
    if kind is None:
        return "not a folder ledrec wrote"
    if kind in KINDS:
        what, made_by = KINDS[kind]
        return f"{what} ({made_by})"
    return f"a ledrec artifact of kind {kind.removeprefix('artifact:')!r}"


def expect(path: str | os.PathLike[str], accepted: tuple[str, ...], command: str) -> str:
    """The kind of ``path`` when it is one of ``accepted``; else an :class:`ArtifactError` naming what it is
    and what ``command`` takes (each with the command that makes it)."""
    p = Path(path)
    if not p.exists():
        raise ArtifactError(f"{p}: no such directory")
    if not p.is_dir():
        raise ArtifactError(f"{p}: a file, not a directory; {command} takes {_alternatives(accepted)}")
    kind = identify(p)
    if kind in accepted:
        return kind  # type: ignore[return-value]
    raise ArtifactError(f"{p}: {describe(kind)}; {command} takes {_alternatives(accepted)}")


def _alternatives(kinds: tuple[str, ...]) -> str:
    words = [describe(k) for k in kinds]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
