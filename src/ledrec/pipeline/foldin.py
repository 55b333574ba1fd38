"""The intra-day mode of the pipeline (``ledrec fold-in``): items that appeared since the last retrain join
the published model as a new version — vectors by fold-in (:mod:`ledrec.export.foldin`), the index
extended (``add_items``), not rebuilt — and ``current`` switches to it; the next daily run replaces it.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ledrec.data.stream import EventSource, window
from ledrec.errors import ConfigError
from ledrec.export import publish
from ledrec.export.foldin import fold_in
from ledrec.export.mips import ServingModel
from ledrec.io import write_json
from ledrec.monitor import measured
from ledrec.pipeline.daily import code_version
from ledrec.serve.loading import load_retriever
from ledrec.serve.retriever import RetrieverConfig, extend_cached_graph

INDEX_CACHE = "index-cache"


def fold_in_published(
    root: str,
    events: str,
    *,
    catalogues: list[str] | None = None,
    days: float | None = 1.0,
    since: str | None = None,
    method: str = "pmi",
    min_users: int = 2,
    keep: int = 5,
    partition_column: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """For each catalogue of the published ``root`` (or those named): fold the new items of the recent
    ``events`` (the last ``days`` before the latest event, or from ``since``) into its current version and
    publish the result. Returns a report per catalogue."""
    known = publish.catalogues(root, "ledrec fold-in")
    names = catalogues or sorted(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ConfigError(f"{root}: no catalogue {unknown[:5]}; it has {sorted(known)[:20]}")
    source = EventSource.open(events, {"partition": partition_column} if partition_column else None)
    start = window(source.latest(), days if not since else None, since or None)
    report: dict[str, Any] = {"root": root, "events": events, "since": start, "catalogues": {}}
    # a catalogue without recent events has nothing to fold in; it must not stop the others
    recent = set(source.catalogues(start)) if source.has_partition else None
    for name in names:
        if recent is not None and name not in recent:
            report["catalogues"][name] = {"decision": "unchanged", "reason": f"no events since {_day(start)}"}
        else:
            report["catalogues"][name] = _one(known[name], name, source, start, method, min_users, keep)
        if progress:
            part = report["catalogues"][name]
            say = f"fold-in [{name or 'all'}]: {part['decision']} ({part.get('new_items', 0)} new items)"
            print(say, file=sys.stderr, flush=True)
    return report


def _one(
    folder: Path, name: str, source: EventSource, since: int | None, method: str, min_users: int, keep: int
) -> dict[str, Any]:
    live = publish.current(folder)
    if live is None:
        return {"decision": "skipped", "reason": "nothing published yet"}
    old_dir = folder / publish.VERSIONS / live
    old = ServingModel.load(old_dir)
    timings: dict[str, Any] = {}
    with measured(timings.setdefault("fold-in", {})):
        recent = source.read(name if source.has_partition else "", since, None)
        result = fold_in(old, recent, partition=name if name in old.partitions else None, method=method,
                         min_users=min_users)  # fmt: skip
    out = {"from": live, "new_items": len(result.new_items), "stats": result.stats, "timings": timings}
    if not len(result.new_items):
        return {**out, "decision": "unchanged", "reason": "no new item with enough users"}
    version = publish.new_version_name(result.model.version)
    staging = folder / publish.VERSIONS / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    config = RetrieverConfig()
    with measured(timings.setdefault("index", {})):
        result.model.save(staging)
        (staging / INDEX_CACHE).mkdir()
        graphs = {
            p: extend_cached_graph(old, result.model, p, config, old_dir / INDEX_CACHE, staging / INDEX_CACHE)
            for p in result.model.partitions
        }
        load_retriever(staging, config)  # built where not extended, and self-checked as the service will
    timings["index"]["graphs"] = graphs
    base = old_dir / publish.RELEASE
    release_before = json.loads(base.read_text()) if base.is_file() else {}
    write_json(
        staging / publish.RELEASE,
        {
            "version": version,
            "catalogue": name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "code": code_version(),
            "action": "fold-in",
            "base_version": live,
            "new_items": result.new_items.tolist()[:10_000],
            "fold_in": result.stats,
            "metrics": {"holdout": release_before.get("metrics", {}).get("holdout"), "note": "of the base version"},
            "content_version": result.model.version,
        },
    )
    publish.add_version(folder, staging, version)
    publish.switch(folder, version, {"action": "fold-in", "new_items": len(result.new_items)})
    return {**out, "decision": "published", "version": version, "pruned": publish.prune(folder, keep)}


def _day(seconds: int | None) -> str:
    return "the start" if seconds is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))
