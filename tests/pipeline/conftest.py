"""A small time-stamped, two-country event log written one Parquet file per day, as a daily job sees it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledrec.data.synthetic import DAY, SyntheticConfig, generate

SMALL = SyntheticConfig(n_users=1500, n_items=300, n_topics=10, n_partitions=2, views_per_user=20, seed=3)


def write_days(folder: Path, days: np.ndarray | None = None) -> list[int]:
    """The log's events of ``days`` (default all) as folder/day=NNN.parquet; returns the days written."""
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
        pq.write_table(table, folder / f"day={int(d):03d}.parquet")
    return [int(d) for d in chosen]


@pytest.fixture(scope="session")
def all_days() -> np.ndarray:
    log = generate(SMALL)
    return np.unique(log.timestamp // DAY)
