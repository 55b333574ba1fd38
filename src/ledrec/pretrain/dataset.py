"""Pre-training on a dataset as ``ledrec pretrain`` does it: which events (a protocol's training data, or
every event of some feedback types), in which order (by user, then time), on which engine."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.data.interactions import DataError
from ledrec.errors import ConfigError
from ledrec.pretrain.embeddings import ItemEmbeddings, PretrainConfig, pretrain

ENGINES = ("local", "spark")


def training_events(
    data: str,
    *,
    protocol: str | None = None,
    seed: int = 0,
    format: str | None = None,
    feedback: list[str] | None = None,
    protocol_options: dict[str, Any] | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """(binary user × item matrix, item ids, users, items) to pre-train on: the events as (user, item)
    index pairs sorted by user, then time (file order where there are no timestamps).

    With ``protocol``, the protocol's training data (``fit_test``: no held-out user's events, its split
    seeded by ``seed``); without, every event of the ``feedback`` types (all when None) of the dataset's
    ``all`` part, or of its ``train`` part for a fixed split."""
    from ledrec.data.load import load_dataset, load_prepared

    if protocol:
        prepared = load_prepared(
            data, protocol, seed=seed, format=format, feedback=feedback, protocol_options=protocol_options
        )
        X = prepared.fit_test
        users = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        return X, prepared.items.ids, users, X.indices.astype(np.int64)
    ds = load_dataset(data, format)
    events = (ds.parts["all"] if "all" in ds.parts else ds.parts["train"]).with_feedback(feedback)
    keys = (events.user,) if events.timestamp is None else (events.timestamp, events.user)
    order = np.lexsort(keys)  # by user, then time (stable: file order without timestamps)
    return events.to_csr(), events.items.ids, events.user[order], events.item[order]


def pretrain_dataset(
    data: str,
    config: PretrainConfig | None = None,
    *,
    protocol: str | None = None,
    format: str | None = None,
    feedback: list[str] | None = None,
    protocol_options: dict[str, Any] | None = None,
    engine: str = "local",
    master: str = "local[2]",
    driver_memory: str = "8g",
    progress: bool = True,
) -> ItemEmbeddings:
    """Item embeddings of a dataset (a path, a prepared folder or ``synthetic[:…]``, as ``--data`` takes).

    The events are :func:`training_events` (with ``protocol``: its training data only, split with
    ``config.seed``, so that a model fine-tuned on the same protocol never saw its held-out users). A
    ``config.window`` counts pairs within W positions of each time-ordered timeline, so it needs raw events
    (no ``protocol``). ``engine``: ``local`` (this machine, bounded memory) or ``spark`` (PySpark on
    ``master`` with ``driver_memory``; :func:`ledrec.pretrain.spark.spark_pretrain_events`)."""
    config = config or PretrainConfig()
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, not {engine!r}")
    if protocol and config.window:
        raise DataError("--window needs time-ordered raw events: leave out --protocol")
    X, item_ids, users, items = training_events(
        data, protocol=protocol, seed=config.seed, format=format, feedback=feedback, protocol_options=protocol_options
    )
    if engine == "spark":
        from ledrec.pretrain.spark import spark_pretrain_events

        return spark_pretrain_events(
            users, items, X.shape[1], config, item_ids, master=master, driver_memory=driver_memory
        )
    if config.window:
        return pretrain(config=config, events=(users, items), n_items=X.shape[1], item_ids=item_ids, progress=progress)
    return pretrain(X, config, item_ids=item_ids, progress=progress)
