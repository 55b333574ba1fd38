"""Artifacts on disk: ``.npz``/``.npy`` arrays plus a JSON manifest, written atomically, never pickled.

Every stage writes its outputs through :func:`save_artifact` and reads them with :func:`load_artifact`, so a
run directory is self-describing: ``manifest.json`` names the kind of artifact, the library versions that
wrote it, the configuration, and the sha256 of each array file (checked on load).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ArtifactError(ValueError):
    """An artifact directory is missing, of the wrong kind, or corrupt."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one ``os.replace``.

    A reader never sees a half-written file, and a crash leaves the previous version in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour an artifact depends on."""
    import scipy

    from ledrec import __version__

    out = {"ledrec": __version__, "python": platform.python_version(), "numpy": np.__version__}
    out["scipy"] = scipy.__version__
    with contextlib.suppress(ImportError):
        import torch

        out["torch"] = torch.__version__
    return out


def save_artifact(
    directory: str | os.PathLike[str],
    kind: str,
    arrays: Mapping[str, np.ndarray],
    config: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``arrays`` (one ``.npy`` each, so large ones can be memory-mapped) and a manifest.

    Files are written atomically one by one and the manifest last, so a directory whose manifest exists
    is complete.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; artifacts never pickle")
        path = directory / f"{name}.npy"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
        files[name] = {
            "file": path.name,
            "sha256": sha256_file(path),
            "shape": list(array.shape),
            "dtype": str(array.dtype),
        }
    manifest = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "versions": versions(),
        "config": dict(config or {}),
        "arrays": files,
        **dict(extra or {}),
    }
    write_json(directory / MANIFEST, manifest)
    return directory


def read_manifest(directory: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """The manifest of an artifact directory, checked for what every reader relies on: valid JSON, an
    object with a ``kind`` (the expected one when ``kind`` is given) and an ``arrays`` table."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory}: no {MANIFEST}; not an ledrec artifact directory")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("arrays", {}), dict):
        raise ArtifactError(f"{path}: not an ledrec manifest (expected an object with an 'arrays' table)")
    if kind is not None and manifest.get("kind") != kind:
        raise ArtifactError(f"{directory}: holds a {manifest.get('kind')!r} artifact, not the {kind!r} one needed here")
    return manifest


def array_path(directory: str | os.PathLike[str], name: str, meta: Any) -> Path:
    """Where the manifest says array ``name`` is: a plain file name inside ``directory``. Absolute paths,
    ``..``, sub-folders and links that lead elsewhere are refused, so a manifest can never make a reader
    open a file outside its artifact."""
    manifest = Path(directory) / MANIFEST
    if not isinstance(meta, dict) or not isinstance(meta.get("file"), str) or not isinstance(meta.get("sha256"), str):
        raise ArtifactError(f"{manifest}: array {name!r} has no 'file' and 'sha256' entry")
    file = meta["file"]
    if not file or Path(file).is_absolute() or Path(file).name != file or file in (".", ".."):
        raise ArtifactError(
            f"{manifest}: array {name!r} points to {file[:200]!r}; only a file name inside the artifact"
        )
    path = Path(directory) / file
    if path.is_symlink() and not path.resolve().is_relative_to(Path(directory).resolve()):
        raise ArtifactError(f"{path}: a link to a file outside the artifact")
    return path


def load_artifact(
    directory: str | os.PathLike[str], kind: str | None = None, mmap: bool = False, verify: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an artifact written by :func:`save_artifact`; checksums are verified unless ``verify=False``."""
    directory = Path(directory)
    manifest = read_manifest(directory, kind)
    arrays = {}
    for name, meta in manifest["arrays"].items():
        path = array_path(directory, name, meta)
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing")
        if verify and sha256_file(path) != meta["sha256"]:
            raise ArtifactError(f"{path}: sha256 does not match the manifest (corrupt or modified)")
        try:
            array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # a truncated or foreign file, or an object array
            raise ArtifactError(f"{path}: not a readable .npy array ({exc})") from None
        if "shape" in meta and list(array.shape) != meta["shape"]:
            raise ArtifactError(f"{path}: shape {list(array.shape)}, the manifest says {meta['shape']}")
        if "dtype" in meta and str(array.dtype) != meta["dtype"]:
            raise ArtifactError(f"{path}: dtype {array.dtype}, the manifest says {meta['dtype']}")
        arrays[name] = array
    return arrays, manifest
