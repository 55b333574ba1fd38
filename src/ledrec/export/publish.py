"""Published models: the directory the daily pipeline writes and the service reads (seed paper §6.1, §6.3).

::

    ROOT/
      published.json              marker: {"kind": "ledrec-published", "catalogues": {name: folder}}
      <folder>/                    one catalogue (country, merchant), trained independently; a log without a
                                   partition column has one, named "all" (UNPARTITIONED)
        current -> versions/<V>    what serves: a relative symlink, switched atomically (os.replace)
        versions/<V>/              immutable: a serving export (manifest.json, .npy, index-cache/) and
                                   release.json (inputs, config, code version, metrics, checksums)
        releases.jsonl             one line per publish / rollback: what was current before and after

A version directory is written in full under a temporary name and renamed into ``versions/`` before
``current`` moves to it, so a reader sees either the old model or the whole new one. The service follows
``current`` by itself (its hot reload watches where the link resolves), and ``rollback`` is a link switch.

A root written before the unpartitioned catalogue had a name holds it as ``""`` in the folder ``%``: it is
read, served and published to as it is (:func:`unpartitioned`), never renamed under a running service.

Only the standard library, ``ledrec.io`` and ``ledrec.export.directory``: the service reads this layout
without the training stack.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ledrec.export.directory import PUBLISHED, PUBLISHED_MARKER, expect
from ledrec.io import ArtifactError, write_json

MARKER = PUBLISHED_MARKER
KIND = "ledrec-published"
# The one catalogue of a log without a partition column. A request need not name it (a one-catalogue root
# answers partition ""), and a partition value "all" of another log is refused beside it (the pipeline).
UNPARTITIONED = "all"
LEGACY_UNPARTITIONED = ""  # its name in roots written before it had one (folder "%")
CURRENT, VERSIONS, RELEASES, RELEASE = "current", "versions", "releases.jsonl", "release.json"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def folder_name(catalogue: str) -> str:
    """A catalogue's folder: its name when that is a plain file name, else a percent-encoding of it, or a
    hash of it when that would be too long (a partition value is data: it must never become ``..``, a
    path, or a name the file system refuses). The marker maps names to folders. (``""`` maps to ``%``: the
    folder of :data:`LEGACY_UNPARTITIONED`, which only roots of earlier versions hold.)"""
    if _SAFE.fullmatch(catalogue):
        return catalogue
    quoted = "%" + quote(catalogue, safe="")
    return quoted if len(quoted) <= 100 else "%%" + hashlib.sha256(catalogue.encode()).hexdigest()[:32]


def is_published(root: str | os.PathLike[str]) -> bool:
    return (Path(root) / MARKER).is_file()


def catalogues(root: str | os.PathLike[str], command: str = "this command") -> dict[str, Path]:
    """Catalogue name → its folder, from the marker. ArtifactError when it is malformed, or when ``root``
    is not a published root: naming what it is instead (a run, an export, …) and ``command``."""
    root = Path(root)
    if not (root / MARKER).exists():
        parent = root.resolve().parent
        if (parent / MARKER).is_file() and root.name in _folders(parent):
            name = _folders(parent)[root.name]
            raise ArtifactError(f"{root}: catalogue {name[:64]!r} of the published root {parent}: give the root")
        expect(root, (PUBLISHED,), command)  # raises: what the folder is, and what makes a published root
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{root / MARKER}: not a published-models marker ({exc})") from None
    names = marker.get("catalogues") if isinstance(marker, dict) else None
    if marker.get("kind") != KIND or not isinstance(names, dict):
        raise ArtifactError(f"{root / MARKER}: not a published-models marker (kind {KIND})")
    out = {}
    for name, folder in names.items():
        if not isinstance(folder, str) or folder != folder_name(name):
            raise ArtifactError(f"{root / MARKER}: catalogue {name[:64]!r} has folder {str(folder)[:64]!r}")
        out[name] = root / folder
    return out


def unpartitioned(root: str | os.PathLike[str]) -> str:
    """The name under which ``root`` holds (or will hold) the one catalogue of a log without a partition
    column: :data:`UNPARTITIONED`, or ``""`` where an earlier version published it so (a running service
    follows that folder: renaming it would leave the service on the old model)."""
    legacy = is_published(root) and LEGACY_UNPARTITIONED in catalogues(root)
    return LEGACY_UNPARTITIONED if legacy else UNPARTITIONED


def _folders(root: Path) -> dict[str, str]:
    """Folder → catalogue name, from the marker as it is (empty when it cannot be read)."""
    try:
        names = json.loads((root / MARKER).read_text()).get("catalogues", {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return {}
    return {str(folder): str(name) for name, folder in names.items()} if isinstance(names, dict) else {}


def register(root: str | os.PathLike[str], catalogue: str) -> Path:
    """Add a catalogue to the marker (creating the root), and return its folder. The name ``""`` is only
    accepted where the root has it already (:func:`unpartitioned`): a new one is :data:`UNPARTITIONED`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    known = {name: str(path.name) for name, path in catalogues(root).items()} if is_published(root) else {}
    if catalogue == LEGACY_UNPARTITIONED and catalogue not in known:
        raise ArtifactError(
            f"{root}: a catalogue needs a name; the one of a log without partitions is {UNPARTITIONED!r}"
        )
    if catalogue not in known:
        known[catalogue] = folder_name(catalogue)
        write_json(root / MARKER, {"kind": KIND, "catalogues": dict(sorted(known.items()))})
    folder = root / known[catalogue]
    (folder / VERSIONS).mkdir(parents=True, exist_ok=True)
    return folder


