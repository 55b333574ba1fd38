"""Recommendations for every user of an event table at once (``ledrec recommend``): implicit's
``recommend_all``, RecBole's full-sort export, for e-mail campaigns, precomputed banners, offline checks.

The rules are the service's: a user's history is their distinct known items (unknown ids ignored), the
answer comes from the user's catalogue only (the event table's partition column; a published root routes
each catalogue to its own model), the history's items are excluded unless ``exclude_seen=False``, and a
user with no known item gets the catalogue's highest-bias items (cold start). Users are scored in chunks by
the service's own retriever (:meth:`Retriever.recommend_many`: its index — the cached hnswlib graph of a
large catalogue, exact scoring of a small one — all queries of a chunk searched together), or exactly
(``exact=True``); a graph search is deterministic, so the output is the same on every engine and run.

Memory: the selected columns of the event table as integer codes and one chunk of scores at a time; the
output is written chunk by chunk. On Spark (``engine="spark"``) the model's arrays are broadcast once and
each partition of users is scored by the same function (:func:`recommend_rows`) in ``mapPartitions``.

Item metadata (``items=``: a table :func:`ledrec.data.items.read_items` reads — titles, categories, prices)
is joined onto each chunk's rows on ``item`` by the local engine, so the file can be read by a person or a
mail template as it is; the file is read and checked before any model is loaded.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp
from tqdm.auto import tqdm

from ledrec.data.interactions import DataError
from ledrec.data.items import ItemTable, read_items
from ledrec.data.stream import EventSource
from ledrec.errors import ConfigError
from ledrec.export import publish
from ledrec.export.mips import ServingModel
from ledrec.serve.loading import load_retriever
from ledrec.serve.retriever import Retriever, RetrieverConfig

# the graph's search effort for batch work: at 330k items (docs/pipeline.md) recall@20 against exact scoring
# is .879 at the service's ef 100, .986 at 200 (6,257 users/s), .997 at 400 (3,344 users/s); a batch job can
# afford the second
BATCH_EF = 200
SCHEMA = pa.schema([("user", pa.string()), ("rank", pa.int32()), ("item", pa.string()), ("score", pa.float32())])


def retrievers_of(
    path: str | os.PathLike[str], config: RetrieverConfig | None = None, ef: int | None = None
) -> dict[str, Retriever]:
    """Catalogue → the retriever the service would answer it with (validated, self-checked, its cached
    graph, searched with effort ``ef`` when given): every catalogue of a run directory or export, or each
    catalogue's current version of a published root (``ledrec pipeline``)."""
    config = config or RetrieverConfig()
    if publish.is_published(path):
        live = {name: folder / publish.CURRENT for name, folder in publish.catalogues(path).items()}
        found = {name: load_retriever(p, config) for name, p in live.items() if p.exists()}
        if not found:
            raise DataError(f"{path}: no catalogue has a published version yet")
    else:
        retriever = load_retriever(path, config)
        found = dict.fromkeys(retriever.partitions, retriever)
    for retriever in found.values():
        for index in retriever.indexes.values():
            if ef is not None:
                index.set_ef(ef)
    return found


