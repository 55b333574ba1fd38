"""Pre-training at scale: 1,000,000 items and 20,000,000 events, (a) on one machine and (b) on Spark local[2].

    .venv/bin/python benchmarks/pretrain_scale.py --out runs/pretrain-scale [--items 1000000 --events 20000000]

Synthetic timelines with a topic structure (1,000 topics of 1,000 items, Zipf popularity inside a topic, a
fifth of each timeline from the global head), time-ordered, written as an event table (Parquet). Each
engine runs as its own ``ledrec pretrain`` process with the co-occurrence window (``--window``, default 5:
without it a timeline of T items gives T² pairs and 20M events give ~10⁹ of them); the wall time and the
peak resident memory of the whole process tree (Python, and for Spark the JVM and its Python workers,
sampled every 0.5 s) are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ledrec.monitor import run_measured


def timelines(n_items: int, n_events: int, mean_length: int = 50, n_topics: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_users = n_events // mean_length
    lengths = np.maximum(rng.geometric(1 / mean_length, n_users), 2)
    lengths = (lengths * (n_events / lengths.sum())).astype(np.int64).clip(2)
    users = np.repeat(np.arange(n_users), lengths)
    topic_size = n_items // n_topics
    topic = rng.integers(0, n_topics, n_users)[users]
    zipf_in_topic = np.minimum(rng.zipf(1.3, len(users)) - 1, topic_size - 1)
    items = topic * topic_size + zipf_in_topic
    head = rng.random(len(users)) < 0.2  # a fifth from the global head
    items[head] = np.minimum(rng.zipf(1.2, head.sum()) - 1, n_items - 1)
    return users, items.astype(np.int64)


def run(cmd: list[str]) -> dict:
    done = run_measured(cmd)
    if done["returncode"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done['stderr'][-3000:]}")
    return {"wall_s": done["wall_s"], "peak_gib": done["peak_gib"], "stats": json.loads(done["stdout"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--events", type=int, default=20_000_000)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--engines", default="local,spark")
    p.add_argument("--master", default="local[2]")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    events = out / "events.parquet"
    if not events.is_file():
        users, items = timelines(args.items, args.events)
        table = pa.table({"user": users, "item": items, "timestamp": np.arange(len(users), dtype=np.int64)})
        pq.write_table(table, events)
    report = out / "scale.json"
    results = json.loads(report.read_text()) if report.is_file() else {}  # engines measured earlier stay
    results = {k: v for k, v in results.items() if k not in ("items", "events")}
    ledrec = [sys.executable, "-m", "ledrec.cli", "pretrain", "--data", str(events), "--window", str(args.window)]
    ledrec += ["--dim", str(args.dim)]
    for engine in args.engines.split(","):
        cmd = [*ledrec, "--out", str(out / f"embeddings-{engine}"), "--engine", engine]
        if engine == "spark":
            cmd += ["--master", args.master]
        results[engine] = run(cmd)
        print(json.dumps({engine: results[engine]}), flush=True)
    report.write_text(json.dumps({"items": args.items, "events": args.events, **results}, indent=2))


if __name__ == "__main__":
    main()
