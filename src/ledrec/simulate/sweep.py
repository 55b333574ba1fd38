"""``ledrec simulate sweep``: the simulated A/B test (:mod:`ledrec.simulate.ab`) over world sizes × seeds, and
one table of where C > B > A holds and where it does not, with what explains it — LED's share of voice, the
click ranker's coefficients on LED's features, and the candidates checked against the ground truth
(:func:`~ledrec.simulate.ab.truth_diagnostics`: coverage of the merchant's catalogue, precision against its
true top k, and expected clicks per banner of the oracle, of the candidates' best and of what was shown).

A seed changes the world (catalogue, users), the A/B split and every draw; a size changes the number of users
and items (and, when given, of merchants) — everything else is the base configuration's.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ledrec.errors import ConfigError
from ledrec.io import atomic_path, write_json
from ledrec.simulate.ab import SimulationConfig, simulate
from ledrec.simulate.report import analyse, write_report
from ledrec.twostage.ranker import SOURCES

LED_FEATURES = ("from_led", "rr_led", "led_score")


@dataclass(frozen=True)
class Size:
    n_users: int
    n_items: int
    n_merchants: int | None = None  # None: the base world's

    @property
    def label(self) -> str:
        return f"{self.n_users}x{self.n_items}" + ("" if self.n_merchants is None else f"x{self.n_merchants}")


def parse_sizes(text: str) -> list[Size]:
    """``"5000x1000,20000x4000x60"`` → sizes (users x items, optionally x merchants)."""
    sizes = []
    for part in text.split(","):
        try:
            numbers = [int(x) for x in part.strip().lower().split("x")]
        except ValueError:
            numbers = []
        if len(numbers) not in (2, 3) or min(numbers) < 1:
            raise ConfigError(
                f"size {part.strip()!r}: expected USERSxITEMS or USERSxITEMSxMERCHANTS (positive integers)"
            )
        sizes.append(Size(*numbers))
    if len(set(sizes)) != len(sizes):
        raise ConfigError(f"sizes {text!r}: a size is repeated")
    return sizes


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",")]
    except ValueError:
        seeds = [-1]
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {text!r}: expected distinct non-negative integers separated by commas")
    return seeds


def configs(base: SimulationConfig, sizes: list[Size], seeds: list[int]) -> list[SimulationConfig]:
    """One configuration per (size, seed), in that order; invalid worlds fail here, before any run."""
    out = []
    for size in sizes:
        for seed in seeds:
            merchants = base.world.n_merchants if size.n_merchants is None else size.n_merchants
            world = replace(base.world, n_users=size.n_users, n_items=size.n_items, n_merchants=merchants, seed=seed)
            out.append(replace(base, world=world, seed=seed))
    return out


def row(config: SimulationConfig, stats: dict[str, Any], coefficients: dict[str, float], wall_s: float) -> dict:
    """The sweep table's row of one run (the numbers of :func:`~ledrec.simulate.report.analyse`)."""
    w = config.world
    pops = stats["populations"]
    out: dict[str, Any] = {
        "n_users": w.n_users,
        "n_items": w.n_items,
        "n_merchants": w.n_merchants,
        "seed": config.seed,
        "users_per_population": {p: pops[p]["users"] for p in "ABC"},
    }
    for metric in ("clicks", "sales"):
        u = stats["uplift"][metric]
        out[metric] = {
            **{p: {"per_user": pops[p][metric]["per_user"], "ci95": pops[p][metric]["ci95"]} for p in "ABC"},
            "C_over_B": u["C_over_B"],
            "C_over_B_ci95": u["C_over_B_ci95"],
            "C_B_A_point": u["order_C_B_A_point"],
            "C_B_A_separated": u["order_C_B_A_separated"],
        }
    share = stats["share_of_voice"]["C"].get("led", {"proposed": 0.0, "only": 0.0})
    pop = stats["popularity"]
    out["led"] = {
        "share_of_voice": share["proposed"],
        "share_of_voice_only": share["only"],
        "ranker": {k: coefficients.get(k) for k in LED_FEATURES},
        "median_popularity": {s: pop[s]["median"] for s in SOURCES if s in pop},
    }
    truth = stats.get("truth", {})
    out["truth"] = {
        p: {
            "candidates_per_request": t["candidates_per_request"],
            "coverage": t["coverage"],
            "shown_over_oracle": _div(t["clicks_per_banner"]["shown"], t["clicks_per_banner"]["oracle"]),
            "candidate_efficiency": t["candidate_efficiency"],
            "ranking_efficiency": t["ranking_efficiency"],
            "led_features_gain": t.get("led_features_gain"),
            "precision": {s: v["precision"] for s, v in t["sources"].items()},
            "intent_share": {s: v["intent_share"] for s, v in t["sources"].items()},
        }
        for p, t in truth.items()
    }
    out["wall_s"] = round(wall_s, 1)
    return out


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per size: in how many seeds C > B > A held (point estimates; separated 95% intervals), and the mean
    C-over-B uplift with a pooled 95% interval: the seeds are independent runs, so the mean's standard error
    is √(Σ seᵢ²)/n, each seᵢ read off its run's bootstrap interval as if normal (width / 3.92) — an
    approximation, narrower than any one run's interval, for the question one run cannot settle."""
    out = []
    sizes = list(dict.fromkeys((r["n_users"], r["n_items"], r["n_merchants"]) for r in rows))
    for users, items, merchants in sizes:
        mine = [r for r in rows if (r["n_users"], r["n_items"], r["n_merchants"]) == (users, items, merchants)]
        entry: dict[str, Any] = {"n_users": users, "n_items": items, "n_merchants": merchants, "seeds": len(mine)}
        for metric in ("clicks", "sales"):
            entry[metric] = {
                "C_B_A_point": sum(r[metric]["C_B_A_point"] for r in mine),
                "C_B_A_separated": sum(r[metric]["C_B_A_separated"] for r in mine),
                "C_over_B_mean": sum(r[metric]["C_over_B"] or 0.0 for r in mine) / len(mine),
                "C_over_B_pooled_ci95": _pooled(
                    [r[metric]["C_over_B"] for r in mine], [r[metric]["C_over_B_ci95"] for r in mine]
                ),
                "C_above_B_separated": sum(r[metric]["C_over_B_ci95"][0] > 0 for r in mine),
                "C_below_B_separated": sum(r[metric]["C_over_B_ci95"][1] < 0 for r in mine),
            }
        out.append(entry)
    return out


