"""A small time-stamped, two-country event log written one Parquet file per day, as a daily job sees it, and
the daily job's settings for it (a small LED; a deliberately worse one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledrec.data.synthetic import DAY, SyntheticConfig, generate
from ledrec.export import publish
from ledrec.export.mips import ServingModel
from ledrec.pipeline import config as pipeline_config

SMALL = SyntheticConfig(n_users=1500, n_items=300, n_topics=10, n_partitions=2, views_per_user=20, seed=3)


def write_days(folder: Path, days: np.ndarray | None = None, partition: bool = True) -> list[int]:
    """The log's events of ``days`` (default all) as folder/day=NNN.parquet; returns the days written.
    ``partition=False``: without the country column (a log of one catalogue)."""
    log = generate(SMALL)
    day = log.timestamp // DAY
    chosen = np.unique(day) if days is None else np.asarray(days)
    folder.mkdir(parents=True, exist_ok=True)
    for d in chosen:
        rows = day == d
        table = pa.table(
            {
                "user": log.users.ids[log.user[rows]],
                "item": log.items.ids[log.item[rows]],
                "event": np.asarray(log.feedback_types)[log.feedback[rows]],
                "timestamp": log.timestamp[rows],
                "country": log.partitions.ids[log.partition[rows]],
            }
        )
        if not partition:
            table = table.drop_columns(["country"])
        pq.write_table(table, folder / f"day={int(d):03d}.parquet")
    return [int(d) for d in chosen]


@pytest.fixture(scope="session")
def all_days() -> np.ndarray:
    log = generate(SMALL)
    return np.unique(log.timestamp // DAY)


LED = {"dim": 16, "epochs": 3, "batch_size": 256, "patience": 0}
# the log's holdouts (its last day) have 30-90 users per country: below the default min_holdout_users (100),
# on which the gate keeps every published model; the tests of the gate's margin decide on 20
GATE = {"holdout_users": 400, "min_holdout_users": 20}
# one candidate (the paper's production LED) where a test is not about the choice: each is trained once
ONE = {"variants": "project"}


def settings(events, out, **overrides):
    options = {"events": str(events), "out": str(out), **GATE, **ONE, **overrides}
    return pipeline_config.load(None, options, led=dict(LED))


def worse(events, out, work):
    """A deliberately worse model: P learned over frozen *random* vectors stays near popularity (docs/led.md,
    Figure 2), trained for one epoch; its own work folder, so nothing of the good runs is reused."""
    return pipeline_config.load(
        None,
        {"events": str(events), "out": str(out), **GATE, **ONE, "work_dir": str(work)},
        led={**LED, "init": "random", "epochs": 1},
    )


def publish_toy(root: Path, names: list[str]) -> None:
    """A published root without training: each catalogue's current version a random model over the log's
    items of that country (for what must fail, or be skipped, before a model is used)."""
    log = generate(SMALL)
    rng = np.random.default_rng(0)
    for name in names:
        ids = np.unique(log.items.ids[log.item[log.partitions.ids[log.partition] == name]])
        vectors = rng.normal(size=(len(ids), 4)).astype(np.float32)
        model = ServingModel(
            ids, vectors, vectors, rng.normal(size=len(ids)).astype(np.float32), np.eye(4, dtype=np.float32)
        )
        folder = publish.register(root, name)
        version = publish.new_version_name(model.version)
        model.save(folder / publish.VERSIONS / version)
        publish.switch(folder, version, {"action": "publish"})
