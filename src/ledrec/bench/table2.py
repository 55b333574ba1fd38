"""The seed paper's Table 2 as a command: accuracy and cost of LED against Mult-VAE and the baselines.

Every row is one ``ledrec run`` (same data preparation, hyper-parameters and checkpoints chosen on
validation only, test touched once), so the numbers are exactly what ``ledrec run`` would report. Each
row's JSON and run directory (``out/<row>/``: the model, servable for LED) are kept in ``out``; a row
whose JSON is already there is not run again (a long benchmark can be interrupted and resumed, or
extended with more rows).

Columns: model, loss, Recall@20, Recall@50, relative difference to Mult-VAE (Mult) at Recall@20, training
time of the final model, and evaluation time per test user (scoring every item + top-k, one process).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledrec.errors import ConfigError
from ledrec.io import ArtifactError, write_json
from ledrec.models import MODELS, get_model
from ledrec.train.run import RunConfig, run

log = logging.getLogger(__name__)

# (model, loss) in the paper's order; loss None = the model has no loss option
ROWS: tuple[tuple[str, str | None], ...] = (
    ("led", "mult"),
    ("led", "mult-css"),
    ("led", "bpr"),
    ("led", "ns"),
    ("vae", "mult"),
    ("vae", "mult-css"),
    ("dae", "mult"),
    ("ease", None),
    ("svd", None),
    ("pop", None),
)
REFERENCE = ("vae", "mult")


def row_name(model: str, loss: str | None) -> str:
    return model if loss is None else f"{model}-{loss}"


def parse_params(specs: Sequence[str]) -> dict[str, dict[str, list[Any]]]:
    """``--param`` values → the ``params`` of :func:`table2`. ``MODEL.OPTION=VALUE[,VALUE…]`` sets an option
    for every row of the model, ``ROW.OPTION=VALUE[,VALUE…]`` (e.g. ``vae-mult-css.hidden=8``) for one row
    only; a comma list of a searchable option is searched on validation. ConfigError for any other form, an
    unknown model, row or option, or a value that is not of the option's type."""
    by_name = {row_name(m, loss): m for m, loss in ROWS}
    params: dict[str, dict[str, list[Any]]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        scope, dot, option = key.partition(".")  # scope: a model (all its rows) or one row
        model = by_name.get(scope, scope)
        if not sep or not dot or model not in MODELS:
            raise ConfigError(
                f"--param {spec!r}: expected MODEL.OPTION=VALUE[,VALUE…] or ROW.OPTION=VALUE[,VALUE…], "
                f"MODEL in {list(MODELS)}, ROW in {list(by_name)}"
            )
        known = {o.name: o for o in get_model(model).options}
        name = option.replace("-", "_")
        if name not in known:
            raise ConfigError(f"--param {spec!r}: {model} has no option {option!r}; known: {sorted(known)}")
        params.setdefault(scope, {})[name] = known[name].parse(value)
    return params


def parse_rows(spec: str | None) -> list[tuple[str, str | None]]:
    """``--rows`` (comma-separated row names, e.g. ``led-mult,vae-mult,ease``; None: every row, in the
    paper's order) → the ``rows`` of :func:`table2`; ConfigError naming an unknown row."""
    by_name = {row_name(m, loss): (m, loss) for m, loss in ROWS}
    wanted = [r.strip() for r in spec.split(",")] if spec else list(by_name)
    unknown = [r for r in wanted if r not in by_name]
    if unknown:
        raise ConfigError(f"--rows: unknown {unknown}; known: {list(by_name)}")
    return [by_name[r] for r in wanted]


def table2(
    base: RunConfig,
    out: str | Path,
    params: dict[str, dict[str, list[Any]]] | None = None,
    rows: Sequence[tuple[str, str | None]] = ROWS,
) -> list[dict[str, Any]]:
    """Run (or reuse) every row; write ``<row>.json``, ``table2.json`` and ``table2.md`` into ``out``.

    ``base`` carries the data and protocol; ``params[model]`` the options for that model's rows (each a
    list of candidates, searched on validation as ``ledrec run`` does); ``params[row]`` (e.g.
    ``"vae-mult-css"``) options for that row only, over its model's (e.g. a checkpoint folder of its own)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for model, loss in rows:
        name = row_name(model, loss)
        path = out / f"{name}.json"
        model_params = _defaults(model) | dict((params or {}).get(model, {})) | dict((params or {}).get(name, {}))
        if loss is not None:
            model_params["loss"] = [loss]
        requested = json.loads(json.dumps(model_params))  # as the row's JSON keeps it (tuples become lists)
        if path.is_file():
            result = json.loads(path.read_text())
            kept = result.get("requested")
            if kept is not None and kept != requested:
                changed = sorted(k for k in kept.keys() | requested.keys() if kept.get(k) != requested.get(k))
                raise ArtifactError(
                    f"{path} was run with other options ({', '.join(changed)}); "
                    "delete it to rerun the row, or use another --out"
                )
            log.info("table2: reusing %s", path)
        else:
            log.info("table2: running %s with %s", name, model_params)
            result = run(replace(base, model=model, params=model_params, out=str(out / name)))
            result["requested"] = requested  # what the row was asked to run: a later call with other options fails
            write_json(path, result)
        results.append(summarise(model, loss, result))
    reference = next((r for r in results if (r["model"], r["loss"]) == REFERENCE), None)
    for r in results:
        ref = reference["recall@20"] if reference else None
        r["vs_vae"] = None if not ref else (r["recall@20"] - ref) / ref
    write_json(out / "table2.json", {"rows": results})
    (out / "table2.md").write_text(markdown(results, title=f"{results[0]['dataset']} ({results[0]['protocol']})"))
    return results


def _defaults(model: str) -> dict[str, list[Any]]:
    defaults = {o.name: [o.default] for o in get_model(model).options}
    if model == "led":  # the paper's Table 2 compares trained losses: its LED starts from the PMI SVD and trains
        defaults["init"] = ["svd"]
    return defaults


def summarise(model: str, loss: str | None, result: dict[str, Any]) -> dict[str, Any]:
    test_users = result["data"]["test"]["users"]
    return {
        "model": model,
        "loss": loss,
        "dataset": result["dataset"],
        "protocol": result["protocol"],
        "recall@20": result["metrics"]["recall@20"],
        "recall@50": result["metrics"]["recall@50"],
        "fit_s": result["timings"]["fit_s"],
        "eval_ms_per_user": 1000 * result["timings"]["eval_s"] / max(test_users, 1),
        "params": {k: v for k, v in result["params"].items() if k not in ("progress",)},
    }


def markdown(rows: list[dict[str, Any]], title: str = "") -> str:
    lines = [
        f"Table 2 analogue, {title}" if title else "Table 2 analogue",
        "",
        "| model | loss | Recall@20 | Recall@50 | vs Mult-VAE (R@20) | training | eval per user |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        vs = "—" if r["vs_vae"] is None else f"{100 * r['vs_vae']:+.1f}%"
        lines.append(
            f"| {r['model']} | {r['loss'] or '—'} | {r['recall@20']:.4f} | {r['recall@50']:.4f} | {vs} "
            f"| {_duration(r['fit_s'])} | {r['eval_ms_per_user']:.2f} ms |"
        )
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
