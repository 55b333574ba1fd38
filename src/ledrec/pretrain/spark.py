"""Pre-training on Spark: the same co-occurrence → PMI → randomized SVD as the single-machine path, for
histories and catalogues that outgrow one machine (seed paper §6.1, §6.3; Criteo's Spark-RSVD).

Data flow, all on Spark's own primitives:

1. **Timelines** from Parquet (columns ``user``, ``item`` as integer indices, optional ``timestamp``).
2. **Co-occurrence**: a self-join of the distinct (user, item) pairs on ``user`` (all pairs), or of the
   time-ordered events on ``user`` with |position difference| ≤ W (window); each pair counts once per
   timeline; ``groupBy(i, j).count()``.
3. **PMI** with context smoothing α, shift and the positive cut, min-count filter — the same formulas as
   :mod:`ledrec.pretrain.pmi` (item totals by a ``groupBy``, the Σ_k c_k^α normaliser as one scalar).
4. **Randomized SVD** (Halko et al. 2011) of the row-distributed sparse matrix A (an RDD of sparse rows):
   Y = A·Ω with Ω broadcast; power iterations Y ← A·(Aᵀ·Q); orthonormalisation by tall-skinny QR
   (``pyspark.mllib`` ``RowMatrix.tallSkinnyQR`` gives R, then Q = Y·R⁻¹, twice for orthogonality);
   B = Qᵀ·A is never formed: its Gram matrix B·Bᵀ = (AᵀQ)ᵀ(AᵀQ) comes from ``computeGramianMatrix`` and its
   eigendecomposition on the driver (k × k) gives B's left singular vectors Ũ and values σ; U = Q·Ũ.

The result is the same :class:`ItemEmbeddings` artifact, so every later stage takes either.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import numpy as np

from ledrec.errors import ConfigError
from ledrec.pretrain.embeddings import ItemEmbeddings, PretrainConfig

log = logging.getLogger(__name__)


def spark_session(master: str = "local[2]", driver_memory: str = "8g", app: str = "ledrec-pretrain") -> Any:
    """A Spark session for pre-training (quiet logs, a shuffle width that fits small clusters). Executors run
    ledrec's functions, so they need ledrec installed: on ``local[...]`` they use this very interpreter; on a
    cluster, install ledrec on the nodes (or set PYSPARK_PYTHON to an environment that has it)."""
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # what PySpark's context starts workers with
    spark = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", "8" if master.startswith("local") else "200")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.maxResultSize", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def cooccurrence_pairs(events: Any, window: int | None) -> Any:
    """DataFrame (i, j, count): timelines containing items i ≠ j (within ``window`` positions)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if window is None:
        t = events.select("user", "item").distinct()
        a, b = t.alias("a"), t.alias("b")
        pairs = a.join(b, "user").where(F.col("a.item") != F.col("b.item"))
        return pairs.groupBy(F.col("a.item").alias("i"), F.col("b.item").alias("j")).count()
    if window < 1:
        raise ConfigError("window must be >= 1")
    order = [F.col("timestamp"), F.col("_seq")] if "timestamp" in events.columns else [F.col("_seq")]
    numbered = events.withColumn("_seq", F.monotonically_increasing_id())  # file order breaks ties
    numbered = numbered.withColumn("pos", F.row_number().over(Window.partitionBy("user").orderBy(*order)))
    a, b = numbered.alias("a"), numbered.alias("b")
    joined = a.join(
        b,
        (F.col("a.user") == F.col("b.user"))
        & (F.abs(F.col("a.pos") - F.col("b.pos")) <= window)
        & (F.col("a.item") != F.col("b.item")),
    )
    per_timeline = joined.select(F.col("a.user"), F.col("a.item").alias("i"), F.col("b.item").alias("j")).distinct()
    return per_timeline.groupBy("i", "j").count()


def pmi_entries(pairs: Any, config: PretrainConfig) -> Any:
    """DataFrame (i, j, value): (shifted, positive) PMI of the observed pairs, after the min-count filter."""
    from pyspark.sql import functions as F

    if config.min_count > 1:  # drop rows and columns of rare items (pmi.filter_items), then recount
        totals = pairs.groupBy("i").agg(F.sum("count").alias("total"))
        kept = totals.where(F.col("total") >= config.min_count).select("i")
        pairs = pairs.join(kept, "i").join(kept.withColumnRenamed("i", "j"), "j")
    totals = pairs.groupBy("i").agg(F.sum("count").cast("double").alias("c_i"))  # C symmetric: rows = columns
    norm = totals.agg(F.sum(F.pow(F.col("c_i"), config.alpha))).first()[0] or 1.0  # Σ_k c_k^α
    context = totals.select(F.col("i").alias("j"), (config.alpha * F.log("c_i")).alias("log_c_j_alpha"))
    value = (
        F.log(F.col("count").cast("double"))
        + float(np.log(norm))
        - F.log("c_i")
        - F.col("log_c_j_alpha")
        - float(np.log(config.shift))
    )
    out = pairs.join(totals, "i").join(context, "j").select("i", "j", value.alias("value"))
    if config.positive:
        out = out.where(F.col("value") > 0)
    return out


