"""Does the daily job's choice of LED's variant hold up on a multi-feedback log? On the simulator's world
(views and clicks in, clicks to predict, pre-training on views, three countries), the pipeline run once with
each variant alone and once with the default list it chooses from on validation; per country, the holdout
Recall@20 the gate scored (the chosen model before its refit) and what was chosen.

Usage: .venv/bin/python benchmarks/pipeline_choice.py --out runs/pipeline-choice [--n-users 20000 --n-items 4000]
Prints one JSON object (the table's rows); progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SPLIT = ["--input-feedback", "view,click", "--target-feedback", "click", "--pretrain-feedback", "view"]


def ledrec(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "ledrec.cli", *argv], capture_output=True, text=True)
    if done.returncode not in (0, 3):  # (3: a refused model; the report is printed all the same)
        raise RuntimeError(f"ledrec {' '.join(argv)}: exit {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--n-users", type=int, default=20_000)
    parser.add_argument("--n-items", type=int, default=4_000)
    parser.add_argument("--variants", default="project,full,spectral", help="each run alone, then the default list")
    args = parser.parse_args()
    out = Path(args.out)
    world = out / "world"
    if not (world / "events.parquet").exists():
        ledrec(
            "simulate", "generate", "--out", str(world), "--n-users", str(args.n_users), "--n-items", str(args.n_items)
        )
    runs = {}
    for variants in [*args.variants.split(","), "default"]:
        flags = [] if variants == "default" else ["--variants", variants]
        t0 = time.perf_counter()
        report = ledrec("pipeline", "--events", str(world / "events.parquet"), "--out", str(out / f"pub-{variants}"),
                        *SPLIT, *flags, "--quiet")  # fmt: skip
        runs[variants] = {
            "wall_s": round(time.perf_counter() - t0, 1),
            "catalogues": {
                name: {
                    "holdout_recall@20": part["candidate"]["recall@20"],
                    "variant": part["variant"],
                    "validation": {c["variant"]: c.get("validation", {}).get("recall@20") for c in part["candidates"]},
                    "trainings": sorted(s for s in part["stages"] if s.startswith("candidate ")),
                }
                for name, part in report["catalogues"].items()
            },
        }
        print(json.dumps({variants: runs[variants]}), file=sys.stderr, flush=True)
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