def recommend_rows(
    retriever: Retriever,
    partition: str,
    users: np.ndarray,
    histories: sp.csr_matrix,
    k: int,
    exclude_seen: bool = True,
) -> pa.Table:
    """(user, rank, item, score) rows, ``k`` per user (fewer when the catalogue is smaller), for
    ``histories`` (n, I) in the model's item indices: the one function both engines score with."""
    items, scores = retriever.recommend_many(partition, histories, k, exclude_seen)
    found = items >= 0
    per_user = found.sum(axis=1)
    return pa.table(
        {
            "user": pa.array(np.repeat(users.astype(str), per_user)),
            "rank": pa.array(np.nonzero(found)[1].astype(np.int32) + 1),
            "item": pa.array(retriever.model.item_ids[items[found]]),
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
    exact: bool = False,
    ef: int = BATCH_EF,
    progress: bool = True,
    items: str | os.PathLike[str] | ItemTable | None = None,
) -> dict[str, Any]:
    """Write ``out`` (Parquet: user, rank, item, score, and partition when there is more than one
    catalogue) for every user of the event table ``histories``; returns counts and throughput. ``exact``:
    score every item of the catalogue instead of searching the service's graph; ``ef``: the graph's search
    effort; ``items``: an item table (or its file) whose columns are joined on ``item`` (nulls for items it
    does not hold; a column named like an output column is refused)."""
    start = time.perf_counter()
    meta = items if isinstance(items, ItemTable) or items is None else read_items(items)
    retrievers = retrievers_of(model_path, _config(exact), ef)
    source = EventSource.open(histories, need_time=False)
    tasks = list(_catalogues_to_score(retrievers, source, partition))
    tmp = Path(out).with_name(f".{Path(out).name}.tmp")
    schema = SCHEMA.append(pa.field("partition", pa.string())) if len(tasks) > 1 else SCHEMA
    if meta is not None:
        schema = meta.join(schema.empty_table()).schema
    summary: dict[str, Any] = {"out": out, "k": k, "exact": exact, "users": 0, "rows": 0, "unknown_items": 0}
    summary |= {"cold_start": 0, "catalogues": {}}
    if meta is not None:
        summary |= {"items": meta.source, "items_without_metadata": 0}
    load_s = time.perf_counter() - start
    with pq.ParquetWriter(tmp, schema) as writer:
        for name, retriever in tasks:
            users, matrix, unknown = _histories(source, retriever.model, name if source.has_partition else None)
            summary["catalogues"][name] = {"users": len(users), "items": len(retriever.partitions[name])}
            summary["unknown_items"] += unknown
            summary["cold_start"] += int((np.diff(matrix.indptr) == 0).sum())
            if meta is not None:
                held = meta.index_of(retriever.model.item_ids[retriever.partitions[name]])
                summary["items_without_metadata"] += int((held < 0).sum())
            label = f"recommend {name}".strip()
            with tqdm(total=len(users), desc=label, unit="user", disable=not progress) as bar:
                for lo in range(0, len(users), chunk_users):
                    hi = min(lo + chunk_users, len(users))
                    rows = recommend_rows(retriever, name, users[lo:hi], matrix[lo:hi], k, exclude_seen)
                    if len(tasks) > 1:
                        rows = rows.append_column("partition", pa.array([name] * rows.num_rows, pa.string()))
                    if meta is not None:
                        rows = meta.join(rows)
                    writer.write_table(rows)
                    summary["rows"] += rows.num_rows
                    bar.update(hi - lo)
            summary["users"] += len(users)
    os.replace(tmp, out)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    summary["load_s"] = round(load_s, 3)
    summary["users_per_s"] = round(summary["users"] / max(summary["seconds"] - load_s, 1e-9), 1)
    return summary


def similar(
    model_path: str | os.PathLike[str],
    item_ids: Sequence[str] = (),
    k: int = 10,
    partition: str | None = None,
    items: str | os.PathLike[str] | ItemTable | None = None,
    titles: Sequence[str] = (),
) -> dict[str, Any]:
    """``ledrec similar``: the ``k`` items most alike to each of ``item_ids`` (and to the best match of each
    of ``titles`` in the item table, the one the model ranks highest by bias), answered as the service's
    Similar call answers it, from ``partition`` or else from each catalogue that holds the item; with the
    item table's title, category, … beside every id when ``items`` is given."""
    meta = items if isinstance(items, ItemTable) or items is None else read_items(items)
    if titles and meta is None:
        raise ConfigError("--title needs --items: an item table with titles to find the item by")
    retrievers = retrievers_of(model_path)
    if partition is not None and partition not in retrievers:
        raise DataError(f"--partition {partition!r}: {model_path} serves {', '.join(sorted(retrievers)) or 'none'}")
    model = next(iter(retrievers.values())).model
    asked = [str(i) for i in item_ids]
    if titles:  # the model's items only, the one it ranks highest first ("toy story": the 1995 film)
        rows = model.indices(meta.ids.astype(str))  # type: ignore[union-attr]
        bias = np.where(rows >= 0, model.item_bias[np.maximum(rows, 0)], -np.inf)
        for text in titles:
            found = meta.search(text, limit=1, popularity=bias)  # type: ignore[union-attr]
            if not found or rows[meta.index_of(found)[0]] < 0:  # type: ignore[union-attr]
                raise DataError(f"--title {text!r}: no item of the model has a title with every word of it")
            asked.append(found[0])
    if not asked:
        raise ConfigError("name an item: --item ID or --title WORDS (with --items)")
    answers = []
    for item in asked:
        index = {name: int(r.model.indices(np.array([item]))[0]) for name, r in retrievers.items()}
        known = [name for name in retrievers if index[name] >= 0 and partition in (None, name)]
        if not known:
            where = f"partition {partition!r} of " if partition is not None else ""
            raise DataError(f"--item {item!r}: {where}{model_path} does not know this item")
        holding = [name for name in known if index[name] in set(retrievers[name].partitions[name].tolist())]
        for name in holding or known:
            found = retrievers[name].similar(name, item, k)
            rows = [{"item": i, "score": round(float(s), 6)} for i, s in zip(found.item_ids, found.scores, strict=True)]
            answer: dict[str, Any] = {"item": item, "partition": name, "similar": rows}
            if meta is not None:
                answer["title"] = meta.title(item)
                for row in rows:
                    row |= {key: value for key, value in meta.row(row["item"]).items() if key != "id"}
            answers.append(answer)
    return {"model": str(model_path), "k": k, "answers": answers}


def _config(exact: bool) -> RetrieverConfig:
    """The service's retrieval settings; ``exact``: every catalogue searched exactly."""
    return RetrieverConfig(exact_below=2**62) if exact else RetrieverConfig()


def _catalogues_to_score(
    retrievers: dict[str, Retriever], source: EventSource, partition: str | None
) -> Iterator[tuple[str, Retriever]]:
    if partition is not None:
        if partition not in retrievers:
            raise DataError(f"--partition {partition!r}: the model has {sorted(retrievers)[:10]}")
        yield partition, retrievers[partition]
        return
    if not source.has_partition:
        if len(retrievers) > 1:
            raise DataError(
                f"{source.path} has no partition column and the model serves {len(retrievers)} catalogues; "
                "say which with --partition"
            )
        yield next(iter(retrievers.items()))
        return
    present = set(source.catalogues())
    missing = sorted(present - set(retrievers))
    if missing:
        raise DataError(f"{source.path}: partition(s) {missing[:5]} are not catalogues of the model")
    yield from ((name, retrievers[name]) for name in sorted(present))


def _histories(
    source: EventSource, model: ServingModel, partition: str | None
) -> tuple[np.ndarray, sp.csr_matrix, int]:
    """Users (original ids, sorted) and their distinct known items as a (users, model items) 0/1 matrix;
    the number of events whose item the model does not know."""
    events = source.read(partition or "", columns=("user", "item"))
    columns = model.indices(events.items.ids)[events.item]  # event → model item, -1 unknown
    known = columns >= 0
    return events.users.ids, _matrix(events.user[known], columns[known], events.n_users, model), int((~known).sum())


def _matrix(users: np.ndarray, items: np.ndarray, n_users: int, model: ServingModel) -> sp.csr_matrix:
    """Distinct (user, item) pairs as a 0/1 matrix: a repeated event counts once, as in the service."""
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, len(model.item_ids)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


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
    exact: bool = False,
    ef: int = BATCH_EF,
    master: str = "local[2]",
    driver_memory: str = "4g",
) -> dict[str, Any]:
    """The same output on Spark, as a folder of Parquet part files: the event table read by Spark, each
    user's distinct items collected by a ``groupBy``, the models' arrays broadcast once and their graphs
    shipped once (``addFile``), every partition of users scored by :func:`recommend_rows` in
    ``mapPartitions`` with the service's retriever rebuilt once per worker process."""
    import tempfile

    from pyspark.sql import functions as F

    from ledrec.pretrain.spark import spark_session

    start = time.perf_counter()
    config = _config(exact)
    retrievers = retrievers_of(model_path, config, ef)
    source = EventSource.open(histories, need_time=False)
    tasks = dict(_catalogues_to_score(retrievers, source, partition))
    by_partition = source.has_partition and len(tasks) > 1
    spark = spark_session(master, driver_memory=driver_memory, app="ledrec-recommend")
    try:
        with tempfile.TemporaryDirectory(prefix="ledrec-graphs-") as graphs:
            shipped = spark.sparkContext.broadcast(_ship(tasks, config, ef, Path(graphs), spark.sparkContext))
            reader = spark.read.option("header", True) if source.format == "csv" else spark.read
            events = (reader.csv if source.format == "csv" else reader.parquet)(*source.files)
            key = (
                F.col(source.columns["partition"]).cast("string") if source.has_partition else F.lit(next(iter(tasks)))
            )
            events = events.select(
                key.alias("partition"),
                F.col(source.columns["user"]).cast("string").alias("user"),
                F.col(source.columns["item"]).cast("string").alias("item"),
            ).where(F.col("partition").isin(list(tasks)))
            grouped = events.groupBy("partition", "user").agg(F.collect_set("item").alias("items"))

            def score(rows: Iterator[Any]) -> Iterator[tuple[Any, ...]]:
                batch: list[Any] = []
                for row in rows:
                    batch.append(row)
                    if len(batch) == chunk_users:
                        yield from _score_on_worker(batch, shipped.value, k, exclude_seen)
                        batch = []
                yield from _score_on_worker(batch, shipped.value, k, exclude_seen)

            schema = "user string, rank int, item string, score float, partition string"
            result = grouped.rdd.mapPartitions(score).toDF(schema)
            if not by_partition:
                result = result.drop("partition")
            result.write.mode("error").parquet(out)
            users = grouped.count()
    finally:
        spark.stop()
    seconds = time.perf_counter() - start
    return {"out": out, "k": k, "exact": exact, "users": users, "seconds": round(seconds, 3),
            "users_per_s": round(users / seconds, 1)}  # fmt: skip


