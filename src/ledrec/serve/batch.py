"""Recommendations for every user of an event table at once (``ledrec recommend``): implicit's
``recommend_all``, RecBole's full-sort export, for e-mail campaigns, precomputed banners, offline checks.

The rules are the service's: a user's history is their distinct known items (unknown ids ignored), the
answer comes from the user's catalogue only (the event table's partition column; a published root routes
each catalogue to its own model), the history's items are excluded unless ``exclude_seen=False``, and a
user with no known item gets the catalogue's highest-bias items (cold start). Scoring is exact
(:meth:`ServingModel.top_k`: matrix products over chunks of users), so the output is the same on every
engine and every run.

Memory: the selected columns of the event table as integer codes and one chunk of scores at a time; the
output is written chunk by chunk. On Spark (``engine="spark"``) the model's arrays are broadcast once and
each partition of users is scored by the same function (:func:`recommend_rows`) in ``mapPartitions``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp
from tqdm.auto import tqdm

from ledrec.data.interactions import DataError
from ledrec.data.stream import EventSource
from ledrec.export import publish
from ledrec.export.loading import load_serving_model
from ledrec.export.mips import ServingModel

SCHEMA = pa.schema([("user", pa.string()), ("rank", pa.int32()), ("item", pa.string()), ("score", pa.float32())])


def models_of(path: str | os.PathLike[str]) -> dict[str, ServingModel]:
    """Catalogue → model: every catalogue of a run directory or export (one model), or each catalogue's
    current version of a published root (``ledrec pipeline``)."""
    if publish.is_published(path):
        live = {name: folder / publish.CURRENT for name, folder in publish.catalogues(path).items()}
        models = {name: ServingModel.load(p) for name, p in live.items() if p.exists()}
        if not models:
            raise DataError(f"{path}: no catalogue has a published version yet")
        return models
    model = load_serving_model(path)
    return dict.fromkeys(model.partitions, model)


def recommend_rows(
    model: ServingModel,
    partition: str,
    users: np.ndarray,
    histories: sp.csr_matrix,
    k: int,
    exclude_seen: bool = True,
) -> pa.Table:
    """(user, rank, item, score) rows, ``k`` per user (fewer when the catalogue is smaller), for
    ``histories`` (n, I) in the model's item indices: the one function both engines score with."""
    items, scores = model.top_k(histories, k, partition, exclude=None if exclude_seen else _empty(histories))
    found = items >= 0
    per_user = found.sum(axis=1)
    return pa.table(
        {
            "user": pa.array(np.repeat(users.astype(str), per_user)),
            "rank": pa.array(np.nonzero(found)[1].astype(np.int32) + 1),
            "item": pa.array(model.item_ids[items[found]]),
            "score": pa.array(scores[found].astype(np.float32)),
        },
        schema=SCHEMA,
    )


