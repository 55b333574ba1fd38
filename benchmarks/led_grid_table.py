"""Render the runs of benchmarks/led_grid.sh as loss × init rows and tuning columns (Recall@20 / @50).

Usage: .venv/bin/python benchmarks/led_grid_table.py runs/led-grid-mlsmall
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folder: str) -> None:
    runs = {}
    for path in Path(folder).glob("*.json"):
        r = json.loads(path.read_text())
        p = r["params"]
        runs[(p["loss"], p["init"], p["tuning"])] = r
    any_run = next(iter(runs.values()))
    print(f"{any_run['dataset']}, protocol {any_run['protocol']}: test Recall@20 / Recall@50 (best epoch)\n")
    print("| loss | init | full | project |")
    print("|---|---|---|---|")
    for loss in ("mult", "mult-css", "bpr", "ns"):
        for init in ("random", "svd"):
            cells = []
            for tuning in ("full", "project"):
                r = runs.get((loss, init, tuning))
                if r is None:
                    cells.append("")
                    continue
                m = r["metrics"]
                cells.append(f"{m['recall@20']:.4f} / {m['recall@50']:.4f} ({r['training']['best_epoch']})")
            print(f"| {loss} | {init} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/led-grid")
