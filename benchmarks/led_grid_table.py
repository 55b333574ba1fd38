"""Render a folder of 'ledrec run' JSON results (LED grids) as a pivot table of test Recall@20 / @50.

Usage: .venv/bin/python benchmarks/led_grid_table.py DIR [--rows loss,init] [--cols tuning]
  rows/cols name LED options (``params``) or data options (``data``, e.g. exclude).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

ORDER = {"loss": ["mult", "mult-css", "bpr", "ns"], "init": ["random", "svd"], "tuning": ["full", "project"]}


def value(run: dict, key: str):
    return run["params"].get(key, run["data"].get(key))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--rows", default="loss,init")
    ap.add_argument("--cols", default="tuning")
    args = ap.parse_args()
    rows, cols = args.rows.split(","), args.cols.split(",")
    runs = [json.loads(p.read_text()) for p in sorted(Path(args.folder).glob("*.json"))]
    runs = [r for r in runs if "metrics" in r]
    keys = rows + cols
    table = {tuple(str(value(r, k)) for k in keys): r for r in runs}

    def levels(key: str) -> list[str]:
        seen = {str(value(r, key)) for r in runs}
        return [v for v in ORDER.get(key, []) if v in seen] + sorted(seen - set(ORDER.get(key, [])))

    col_values = list(itertools.product(*(levels(c) for c in cols)))
    print(f"{runs[0]['dataset']}, protocol {runs[0]['protocol']}: test Recall@20 / Recall@50 (best epoch)\n")
    print("| " + " | ".join(rows) + " | " + " | ".join(", ".join(c) for c in col_values) + " |")
    print("|" + "---|" * (len(rows) + len(col_values)))
    for row in itertools.product(*(levels(k) for k in rows)):
        cells = []
        for col in col_values:
            r = table.get(row + col)
            if r is None:
                cells.append("")
                continue
            m = r["metrics"]
            epoch = r.get("training", {}).get("best_epoch", "")
            cells.append(f"{m['recall@20']:.4f} / {m['recall@50']:.4f} ({epoch})")
        print("| " + " | ".join(row) + " | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