def recommend(
    model_path: str,
    histories: str,
    out: str,
    *,
    k: int = 20,
    exclude_seen: bool = True,
    partition: str | None = None,
    chunk_users: int = 4096,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out`` (Parquet: user, rank, item, score, and partition when there is more than one
    catalogue) for every user of the event table ``histories``; returns counts and throughput."""
    start = time.perf_counter()
    models = models_of(model_path)
    source = EventSource.open(histories, need_time=False)
    tasks = list(_catalogues_to_score(models, source, partition))
    tmp = Path(out).with_name(f".{Path(out).name}.tmp")
    schema = SCHEMA.append(pa.field("partition", pa.string())) if len(tasks) > 1 else SCHEMA
    summary: dict[str, Any] = {"out": out, "k": k, "users": 0, "rows": 0, "unknown_items": 0, "cold_start": 0}
    summary["catalogues"] = {}
    with pq.ParquetWriter(tmp, schema) as writer:
        for name, model in tasks:
            users, matrix, unknown = _histories(source, model, name if source.has_partition else None)
            summary["catalogues"][name] = {"users": len(users), "items": len(model.partitions[name])}
            summary["unknown_items"] += unknown
            summary["cold_start"] += int((np.diff(matrix.indptr) == 0).sum())
            with tqdm(
                total=len(users), desc=f"recommend {name or ''}".strip(), unit="user", disable=not progress
            ) as bar:
                for lo in range(0, len(users), chunk_users):
                    hi = min(lo + chunk_users, len(users))
                    rows = recommend_rows(model, name, users[lo:hi], matrix[lo:hi], k, exclude_seen)
                    if len(tasks) > 1:
                        rows = rows.append_column("partition", pa.array([name] * rows.num_rows, pa.string()))
                    writer.write_table(rows)
                    summary["rows"] += rows.num_rows
                    bar.update(hi - lo)
            summary["users"] += len(users)
    os.replace(tmp, out)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    summary["users_per_s"] = round(summary["users"] / max(summary["seconds"], 1e-9), 1)
    return summary


def _catalogues_to_score(
    models: dict[str, ServingModel], source: EventSource, partition: str | None
) -> Iterator[tuple[str, ServingModel]]:
    if partition is not None:
        if partition not in models:
            raise DataError(f"--partition {partition!r}: the model has {sorted(models)[:10]}")
        yield partition, models[partition]
        return
    if not source.has_partition:
        if len(models) > 1:
            raise DataError(
                f"{source.path} has no partition column and the model serves {len(models)} catalogues; "
                "say which with --partition"
            )
        yield next(iter(models.items()))
        return
    present = set(source.catalogues())
    missing = sorted(present - set(models))
    if missing:
        raise DataError(f"{source.path}: partition(s) {missing[:5]} are not catalogues of the model")
    yield from ((name, models[name]) for name in sorted(present))


def _histories(
    source: EventSource, model: ServingModel, partition: str | None
) -> tuple[np.ndarray, sp.csr_matrix, int]:
    """Users (original ids, sorted) and their distinct known items as a (users, model items) 0/1 matrix;
    the number of events whose item the model does not know."""
    events = source.read(partition or "", columns=("user", "item"))
    columns = model.indices(events.items.ids)[events.item]  # event → model item, -1 unknown
    known = columns >= 0
    matrix = sp.csr_matrix(
        (np.ones(int(known.sum()), np.float32), (events.user[known], columns[known])),
        shape=(events.n_users, len(model.item_ids)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # a repeated event counts once, as in the service
    return events.users.ids, matrix, int((~known).sum())


def _empty(histories: sp.csr_matrix) -> sp.csr_matrix:
    return sp.csr_matrix(histories.shape, dtype=np.float32)


# ------------------------------------------------------------------------------------------ Spark
def recommend_on_spark(
    model_path: str,
    histories: str,
    out: str,
    *,
    k: int = 20,
    exclude_seen: bool = True,
    partition: str | None = None,
    chunk_users: int = 4096,
    master: str = "local[2]",
    driver_memory: str = "4g",
) -> dict[str, Any]:
    """The same output on Spark, as a folder of Parquet part files: the event table read by Spark, each
    user's distinct items collected by a ``groupBy``, the models' arrays broadcast once, and every partition
    of users scored by :func:`recommend_rows` in ``mapPartitions``."""
    from pyspark.sql import functions as F

    from ledrec.pretrain.spark import spark_session

    start = time.perf_counter()
    models = models_of(model_path)
    source = EventSource.open(histories, need_time=False)
    tasks = dict(_catalogues_to_score(models, source, partition))
    by_partition = source.has_partition and len(tasks) > 1
    spark = spark_session(master, driver_memory=driver_memory, app="ledrec-recommend")
    try:
        reader = spark.read.option("header", True) if source.format == "csv" else spark.read
        events = (reader.csv if source.format == "csv" else reader.parquet)(*source.files)
        key = F.col(source.columns["partition"]).cast("string") if source.has_partition else F.lit(next(iter(tasks)))
        events = events.select(
            key.alias("partition"),
            F.col(source.columns["user"]).cast("string").alias("user"),
            F.col(source.columns["item"]).cast("string").alias("item"),
        ).where(F.col("partition").isin(list(tasks)))
        grouped = events.groupBy("partition", "user").agg(F.collect_set("item").alias("items"))
        shipped = spark.sparkContext.broadcast(
            {name: (m.arrays(), m.reduce, m.tied) for name, m in tasks.items()}  # once, to every executor
        )

        def score(rows: Iterator[Any]) -> Iterator[tuple[Any, ...]]:
            cache: dict[str, ServingModel] = {}
            batch: list[Any] = []
            for row in rows:
                batch.append(row)
                if len(batch) == chunk_users:
                    yield from _score_on_worker(batch, shipped.value, cache, k, exclude_seen)
                    batch = []
            yield from _score_on_worker(batch, shipped.value, cache, k, exclude_seen)

        schema = "user string, rank int, item string, score float, partition string"
        result = grouped.rdd.mapPartitions(score).toDF(schema)
        if not by_partition:
            result = result.drop("partition")
        result.write.mode("error").parquet(out)
        users = grouped.count()
    finally:
        spark.stop()
    seconds = time.perf_counter() - start
    return {"out": out, "k": k, "users": users, "seconds": round(seconds, 3), "users_per_s": round(users / seconds, 1)}


def _score_on_worker(
    rows: list[Any], shipped: dict[str, Any], cache: dict[str, ServingModel], k: int, exclude_seen: bool
) -> Iterator[tuple[Any, ...]]:
    """Score a batch of (partition, user, items) rows with the broadcast models (rebuilt once per worker)."""
    by_name: dict[str, list[Any]] = {}
    for row in rows:
        by_name.setdefault(row["partition"], []).append(row)
    for name, group in by_name.items():
        if name not in cache:
            arrays, reduce, tied = shipped[name]
            cache[name] = ServingModel.from_arrays(arrays, reduce, tied, source="broadcast model")
        model = cache[name]
        users = np.array([r["user"] for r in group])
        columns = [model.indices(np.asarray(r["items"], dtype=str)) for r in group]
        columns = [np.unique(c[c >= 0]) for c in columns]
        indptr = np.concatenate([[0], np.cumsum([len(c) for c in columns])])
        flat = np.concatenate(columns) if columns else np.empty(0, np.int64)
        matrix = sp.csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(group), len(model.item_ids)))
        order = np.argsort(users, kind="stable")
        table = recommend_rows(model, name, users[order], matrix[order], k, exclude_seen)
        for user, rank, item, score in zip(*(table.column(c).to_pylist() for c in SCHEMA.names), strict=True):
            yield (user, rank, item, score, name)


def run_recommend(
    model_path: str,
    histories: str,
    out: str,
    *,
    engine: str = "local",
    master: str = "local[2]",
    overwrite: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """``ledrec recommend``: :func:`recommend` or :func:`recommend_on_spark`; an existing ``out`` is refused
    unless ``overwrite`` (then replaced only once the new output is complete, for the local engine)."""
    path = Path(out)
    if path.exists() and not overwrite:
        raise DataError(f"--out {out}: exists; choose another or add --overwrite")
    if engine == "spark":
        options.pop("progress", None)
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return recommend_on_spark(model_path, histories, out, master=master, **options)
    if path.is_dir():
        shutil.rmtree(path)
    return recommend(model_path, histories, out, **options)