def current(folder: str | os.PathLike[str]) -> str | None:
    """The version ``current`` points to, or None before the first publish."""
    link = Path(folder) / CURRENT
    if not link.is_symlink():
        return None
    target = Path(os.readlink(link))
    if target.parent != Path(VERSIONS) or not (Path(folder) / target).is_dir():
        raise ArtifactError(f"{link}: points to {str(target)[:200]!r}, not to a version in {VERSIONS}/")
    return target.name


def versions(folder: str | os.PathLike[str]) -> list[str]:
    """The version names, oldest first (names start with their UTC publish time)."""
    path = Path(folder) / VERSIONS
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")) if path.is_dir() else []


def new_version_name(content_version: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{content_version[:12]}"


def add_version(folder: str | os.PathLike[str], staged: str | os.PathLike[str], name: str) -> Path:
    """Move a fully written directory ``staged`` (on the same file system) into ``versions/NAME``; an
    existing version is never overwritten."""
    target = Path(folder) / VERSIONS / name
    if target.exists():
        raise ArtifactError(f"{target}: version exists; versions are immutable")
    os.rename(staged, target)
    return target


def switch(folder: str | os.PathLike[str], version: str, event: dict[str, Any]) -> None:
    """Point ``current`` at ``versions/VERSION`` in one ``os.replace`` and log the switch."""
    folder = Path(folder)
    if not (folder / VERSIONS / version).is_dir():
        raise ArtifactError(f"{folder / VERSIONS / version}: no such version")
    before = current(folder)
    tmp = folder / f".{CURRENT}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(Path(VERSIONS) / version, tmp)
    os.replace(tmp, folder / CURRENT)
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from": before, "to": version, **event}
    with open(folder / RELEASES, "a") as log:
        log.write(json.dumps(record) + "\n")


def releases(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(folder) / RELEASES
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def rollback(folder: str | os.PathLike[str], to: str | None = None) -> tuple[str | None, str]:
    """Switch ``current`` back: to ``to``, or to what was current before the live version was published.
    Returns (from, to)."""
    folder = Path(folder)
    live = current(folder)
    if to is None:
        previous = [r["from"] for r in releases(folder) if r.get("to") == live and r.get("action") == "publish"]
        to = previous[-1] if previous and previous[-1] else None
        if to is None:
            raise ArtifactError(f"{folder}: no earlier version to roll back to (current: {live})")
    if to not in versions(folder):
        raise ArtifactError(f"{folder}: no version {to!r}; kept: {', '.join(versions(folder)) or 'none'}")
    switch(folder, to, {"action": "rollback"})
    return live, to


def prune(folder: str | os.PathLike[str], keep: int) -> list[str]:
    """Delete all but the ``keep`` newest versions; never the current one. Returns what was deleted."""
    live = current(folder)
    names = versions(folder)
    doomed = [v for v in names[: max(0, len(names) - keep)] if v != live]
    for name in doomed:
        shutil.rmtree(Path(folder) / VERSIONS / name)
    return doomed


def rollback_catalogue(
    root: str | os.PathLike[str], catalogue: str | None, to: str | None = None
) -> tuple[str | None, str]:
    """:func:`rollback` of one catalogue of a published root (the only one when ``catalogue`` is None)."""
    known = catalogues(root, "ledrec pipeline rollback")
    if catalogue is None:
        if len(known) != 1:
            raise ArtifactError(
                f"{root}: {len(known)} catalogues; say which with --catalogue ({', '.join(sorted(known))[:200]})"
            )
        catalogue = next(iter(known))
    if catalogue not in known:
        raise ArtifactError(f"{root}: no catalogue {catalogue[:64]!r}; it has {', '.join(sorted(known))[:200]}")
    return rollback(known[catalogue], to)


def status(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Per catalogue: the current version, its release metrics, the versions kept, the last switches."""
    out: dict[str, Any] = {"root": str(root), "catalogues": {}}
    for name, folder in catalogues(root, "ledrec pipeline status").items():
        live = current(folder)
        release: dict[str, Any] = {}
        if live is not None and (folder / VERSIONS / live / RELEASE).is_file():
            release = json.loads((folder / VERSIONS / live / RELEASE).read_text())
        out["catalogues"][name] = {
            "current": live,
            "created": release.get("created"),
            "metrics": release.get("metrics", {}).get("holdout"),
            "versions": versions(folder),
            "last_switches": releases(folder)[-3:],
        }
    return out
