"""The daily pipeline at production size on one box: 1,000,000 items, 100,000,000 events, 3 catalogues.

    .venv/bin/python benchmarks/pipeline_scale.py --out runs/pipeline-scale [--items 1000000 --events 100000000]

1. **The log** (skipped when OUT/events exists): three catalogues (countries) of ``items / 3`` items each,
   1,000 items per topic, Zipf popularity inside a topic and a fifth of the views from the catalogue's
   global head; users live in one country, have one topic, and view at exponential gaps (mean 2 h) from a
   uniform start over ``days`` days (events past the last day are not in the log: it ends now); 8% of
   views are followed by a click, 10% of clicks by a sale; user blocks are generated until each country has
   a third of ``--events``. Written
   one folder per day (``events/day=DD/``), a Parquet file per (country, block of users), generated one
   block at a time, so generation holds one block in memory, never the log.
2. **The pipeline**: ``ledrec pipeline run`` on the whole log (config written to OUT/pipeline.toml), as
   one process whose tree's resident memory is sampled every 0.5 s; the per-stage table comes from the
   pipeline's own report (wall time and peak resident memory of each stage).
3. OUT/scale.md: the table; OUT/scale.json: everything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ledrec.monitor import run_measured

DAY = 86_400
CONFIG = """events = "{events}"
out = "{published}"
days = {window_days}
holdout_days = 1
input_feedback = "view,click"
target_feedback = "view,click"
pretrain_feedback = "view"
window = 5
holdout_users = 10000

