"""LED beside the libraries a user would pick instead, in one command and one harness (issue 19).

Each row is one ``ledrec run`` in its own process — the same preparation, hyper-parameters chosen on
validation only, test touched once — measured from outside: wall time and the peak resident memory of the
process tree (``ledrec.monitor``). Rows: LED with its defaults (the bare command), implicit's ALS with a
small grid searched on validation, GF-CF (training-free item filter; only where the catalogue allows its
exact SVD comfortably), EASE (λ searched), popularity. A row's JSON is kept in ``out`` and reused when the
command runs again with the same options (a long benchmark can be resumed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ledrec.errors import ConfigError
from ledrec.io import write_json
from ledrec.monitor import run_measured

# row → the `ledrec run` options it adds (lists are searched on validation). ALS's grid: on ML-1M a first
# grid (regularisation .01-1, alpha 1-10) chose its largest values (1 and 10: test Recall@20 .2481), a second
# (1-100, alpha 1-40) again its largest regularisation (100: .2810), so it reaches 1,000; ALS fits in seconds
ROWS: dict[str, list[str]] = {
    "led": ["--model", "led"],
    "als": ["--model", "als", "--factors", "128,256", "--regularization", "10,100,1000", "--alpha", "1,10,40"],
    # implicit's BPR: its usual learning rates and regularisations, 100 epochs
    "bprmf": ["--model", "bprmf", "--factors", "256", "--learning-rate", "0.01,0.05", "--regularization", "0.001,0.01"],
    "gfcf": ["--model", "gfcf"],
    "ease": ["--model", "ease", "--lam", "50,200,500,1000"],
    "pop": ["--model", "pop"],
}


def peers(
    data_args: list[str], out: str | Path, rows: list[str] | None = None, extra: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """Run (or reuse) each row; write ``<row>.json``, ``peers.json`` and ``peers.md`` into ``out``.
    ``data_args``: the ``--data``/``--protocol``/… flags every row shares; ``extra[row]``: flags added to
    that row (over its own)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(rows or ()) - set(ROWS))
    if unknown:
        raise ConfigError(f"--rows: unknown {unknown}; known: {list(ROWS)}")
    results = []
    for name in rows or list(ROWS):
        argv = ["run", *data_args, *ROWS[name], *(extra or {}).get(name, []), "--quiet", "--compact"]
        path = out / f"{name}.json"
        if path.is_file() and json.loads(path.read_text()).get("argv") == argv:
            results.append(json.loads(path.read_text()))
            continue
        done = run_measured([sys.executable, "-m", "ledrec.cli", *argv], out / f"{name}.log")
        if done["returncode"] != 0:
            raise ConfigError(f"row {name} failed (status {done['returncode']}); see {out / f'{name}.log'}")
        result = json.loads(done["stdout"])
        row = {
            "row": name,
            "argv": argv,
            "metrics": result["metrics"],
            "params": result["params"],
            "fit_s": result["timings"]["fit_s"],
            "select_s": result["timings"]["select_s"],
            "wall_s": done["wall_s"],
            "peak_gib": done["peak_gib"],
            "dataset": result["dataset"],
            "protocol": result["protocol"],
        }
        write_json(path, row)
        results.append(row)
    # the table holds every row measured in this folder (a run of some rows adds to the others)
    ran = {r["row"] for r in results}
    kept = [json.loads((out / f"{n}.json").read_text()) for n in ROWS if n not in ran and (out / f"{n}.json").is_file()]
    table = sorted(results + kept, key=lambda r: list(ROWS).index(r["row"]))
    write_json(out / "peers.json", {"rows": table})
    (out / "peers.md").write_text(markdown(table))
    return table


# The BARS boards issue 19 is judged on (folder names under ``../shared/data``), in the README's order
BOARDS = ("gowalla-lightgcn", "ml-1m-implicit-lcfn", "amazon-cds-bgcf")


def boards(
    root: str | Path,
    out: str | Path,
    rows: list[str] | None = None,
    extra: dict[str, list[str]] | None = None,
    shared: list[str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """:func:`peers` on every board of :data:`BOARDS` found under ``root`` (BARS protocol), each in
    ``out/<board>``; writes ``out/boards.md``, the one table of every board (the README's)."""
    root, out = Path(root), Path(out)
    missing = [b for b in BOARDS if not (root / b).is_dir()]
    if missing:
        raise ConfigError(f"--boards {root}: no {missing} there (expected the folders of ../shared/data)")
    tables = {
        b: peers(["--data", str(root / b), "--protocol", "bars", *(shared or [])], out / b, rows, extra) for b in BOARDS
    }
    (out / "boards.md").write_text(boards_markdown(tables))
    return tables


def boards_markdown(tables: dict[str, list[dict[str, Any]]]) -> str:
    """Rows × boards: Recall@20 / NDCG@20 and the final fit's time of each row on each board."""
    names = [n for n in ROWS if any(r["row"] == n for t in tables.values() for r in t)]
    head = " | ".join(f"{b} R@20 / NDCG@20 (fit)" for b in tables)
    lines = [f"| row | {head} |", "|---|" + "---|" * len(tables)]
    for name in names:
        cells = []
        for table in tables.values():
            r = next((r for r in table if r["row"] == name), None)
            m = r and r["metrics"]
            cells.append(f"{m['recall@20']:.4f} / {m['ndcg@20']:.4f} ({r['fit_s']:.1f} s)" if r else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_extra(specs: list[str], data_args: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``--args ROW=FLAGS`` → (the shared flags with every ``all=`` added, flags per row)."""
    import shlex

    extra: dict[str, list[str]] = {}
    shared = list(data_args)
    for spec in specs:
        row, sep, flags = spec.partition("=")
        if not sep or (row not in ROWS and row != "all"):
            raise ConfigError(f"--args {spec!r}: expected ROW=FLAGS with ROW in {[*ROWS, 'all']}")
        (shared if row == "all" else extra.setdefault(row, [])).extend(shlex.split(flags))
    return shared, extra


def markdown(rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    lines = [
        f"Peers on {first['dataset']} ({first['protocol']}), test metrics of the configuration chosen on validation",
        "",
        "| row | Recall@20 | NDCG@20 | Recall@50 | final fit | whole run (selection included) | peak RSS | chosen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["metrics"]
        chosen = ", ".join(f"{k}={v}" for k, v in r["params"].items() if k in _SHOWN)
        lines.append(
            f"| {r['row']} | {m['recall@20']:.4f} | {m['ndcg@20']:.4f} | {m['recall@50']:.4f} | {r['fit_s']:.1f} s "
            f"| {r['wall_s']:.0f} s | {r['peak_gib']:.2f} GiB | {chosen} |"
        )
    return "\n".join(lines) + "\n"


_SHOWN = (
    "factors",
    "learning_rate",
    "regularization",
    "alpha",
    "lam",
    "k",
    "dim",
    "init",
    "spectral_exponent",
    "spectral_order",
    "loss",
    "epochs",
)
