"""Render the JSON results of 'ledrec run' (and their /usr/bin/time -v files) as the README's markdown table.

Usage: .venv/bin/python benchmarks/results_table.py runs/results
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def peak_memory_gib(time_file: Path) -> float | None:
    if not time_file.is_file():
        return None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_file.read_text())
    return int(m.group(1)) / 2**20 if m else None


def wall_seconds(time_file: Path) -> float | None:
    if not time_file.is_file():
        return None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", time_file.read_text())
    if not m:
        return None
    parts = [float(p) for p in m.group(1).split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def model_defaults(name: str) -> dict:
    """Option defaults of a model, so that the table shows only what a run changed or chose."""
    try:
        from ledrec.models import MODELS
    except ImportError:
        return {}
    model = MODELS.get(name)
    return {} if model is None else {o.name: o.default for o in model.options}


def main(folder: str) -> None:
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        r = json.loads(path.read_text())
        if "metrics" not in r:
            continue
        m, t = r["metrics"], r["timings"]
        defaults = model_defaults(r["model"])
        params = {k: v for k, v in r["params"].items() if k != "random_state" and defaults.get(k, object()) != v}
        time_file = path.with_suffix(".time")
        wall, peak = wall_seconds(time_file), peak_memory_gib(time_file)
        options = ", ".join(f"{k}={v}" for k, v in params.items()) or "–"
        rows.append(
            f"| {r['dataset']} | {r['protocol']} | {r['model']} | {options} "
            f"| {m['recall@20']:.4f} | {m['recall@50']:.4f} | {m['ndcg@20']:.4f} | {m['ndcg@50']:.4f} "
            f"| {m['ndcg@100']:.4f} | {t['fit_s']:.1f} | {t['eval_s']:.1f} "
            f"| {'' if wall is None else f'{wall:.0f}'} | {'' if peak is None else f'{peak:.1f}'} |"
        )
    print(
        "| dataset | protocol | model | options (non-default or chosen) | R@20 | R@50 | NDCG@20 | NDCG@50 | NDCG@100 "
        "| fit s | eval s | wall s | peak GiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/results")