[led]
tuning = "full"
dim = 64
loss = "mult-css"
share_negatives = "batch"
negatives = 2048
negative_power = 0.75
mult_after = 0
dropout = 0.5
lr = 0.003
epochs = {epochs}
patience = 0
svd_iter = 2
batch_size = 1024
"""


def generate(out: Path, n_items: int, n_events: int, days: int, seed: int = 0, block: int = 200_000) -> dict:
    """Write the log (module docstring) under ``out``; returns its counts."""
    rng = np.random.default_rng(seed)
    sizes = [n_items // 3 + (c < n_items % 3) for c in range(3)]  # items per country, all of n_items
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    mean_length = 30
    counts = {"events": 0, "users": 0, "items": n_items, "files": 0}
    next_user = 0
    for country in range(3):
        wanted = n_events // 3 + (country < n_events % 3)  # events per country: blocks until reached
        written, part = 0, 0
        while written < wanted:
            n = block
            users, items, kinds, times = _block(rng, n, sizes[country], offsets[country], mean_length, days)
            users += next_user
            next_user += n
            users, items, kinds, times = (a[: wanted - written] for a in (users, items, kinds, times))
            day = times // DAY
            order = np.argsort(day, kind="stable")
            bounds = np.searchsorted(day[order], np.arange(days + 1))
            for d in range(days):
                rows = order[bounds[d] : bounds[d + 1]]
                if not len(rows):
                    continue
                folder = out / f"day={d:02d}"
                folder.mkdir(parents=True, exist_ok=True)
                table = pa.table(
                    {
                        "user": users[rows],
                        "item": items[rows],
                        "event": pa.DictionaryArray.from_arrays(kinds[rows], ["view", "click", "sale"]),
                        "timestamp": times[rows],
                        "country": pa.DictionaryArray.from_arrays(
                            np.full(len(rows), country, np.int8), ["de", "fr", "it"]
                        ),
                    }
                )
                pq.write_table(table, folder / f"c{country}-u{part:03d}.parquet")
                counts["files"] += 1
            written += len(users)
            part += 1
            counts["users"] += len(np.unique(users))
            print(f"generated country {country}, events {written:,}/{wanted:,}", file=sys.stderr, flush=True)
        counts["events"] += written
    return counts


def _block(rng, n_users, n_items, first_item, mean_length, days):
    """One block of users of one country: (users, items, event kinds, times), int64/int8."""
    topic_size = 1000
    n_topics = max(1, n_items // topic_size)
    lengths = np.maximum(rng.geometric(1 / mean_length, n_users), 2)
    users = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    topic = rng.integers(0, n_topics, n_users)[users]
    local = topic * topic_size + np.minimum(rng.zipf(1.3, len(users)) - 1, topic_size - 1)
    head = rng.random(len(users)) < 0.2
    local[head] = np.minimum(rng.zipf(1.2, int(head.sum())) - 1, n_items - 1)
    items = first_item + local  # global item ids: a catalogue's items are its own
    start = rng.uniform(0, days * DAY, n_users)
    gaps = rng.exponential(7200.0, len(users))
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first] - gaps[first], lengths)
    times = (start[users] + offsets).astype(np.int64)  # past the horizon: dropped below (not seen yet)
    click = rng.random(len(users)) < 0.08
    sale = click & (rng.random(len(users)) < 0.10)
    all_users = np.concatenate([users, users[click], users[sale]])
    all_items = np.concatenate([items, items[click], items[sale]])
    kinds = np.concatenate([np.zeros(len(users)), np.ones(int(click.sum())), np.full(int(sale.sum()), 2)])
    all_times = np.concatenate([times, times[click] + 60, times[sale] + 600])
    seen = all_times < days * DAY  # the log ends now: later events have not happened yet
    order = np.argsort(all_users[seen], kind="stable")  # by user (then as generated)
    return tuple(a[seen][order] for a in (all_users, all_items.astype(np.int64), kinds.astype(np.int8), all_times))


def run(cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` (its stderr to ``log``), measured; its JSON result with the wall time and the peak."""
    done = run_measured(cmd, log)
    if done["returncode"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (status {done['returncode']}); see {log}")
    return {"wall_s": done["wall_s"], "peak_gib": done["peak_gib"], **json.loads(done["stdout"])}


def markdown(result: dict) -> str:
    lines = [
        f"Pipeline at scale: {result['log']['items']:,} items, {result['log']['events']:,} events, "
        f"{result['log']['users']:,} users, 3 catalogues; whole run {result['pipeline']['wall_s'] / 60:.1f} min, "
        f"peak resident memory of the process tree {result['pipeline']['peak_gib']:.2f} GiB.",
        "",
        "| catalogue | stage | wall | peak RSS | output |",
        "|---|---|---|---|---|",
    ]
    for name, part in result["pipeline"]["catalogues"].items():
        for stage, s in part["stages"].items():
            shown = {k: v for k, v in s.items() if k not in ("wall_s", "peak_rss_gib", "cached")}
            lines.append(
                f"| {name} | {stage} | {_duration(s['wall_s'])} | {s['peak_rss_gib']:.2f} GiB | "
                + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in shown.items())
                + " |"
            )
        lines.append(f"| {name} | decision | | | {part['decision']}: {part['reason']} |")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--events", type=int, default=100_000_000)
    p.add_argument("--days", type=int, default=30, help="days the log spans")
    p.add_argument("--window-days", type=int, default=28, help="the pipeline's window")
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args()
    out = Path(args.out)
    events = out / "events"
    result: dict = {}
    if not events.is_dir():
        t0 = time.perf_counter()
        result["log"] = generate(events, args.items, args.events, args.days)
        result["log"]["generate_s"] = round(time.perf_counter() - t0, 1)
        (out / "log.json").write_text(json.dumps(result["log"], indent=2))
    else:
        result["log"] = json.loads((out / "log.json").read_text())
    config = out / "pipeline.toml"
    config.write_text(
        CONFIG.format(events=events, published=out / "published", window_days=args.window_days, epochs=args.epochs)
    )
    cmd = [sys.executable, "-m", "ledrec.cli", "pipeline", "run", str(config)]
    result["pipeline"] = run(cmd, out / "pipeline.log")
    (out / "scale.json").write_text(json.dumps(result, indent=2))
    (out / "scale.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
