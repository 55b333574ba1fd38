"""The native front's models, on the Python side: a :class:`~ledrec.serve.retriever.Retriever` that the
loader has validated — arrays checksummed and checked, graphs built or verified — becomes a C++ model of the
extension ``ledrec.serve._native`` (built by ``scripts/build_native.sh``), which is self-checked against exact
scoring before it may serve, like every model. One implementation of validation: this module hands over
exactly what Python verified (the arrays, and the graph written anew from the verified in-memory index), and
the C++ side only answers.

Where the extension is not built, :data:`WHY_NOT` says why and serving stays on the Python front.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ledrec.io import ArtifactError
from ledrec.serve.retriever import (
    NotServedError,
    Recommendation,
    RequestError,
    Retriever,
    SelfCheckError,
    Similar,
    UnknownItemError,
)

try:
    from ledrec.serve import _native  # type: ignore[attr-defined]

    WHY_NOT: str | None = None
except ImportError as exc:  # not built here (no gRPC C++), or built for another Python
    _native = None
    WHY_NOT = f"the native front is not built ({exc}); build it with: bash scripts/build_native.sh"

NATIVE_INDEXES = ("hnswlib", "exact")  # what the C++ side searches; faiss / usearch: --front python


def available() -> bool:
    return _native is not None


@dataclass
class NativeModel:
    """A model on the native front: the C++ model and what the control plane keeps of it (no arrays)."""

    model: Any  # _native.Model
    version: str
    source: str
    partitions: dict[str, int]  # catalogue → items
    cache_events: dict[str, str] = field(default_factory=dict)
    index_kinds: dict[str, str] = field(default_factory=dict)
    recalls: dict[str, float] = field(default_factory=dict)  # its self-check: recall@10 against exact scoring

    def recommend(
        self,
        partition: str,
        item_ids: list[str],
        k: int,
        exclude_seen: bool = True,
        allowed_item_ids: list[str] | None = None,
    ) -> Recommendation:
        """The C++ request path, called from Python (the self-check, the tests): :meth:`Retriever.recommend`'s
        contract and answers."""
        if isinstance(item_ids, str | bytes) or isinstance(allowed_item_ids, str | bytes):
            raise RequestError("item ids come as a list: a single string would be read as one id per character")
        allowed = None if allowed_item_ids is None else list(allowed_item_ids)
        try:
            ids, scores, unknown, cold, timings = self.model.recommend(
                partition, list(item_ids), int(k), bool(exclude_seen), allowed
            )
        except _native.RequestError as exc:
            raise RequestError(str(exc)) from None
        return Recommendation(ids, scores, unknown, cold, timings)

    def similar(self, partition: str, item_id: str, k: int) -> Similar:
        """The C++ Similar call, called from Python: :meth:`Retriever.similar`'s contract and answers."""
        if not isinstance(item_id, str):
            raise RequestError(f"item_id must be one id (a string), not {type(item_id).__name__}")
        try:
            ids, scores, timings = self.model.similar(partition, item_id, int(k))
        except _native.NotFoundError as exc:
            raise UnknownItemError(str(exc)) from None
        except _native.NotServedError as exc:
            raise NotServedError(str(exc)) from None
        except _native.RequestError as exc:
            raise RequestError(str(exc)) from None
        return Similar(ids, scores, timings)


def from_retriever(retriever: Retriever, scratch: str | os.PathLike[str] | None = None) -> NativeModel:
    """The native model of a validated retriever (its arrays, cold-start lists and graphs), not yet checked:
    :func:`load` self-checks it. Graphs go through a private temporary file written from the verified
    in-memory index (hnswlib reads files; ``scratch``: where, default /dev/shm when there is one)."""
    if _native is None:
        raise ArtifactError(WHY_NOT or "the native front is not built")
    model, config = retriever.model, retriever.config
    if config.index not in NATIVE_INDEXES:
        raise ArtifactError(f"the native front searches {' or '.join(NATIVE_INDEXES)}; --index {config.index} "
                            "needs --front python")  # fmt: skip
    query_map = None if model._identity_map else np.ascontiguousarray(model.query_map, dtype=np.float64)
    native = _native.Model(
        ids=model.item_ids.tolist(),
        encoder=np.ascontiguousarray(model.encoder_vectors, dtype=np.float32),
        query_map=query_map,
        mean=model.reduce == "mean",
        version=retriever.version,
        max_k=config.max_k,
        max_history=config.max_history,
        max_allowed=config.max_allowed,
    )
    where = scratch or ("/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None)
    kinds = {}
    with tempfile.TemporaryDirectory(prefix="ledrec-native-", dir=where) as tmp:
        for name, items in retriever.partitions.items():
            index = retriever.indexes[name]
            cold = retriever.cold[name]
            graph, form, ef = "", "ip", 0
            if index.kind == "hnswlib":
                graph = str(Path(tmp) / "graph.bin")
                index.save(graph)  # type: ignore[attr-defined]
                form, ef = index.form, int(index.ef_search)  # type: ignore[attr-defined]
            native.add_catalogue(
                name=name,
                items=np.asarray(items, dtype=np.int64),
                mips=index.vectors,
                cold=np.asarray(cold, dtype=np.int64),
                cold_scores=np.asarray(model.item_bias[cold], dtype=np.float32),
                graph_path=graph,
                form=form,
                ef_search=ef,
            )
            if graph:
                os.unlink(graph)
            kinds[name] = index.kind
        if config.similar:  # the Similar call's indexes, handed over the same way
            native.set_similarity(np.ascontiguousarray(model.similarity, dtype=np.float32))
            for name, index in retriever.similar_indexes.items():
                graph, ef = "", 0
                if index.kind == "hnswlib":
                    graph = str(Path(tmp) / "similar.bin")
                    index.save(graph)  # type: ignore[attr-defined]
                    ef = int(index.ef_search)  # type: ignore[attr-defined]
                native.add_similar(
                    name=name,
                    items=np.asarray(retriever.similar_items[name], dtype=np.int64),
                    rows=index.vectors,
                    graph_path=graph,
                    ef_search=ef,
                )
                if graph:
                    os.unlink(graph)
    return NativeModel(
        model=native,
        version=retriever.version,
        source=retriever.source,
        partitions={name: len(items) for name, items in retriever.partitions.items()},
        cache_events=dict(retriever.cache_events),
        index_kinds=kinds,
    )


def load(retriever: Retriever) -> NativeModel:
    """A validated retriever as a native model that has passed the self-check — its own answers, through the
    C++ request path, against exact scoring of the verified arrays (SelfCheckError otherwise)."""
    native = from_retriever(retriever)
    try:
        native.recalls = retriever.self_check(recommend=native.recommend, similar=native.similar)
    except SelfCheckError as exc:
        raise SelfCheckError(f"native front: {exc}") from None
    return native