def _pooled(values: list[float | None], intervals: list[list[float] | None]) -> list[float] | None:
    """The normal-approximation 95% interval of the mean of independent estimates with these 95% intervals."""
    pairs = [(v, ci) for v, ci in zip(values, intervals, strict=True) if v is not None and ci is not None]
    if len(pairs) < len(values):
        return None
    mean = sum(v for v, _ in pairs) / len(pairs)
    se = sum(((ci[1] - ci[0]) / 3.92) ** 2 for _, ci in pairs) ** 0.5 / len(pairs)
    return [mean - 1.96 * se, mean + 1.96 * se]


def run_sweep(
    base: SimulationConfig,
    sizes: list[Size],
    seeds: list[int],
    out: str | Path | None = None,
    command: str = "ledrec simulate sweep",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the A/B test for every (size, seed) and return the sweep: its rows, the per-size summary and the
    wall time. With ``out``: each run's report in ``out/USERSxITEMS[xMERCHANTS]-seedS/`` (report.md,
    result.json, plots) and the sweep in ``out/sweep.json`` and ``out/sweep.md``."""
    runs = configs(base, sizes, seeds)
    labels = [size.label for size in sizes for _ in seeds]
    t0 = time.perf_counter()
    rows = []
    for n, (config, label) in enumerate(zip(runs, labels, strict=True), 1):
        if progress:
            print(f"sweep {n}/{len(runs)}: {label} seed {config.seed} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        result = simulate(config, progress=False)
        if out is not None:
            stats = write_report(
                result, Path(out) / f"{label}-seed{config.seed}", f"{command} (run {label} seed {config.seed})"
            )
        else:
            stats = analyse(result)
        rows.append(row(config, stats, result.ranker_coefficients, time.perf_counter() - t))
        if progress:
            r = rows[-1]
            print(
                f"sweep {n}/{len(runs)}: {label} seed {config.seed} done in {r['wall_s']:.0f} s; clicks/user "
                + " ".join(f"{p} {r['clicks'][p]['per_user']:.3f}" for p in "ABC")
                + f"; C > B > A: point {_yes(r['clicks']['C_B_A_point'])}, "
                f"separated {_yes(r['clicks']['C_B_A_separated'])}",
                file=sys.stderr,
                flush=True,
            )
    base_config = asdict(base)
    for name in ("n_users", "n_items", "seed"):
        base_config["world"].pop(name)
    base_config.pop("seed")
    doc = {
        "command": command,
        "sizes": [size.label for size in sizes],
        "seeds": seeds,
        "base": base_config,
        "rows": rows,
        "by_size": summarise(rows),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "sweep.json", doc)
        with atomic_path(out / "sweep.md") as tmp:
            Path(tmp).write_text(markdown(doc))
    return doc


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _ci(cell: dict[str, Any]) -> str:
    lo, hi = cell["ci95"]
    return f"{cell['per_user']:.3f} [{lo:.3f}, {hi:.3f}]"


def _uplift(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:+.1%}" + ("" if ci is None else f" [{ci[0]:+.1%}, {ci[1]:+.1%}]")


def _num(x: float | None, fmt: str = "{:+.3f}") -> str:
    return "–" if x is None else fmt.format(x)


def markdown(doc: dict[str, Any]) -> str:
    """The sweep as markdown: outcomes with 95% intervals, then what explains them, then the per-size count."""
    lines = [
        "# The simulated A/B test across world sizes and seeds",
        "",
        f"Command: `{doc['command']}` (wall time {doc['wall_s']:.0f} s)",
        "",
        "Size = users x items x merchants; per population, per user over the reported days, with bootstrap 95% "
        "intervals; *C vs B* = C's uplift over B [95% CI]; *C>B>A*: by point estimate / with separated intervals.",
        "",
    ]
    for metric in ("clicks", "sales"):
        lines += [
            f"## {metric.capitalize()} per user",
            "",
            "| size | seed | A: GBO | B: GBO+CBO | C: GBO+CBO+LED | C vs B | C>B>A point / separated |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in doc["rows"]:
            m = r[metric]
            lines.append(
                f"| {_size(r)} | {r['seed']} | {_ci(m['A'])} | {_ci(m['B'])} | {_ci(m['C'])} | "
                f"{_uplift(m['C_over_B'], m['C_over_B_ci95'])} | "
                f"{_yes(m['C_B_A_point'])} / {_yes(m['C_B_A_separated'])} |"
            )
        lines.append("")
    lines += [
        "## What LED's candidates and the ranker's LED features look like",
        "",
        "*LED share*: share of C's displayed products that LED proposed (only LED); *ranker*: the click ranker's "
        "coefficients (standardised features, last day) on from_led / rr_led / led_score; *coverage*: distinct "
        "candidates ÷ the merchant's items (C); *precision*: share of a source's candidates among the merchant's "
        "true top k by P(click) (GBO / CBO / LED, population C); *candidates' best ÷ oracle* and *shown ÷ oracle*: "
        "expected clicks per banner of the best banner the candidates allow and of the banner shown, over the "
        "best of the whole catalogue (B / C); *median popularity*: pre-period viewers of displayed products "
        "(GBO / LED); *LED features*: expected clicks of C's banners over those the ranker shows from the same "
        "candidates with LED's three features zeroed, minus 1.",
        "",
        "| size | seed | LED share (only) | ranker from_led / rr_led / led_score | coverage "
        "| precision GBO / CBO / LED | candidates' best ÷ oracle B / C | shown ÷ oracle B / C "
        "| median popularity GBO / LED | LED features |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        led, t = r["led"], r["truth"]
        tb, tc = t.get("B", {}), t.get("C", {})
        prec = tc.get("precision", {})
        pop = led["median_popularity"]
        lines.append(
            f"| {_size(r)} | {r['seed']} | {led['share_of_voice']:.0%} ({led['share_of_voice_only']:.0%}) | "
            + " / ".join(_num(led["ranker"][k]) for k in LED_FEATURES)
            + f" | {_num(tc.get('coverage'), '{:.0%}')} | "
            + " / ".join(_num(prec.get(s), "{:.2f}") for s in SOURCES)
            + f" | {_num(tb.get('candidate_efficiency'), '{:.3f}')} / {_num(tc.get('candidate_efficiency'), '{:.3f}')}"
            + f" | {_num(tb.get('shown_over_oracle'), '{:.3f}')} / {_num(tc.get('shown_over_oracle'), '{:.3f}')}"
            + f" | {_num(pop.get('gbo'), '{:.0f}')} / {_num(pop.get('led'), '{:.0f}')}"
            + f" | {_num(tc.get('led_features_gain'), '{:+.1%}')} |"
        )
    lines += [
        "",
        "## Per size: seeds where C > B > A held",
        "",
        "| size | seeds | clicks: point / separated | clicks: C above / below B (separated) "
        "| mean C vs B clicks [pooled 95% CI] | sales: point / separated | sales: C above / below B (separated) "
        "| mean C vs B sales [pooled 95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in doc["by_size"]:
        c, v = s["clicks"], s["sales"]
        lines.append(
            f"| {_size(s)} | {s['seeds']} | {c['C_B_A_point']} / {c['C_B_A_separated']} | "
            f"{c['C_above_B_separated']} / {c['C_below_B_separated']} | "
            f"{_uplift(c['C_over_B_mean'], c['C_over_B_pooled_ci95'])} | "
            f"{v['C_B_A_point']} / {v['C_B_A_separated']} | {v['C_above_B_separated']} / {v['C_below_B_separated']} | "
            f"{_uplift(v['C_over_B_mean'], v['C_over_B_pooled_ci95'])} |"
        )
    lines.append("")
    return "\n".join(lines)


def _size(r: dict[str, Any]) -> str:
    return f"{r['n_users']:,} x {r['n_items']:,} x {r['n_merchants']}"


__all__ = ["Size", "configs", "markdown", "parse_seeds", "parse_sizes", "row", "run_sweep", "summarise"]