def _ship(tasks: dict[str, Retriever], config: RetrieverConfig, ef: int, tmp: Path, context: Any) -> dict[str, Any]:
    """What each worker needs per catalogue: the model's arrays (broadcast) and, for a graph index, its
    cached graph files in a folder of their own (sent by ``addFile``: no shared file system needed)."""
    out = {}
    for k, (name, retriever) in enumerate(tasks.items()):
        folder = tmp / f"graphs-{k}"
        folder.mkdir()
        cache = retriever.config.cache_dir
        if cache and Path(cache).is_dir():
            for path in Path(cache).glob("hnsw-*"):
                shutil.copy2(path, folder / path.name)
        context.addFile(str(folder), recursive=True)
        model = retriever.model
        out[name] = {"arrays": model.arrays(), "reduce": model.reduce, "tied": model.tied, "graphs": folder.name,
                     "config": config, "ef": ef}  # fmt: skip
    return out


_WORKER: dict[tuple[str, str], Retriever] = {}  # per Python worker process: built once, reused by its tasks


def _score_on_worker(rows: list[Any], shipped: dict[str, Any], k: int, exclude_seen: bool) -> Iterator[tuple[Any, ...]]:
    """Score a batch of (partition, user, items) rows with the shipped retrievers."""
    from pyspark import SparkFiles

    by_name: dict[str, list[Any]] = {}
    for row in rows:
        by_name.setdefault(row["partition"], []).append(row)
    for name, group in by_name.items():
        part = shipped[name]
        key = (name, part["graphs"])
        if key not in _WORKER:
            model = ServingModel.from_arrays(part["arrays"], part["reduce"], part["tied"], source="broadcast model")
            config = replace(part["config"], cache_dir=SparkFiles.get(part["graphs"]))
            _WORKER[key] = Retriever(model, config)
            for index in _WORKER[key].indexes.values():
                index.set_ef(part["ef"])
        retriever = _WORKER[key]
        model = retriever.model
        users = np.array([r["user"] for r in group])
        columns = [model.indices(np.asarray(r["items"], dtype=str)) for r in group]
        owner = np.repeat(np.arange(len(group)), [len(c) for c in columns])
        flat = np.concatenate(columns) if columns else np.empty(0, np.int64)
        matrix = _matrix(owner[flat >= 0], flat[flat >= 0], len(group), model)
        order = np.argsort(users, kind="stable")
        table = recommend_rows(retriever, name, users[order], matrix[order], k, exclude_seen)
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
    unless ``overwrite`` (then replaced only once the new output is complete, for the local engine). Item
    metadata (``items``) is joined by the local engine only: refused with Spark before anything starts."""
    if engine == "spark" and options.get("items") is not None:
        raise ConfigError(
            "--items works with --engine local only; join the Spark output's item column with the item table "
            "yourself (ledrec.data.items.read_items(...).join(table))"
        )
    path = Path(out)
    if path.exists() and not overwrite:
        raise DataError(f"--out {out}: exists; choose another or add --overwrite")
    if engine == "spark":
        options.pop("progress", None)
        options.pop("items", None)
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return recommend_on_spark(model_path, histories, out, master=master, **options)
    if path.is_dir():
        shutil.rmtree(path)
    return recommend(model_path, histories, out, **options)