# ------------------------------------------------------------------------------ distributed linear algebra
def _rows(entries: Any) -> Any:
    """RDD of sparse rows (i, (column indices int64, values float32)) from (i, j, value) entries."""
    return (
        entries.rdd.map(lambda r: (int(r[0]), (int(r[1]), float(r[2]))))
        .groupByKey()
        .mapValues(lambda cells: _pack(list(cells)))
    )


def _pack(cells: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    cells.sort()
    return np.fromiter((c for c, _ in cells), np.int64, len(cells)), np.fromiter(
        (v for _, v in cells), np.float32, len(cells)
    )


def _times(rows: Any, dense: Any) -> Any:
    """RDD (i, row_i · M) for sparse rows and a broadcast dense M (n, k): the distributed A·M."""
    return rows.mapValues(lambda r: r[1] @ dense.value[r[0]])


def _collect(vectors: Any, n: int, k: int) -> np.ndarray:
    """Indexed rows → a dense (n, k) array on the driver (missing rows are zero rows)."""
    out = np.zeros((n, k), np.float32)
    for i, v in vectors.collect():
        out[i] = v
    return out


def _orthonormalize(vectors: Any, k: int) -> tuple[Any, list[Any]]:
    """Q with orthonormal columns spanning the same space as the indexed rows: R from Spark's tall-skinny QR,
    Q = Y·R⁻¹, done twice (the second pass restores the orthogonality the first loses to rounding).
    Returns Q (lazy) and the RDDs cached on the way, for the caller to unpersist once Q is materialised."""
    from pyspark.mllib.linalg import DenseVector
    from pyspark.mllib.linalg.distributed import RowMatrix

    # Each pass reads its input twice (the QR job, then the product): cached, A·M is computed once per
    # half-step instead of three times through the lineage (Gowalla, 20 power iterations: see README).
    cached = []
    for _ in range(2):
        vectors = vectors.cache()
        cached.append(vectors)
        matrix = RowMatrix(vectors.map(lambda kv: DenseVector(kv[1].astype(np.float64))))
        R = matrix.tallSkinnyQR(computeQ=False).R.toArray()  # (k, k) upper triangular
        diag = np.abs(np.diag(R))
        R = R + np.diag(np.where(diag < 1e-10 * max(diag.max(), 1e-30), 1e-10, 0.0))  # rank-deficient guard
        R_inv = np.linalg.inv(R).astype(np.float32)
        vectors = vectors.mapValues(lambda v, R_inv=R_inv: (v @ R_inv).astype(np.float32))
    return vectors, cached


def randomized_svd_rdd(
    spark: Any, rows: Any, n: int, dim: int, n_iter: int = 5, oversamples: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``dim`` left singular vectors U (n, dim) and singular values of the sparse n × n matrix ``rows``."""
    from pyspark.mllib.linalg import DenseVector
    from pyspark.mllib.linalg.distributed import RowMatrix

    sc = spark.sparkContext
    k = min(dim + oversamples, n)
    rows = rows.cache()
    transposed = (
        rows.flatMap(lambda r: ((int(j), (r[0], float(v))) for j, v in zip(r[1][0], r[1][1], strict=True)))
        .groupByKey()
        .mapValues(lambda cells: _pack(list(cells)))
        .cache()
    )
    omega = np.random.default_rng(seed).standard_normal((n, k), dtype=np.float32)
    current = sc.broadcast(omega)

    def next_broadcast(matrix: Any, previous: Any) -> Any:
        """Orthonormalise the lazy product (distributed QR), collect Q on the driver and broadcast it; the
        broadcast the product read is then released (41 of them at 20 iterations would pin ~1 GB on Gowalla)."""
        Q_rdd, cached = _orthonormalize(matrix, k)
        Q = _collect(Q_rdd, n, k)
        for rdd in cached:
            rdd.unpersist()
        previous.unpersist()
        return sc.broadcast(Q)

    for _ in range(n_iter):  # power iterations, orthonormalised at each half-step
        current = next_broadcast(_times(rows, current), current)  # A·Ω, then A·(Aᵀ·Q)
        current = next_broadcast(_times(transposed, current), current)  # Aᵀ·Q
    current = next_broadcast(_times(rows, current), current)
    Q = current.value
    W = _times(transposed, current)  # Aᵀ·Q = Bᵀ (n, k), B = Qᵀ·A
    gram = RowMatrix(W.map(lambda kv: DenseVector(kv[1].astype(np.float64)))).computeGramianMatrix().toArray()
    eigvals, eigvecs = np.linalg.eigh(gram)  # B·Bᵀ = Ũ σ² Ũᵀ
    top = np.argsort(-eigvals)[:dim]
    singular = np.sqrt(np.maximum(eigvals[top], 0.0))
    U = (Q.astype(np.float64) @ eigvecs[:, top]).astype(np.float32)  # (n, dim) = Q·Ũ
    current.unpersist()
    rows.unpersist()
    transposed.unpersist()
    return U, singular.astype(np.float32)


def spark_pretrain(
    spark: Any,
    events_parquet: str,
    n_items: int,
    config: PretrainConfig,
    item_ids: np.ndarray | None = None,
) -> ItemEmbeddings:
    """Item embeddings from time-ordered events in Parquet (``user``, ``item`` integer indices < n_items,
    optional ``timestamp``) — the same artifact as :func:`ledrec.pretrain.pretrain`."""
    from pyspark.sql import functions as F

    start = time.perf_counter()
    events = spark.read.parquet(events_parquet)
    missing = {"user", "item"} - set(events.columns)
    if missing:
        raise ValueError(f"{events_parquet}: missing column(s) {sorted(missing)}")
    pairs = cooccurrence_pairs(events, config.window).cache()
    n_pairs = pairs.count()
    cooc_s = time.perf_counter() - start
    entries = pmi_entries(pairs, config).cache()
    n_pmi = entries.count()
    kept = n_items  # as the single-machine path: without a min-count filter every item is kept
    if config.min_count > 1:
        kept = pairs.groupBy("i").agg(F.sum("count").alias("t")).where(F.col("t") >= config.min_count).count()
    pmi_s = time.perf_counter() - start - cooc_s
    if not 1 <= config.dim < n_items:
        raise ConfigError(f"dim must be in [1, {n_items - 1}], got {config.dim}")
    U, singular = randomized_svd_rdd(spark, _rows(entries), n_items, config.dim, config.n_iter, seed=config.seed)
    emb = U * singular**config.power
    if config.normalize:
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-8)
    counts = np.zeros(n_items, np.int64)
    for item, c in events.select("user", "item").distinct().groupBy("item").count().collect():
        counts[int(item)] = int(c)
    pairs.unpersist()
    entries.unpersist()
    stats = {
        "engine": f"spark {spark.version} ({spark.sparkContext.master})",
        "items": n_items,
        "items_kept": int(kept),
        "cooccurrence_nnz": int(n_pairs),
        "pmi_nnz": int(n_pmi),
        "cooccurrence_s": round(cooc_s, 3),
        "pmi_s": round(pmi_s, 3),
        "svd_s": round(time.perf_counter() - start - cooc_s - pmi_s, 3),
    }
    log.info("spark pretrain: %s", stats)
    return ItemEmbeddings(emb.astype(np.float32), singular, counts, config, item_ids, stats)


def spark_pretrain_events(
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    config: PretrainConfig,
    item_ids: np.ndarray | None = None,
    *,
    master: str = "local[2]",
    driver_memory: str = "8g",
) -> ItemEmbeddings:
    """:func:`spark_pretrain` on events in memory: ``users``, ``items`` (integer indices, sorted by user, then
    time) are written to a temporary Parquet file with their order kept in a position column
    (``timestamp``), a session is started on ``master`` (:func:`spark_session`), and stopped at the end."""
    import tempfile
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="ledrec-spark-") as tmp:
        path = str(Path(tmp) / "events.parquet")
        table = pa.table(
            {"user": users.astype(np.int64), "item": items.astype(np.int64), "timestamp": np.arange(len(users))}
        )
        pq.write_table(table, path)
        spark = spark_session(master, driver_memory=driver_memory)
        try:
            return spark_pretrain(spark, path, n_items, config, item_ids=item_ids)
        finally:
            spark.stop()


def principal_angle_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the column spaces of ``a`` and ``b`` (1 = same direction)."""
    qa, _ = np.linalg.qr(np.asarray(a, np.float64))
    qb, _ = np.linalg.qr(np.asarray(b, np.float64))
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)
