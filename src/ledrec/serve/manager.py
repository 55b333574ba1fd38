"""The manager: which model answers each catalogue, and the swap policy (TensorFlow Serving's *manager*).

A new model is loaded beside the served one (by the loader: validated, graphs built or verified, self-checked)
and swapped in with one assignment: a request in flight finishes on the model it started with, the next one
gets the new model, none fails. A model that fails to load is refused: the old one keeps serving, the refusal
is counted (``ledrec_reloads_total{result="failed"}``) and logged once, and it is retried only when the source
changes again. The first load of a start must succeed (the server must not start on nothing).

Front-agnostic: the Python front asks :meth:`Manager.route` per request; the native front is handed the
routing table by ``on_change`` after every swap.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ledrec.io import ArtifactError
from ledrec.serve.metrics import Metrics
from ledrec.serve.retriever import RequestError, clip
from ledrec.serve.source import Source, signature

log = logging.getLogger(__name__)


class Servable(Protocol):
    """What the manager serves: a :class:`~ledrec.serve.retriever.Retriever` (Python front) or a
    :class:`~ledrec.serve.native.NativeModel` (native front)."""

    version: str
    source: str
    cache_events: dict[str, str]

    def recommend(
        self, partition: str, item_ids: list[str], k: int, exclude_seen: bool = ..., allowed_item_ids: Any = ...
    ) -> Any: ...

    def similar(self, partition: str, item_id: str, k: int) -> Any: ...


class Holder:
    """One catalogue's served model; ``current`` is swapped in one assignment (atomic in CPython)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.current: Any = None
        self.loaded: tuple[Any, ...] | None = None  # signature of what current was loaded from
        self.failed: tuple[Any, ...] | None = None  # signature of the last refused load

    def changed(self) -> bool:
        """Whether the source differs from both the served model's and the last refused one."""
        now = signature(self.target)
        return now != self.loaded and now != self.failed


class Manager:
    def __init__(
        self,
        source: Source,
        load: Callable[[Path], Servable],
        metrics: Metrics,
        on_change: Callable[[Manager], None] | None = None,
    ) -> None:
        self.source, self.load, self.metrics, self.on_change = source, load, metrics, on_change
        self.holders: dict[str, Holder] = {}
        self._roster: tuple[Any, ...] | None = None
        self._lock = threading.Lock()  # one load at a time

    # ------------------------------------------------------------------ loading
    def start(self) -> None:
        """The first load: every catalogue that has a model must load (ArtifactError otherwise), and one must."""
        self._discover()
        present = {name: h for name, h in self.holders.items() if h.target.exists() or not self.source.routed}
        if not present:
            raise ArtifactError(f"{self.source.path}: no catalogue has a published version yet")
        for holder in present.values():
            self._load(holder, first=True)

    def poll(self, everything: bool = False) -> None:
        """Load what changed (everything with ``everything``: SIGHUP); new catalogues of a published root too."""
        for holder in self._discover():
            if holder.target.exists():
                self._load(holder)
        for holder in list(self.holders.values()):
            if self.source.routed and not holder.target.exists():
                continue  # a catalogue registered before its first version
            if everything or holder.changed():
                self._load(holder)

    def _discover(self) -> list[Holder]:
        """Holders for catalogues the source has and the manager not yet (a published root's new ones)."""
        roster = self.source.roster()
        if self.holders and roster == self._roster:
            return []
        try:
            targets = self.source.targets()
        except ArtifactError as exc:
            if not self.holders:
                raise
            log.error("%s: %s; serving the catalogues known", self.source.path, exc)
            return []
        self._roster = roster
        fresh = []
        for name, target in targets.items():
            if name not in self.holders:
                self.holders[name] = Holder(target)
                fresh.append(self.holders[name])
        return fresh

    def _load(self, holder: Holder, first: bool = False) -> bool:
        with self._lock:
            seen = signature(holder.target)
            try:
                fresh = self.load(Path(seen[0]))  # the resolved path: errors name real files
                if holder.current is not None and holder.current.source == "export" and fresh.source == "run":
                    raise ArtifactError(
                        f"{holder.target}: the served model came from a serving export, this target is a run "
                        "directory without one ('serving/'); refusing it (run 'ledrec export')"
                    )
            except Exception as exc:
                if first:
                    raise
                holder.failed = seen
                self.metrics.reloads.labels("failed").inc()
                detail = str(exc) if isinstance(exc, ArtifactError) else f"{type(exc).__name__}: {exc}"
                log.error("reload refused, still serving %s: %s", holder.current.version, detail)
                fresh = None
            if fresh is None:  # (outside the except block: its traceback held the refused arrays)
                settle_heap()  # hand the refused load's memory back too (chaos: +300 MB per 16 refusals)
                return False
            previous = holder.current.version if holder.current is not None else None
            holder.current, holder.loaded, holder.failed = fresh, seen, None
            self.metrics.now_serving(fresh, previous)
            if self.on_change is not None:
                self.on_change(self)
            del fresh
            settle_heap()  # (the old model is unreferenced now, but for requests still finishing on it)
            if not first:
                self.metrics.reloads.labels("ok").inc()
            log.info("serving model %s from %s (%s)", holder.current.version, seen[0], holder.current.source)
            return True

    # ------------------------------------------------------------------ answering
    def route(self, partition: str) -> Any:
        """The model that answers ``partition`` (None: not loaded yet); RequestError for an unknown one."""
        if not self.source.routed:
            return self.holders[""].current
        holder = self.holders.get(partition)
        if holder is None and not partition and len(self.holders) == 1:  # one catalogue: need not be named
            holder = next(iter(self.holders.values()))
        if holder is None:
            raise RequestError(f"unknown partition {clip(partition)}; this server has {len(self.holders)} catalogues")
        return holder.current

    def served(self) -> dict[str, Any]:
        """Catalogue → its model (None: registered, not loaded)."""
        return {name: h.current for name, h in self.holders.items()}

    def versions(self) -> str | dict[str, str]:
        """The model version (one model), or catalogue → version."""
        if not self.source.routed:
            return self.holders[""].current.version
        return {name: h.current.version for name, h in sorted(self.holders.items()) if h.current is not None}


def settle_heap() -> None:
    """After a (re)load: collect, hand freed memory back to the OS, then move what is alive now (the model:
    a million-id lookup table is millions of objects) out of the cyclic collector's reach, so that no request
    waits for a full collection to walk it. Without the trim, glibc kept the replaced models' memory: four
    reloads of the Gowalla export grew one process from 396 to 641 MB (one model alive; 386 MB after trim)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    gc.freeze()
