"""Ways a serving export can be broken on disk, each a function that breaks a copy of one in place: the
cases ``ledrec bench chaos`` (and the tests) feed to ``ledrec serve`` at start-up and at reload.

``REFUSED``: the service must refuse the export (exit 2 at start, keep the old model at reload), with a
message naming the file. ``REBUILT``: only the graph cache is wrong; the service must not trust it, rebuild
it and answer right. Every corruption keeps the manifest's checksums consistent where a careless tool
would (a rewrite in place), so that the checks behind the checksum are exercised too.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ledrec.export.mips import ServingModel
from ledrec.io import MANIFEST, sha256_file


def _manifest(d: Path) -> dict:
    return json.loads((d / MANIFEST).read_text())


def _write_manifest(d: Path, manifest: dict) -> None:
    (d / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _rewrite(d: Path, name: str, array: np.ndarray) -> None:
    """Replace one array and make the manifest agree with it (shape, dtype, sha256), as a tool that
    rewrites an export in place without the library would."""
    path = d / f"{name}.npy"
    np.save(path, array, allow_pickle=False)
    manifest = _manifest(d)
    manifest["arrays"][name].update(sha256=sha256_file(path), shape=list(array.shape), dtype=str(array.dtype))
    _write_manifest(d, manifest)


def _load(d: Path, name: str) -> np.ndarray:
    return np.load(d / f"{name}.npy", allow_pickle=False)


def _flip_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


def manifest_missing(d: Path) -> None:
    (d / MANIFEST).unlink()


def manifest_not_json(d: Path) -> None:
    (d / MANIFEST).write_text('{"kind": "serving-model", "arrays": {')


def manifest_wrong_kind(d: Path) -> None:
    _write_manifest(d, {**_manifest(d), "kind": "model"})


def array_missing(d: Path) -> None:
    (d / "item_bias.npy").unlink()


def array_byte_flip(d: Path) -> None:
    _flip_byte(d / "item_vectors.npy")


def array_truncated(d: Path) -> None:
    path = d / "item_vectors.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    manifest = _manifest(d)
    manifest["arrays"]["item_vectors"]["sha256"] = sha256_file(path)
    _write_manifest(d, manifest)


def ids_count_mismatch(d: Path) -> None:
    _rewrite(d, "item_ids", _load(d, "item_ids")[:-1])


def duplicate_ids(d: Path) -> None:
    ids = _load(d, "item_ids").copy()
    ids[-1] = ids[0]
    _rewrite(d, "item_ids", ids)


def query_map_shape(d: Path) -> None:
    q = _load(d, "query_map")
    _rewrite(d, "query_map", np.eye(len(q) + 1, dtype=np.float32))


def vectors_nan(d: Path) -> None:
    v = _load(d, "item_vectors").copy()
    v[len(v) // 2, 0] = np.nan
    _rewrite(d, "item_vectors", v)


def bias_inf(d: Path) -> None:
    b = _load(d, "item_bias").copy()
    b[0] = np.inf
    _rewrite(d, "item_bias", b)


def vectors_float64(d: Path) -> None:
    _rewrite(d, "item_vectors", _load(d, "item_vectors").astype(np.float64))


def partition_out_of_range(d: Path) -> None:
    items = _load(d, "partition_items").copy()
    items[-1] = len(_load(d, "item_ids")) + 7
    _rewrite(d, "partition_items", items)


def _point_outside(d: Path, file: str) -> None:
    outside = (d.parent / f"{d.name}-outside").resolve()
    outside.mkdir(exist_ok=True)
    shutil.copy(d / "item_bias.npy", outside / "item_bias.npy")
    manifest = _manifest(d)
    manifest["arrays"]["item_bias"]["file"] = file.format(outside=outside, name=outside.name)
    _write_manifest(d, manifest)
    (d / "item_bias.npy").unlink()


def path_absolute(d: Path) -> None:
    _point_outside(d, "{outside}/item_bias.npy")


def path_dotdot(d: Path) -> None:
    _point_outside(d, "../{name}/item_bias.npy")


def content_version_mismatch(d: Path) -> None:
    manifest = _manifest(d)
    manifest["config"]["content_version"] = "0" * 16
    _write_manifest(d, manifest)


def graph_byte_flip(d: Path) -> None:
    """Needs a built graph cache (the export served once with an ANN partition)."""
    graphs = sorted((d / "index-cache").glob("hnsw-*.bin"))
    if not graphs:
        raise ValueError(f"{d}: no cached graph to corrupt")
    for graph in graphs:
        _flip_byte(graph, 0.37)


def graph_stale(d: Path) -> None:
    """A re-export in place whose catalogues keep their names but change members, the old graphs left in
    the cache. The old code kept the model version and served the old graphs (recall@20 fell to .07)."""
    model = ServingModel.load(d)
    rng = np.random.default_rng(0)
    n = len(model.item_ids)
    members = {k: np.sort(rng.choice(n, len(v), replace=False)) for k, v in model.partitions.items()}
    dataclasses.replace(model, partitions=members).save(d)


REFUSED: dict[str, Callable[[Path], None]] = {
    "manifest missing": manifest_missing,
    "manifest not JSON": manifest_not_json,
    "manifest of another kind": manifest_wrong_kind,
    "array file missing": array_missing,
    "array byte flipped": array_byte_flip,
    "array truncated": array_truncated,
    "ids ≠ vectors": ids_count_mismatch,
    "duplicate item ids": duplicate_ids,
    "query map (d+1)²": query_map_shape,
    "NaN vector": vectors_nan,
    "inf bias": bias_inf,
    "float64 vectors": vectors_float64,
    "catalogue item out of range": partition_out_of_range,
    "absolute array path": path_absolute,
    "'..' array path": path_dotdot,
    "content version ≠ content": content_version_mismatch,
}
REBUILT: dict[str, Callable[[Path], None]] = {
    "graph byte flipped": graph_byte_flip,
    "stale graph (members changed)": graph_stale,
}


def copy_export(src: Path, dst: Path, with_cache: bool = True) -> Path:
    """A fresh copy of an export to break (the cache too, where a class needs it)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=None if with_cache else shutil.ignore_patterns("index-cache"))
    return dst
