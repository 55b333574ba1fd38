"""What the A/B simulation shows, computed (never written in advance): per-population outcomes with
bootstrap 95% confidence intervals (users resampled), the uplift of C over A normalised by B over A
(the paper's Fig. 4), per-day series (Fig. 5), each source's share of the displayed products (Table 5) and
the popularity of displayed products per source (Fig. 6); a markdown report and PNG plots."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ledrec.io import atomic_path, write_json
from ledrec.simulate.ab import POPULATIONS, SimulationConfig, SimulationResult, simulate
from ledrec.twostage.ranker import SOURCES

METRICS = ("clicks", "sales", "value")


def bootstrap_means(per_user: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) means of ``per_user`` over ``n`` resamples of its users with replacement."""
    idx = rng.integers(0, len(per_user), (n, len(per_user)))
    return per_user[idx].mean(axis=1)


def analyse(result: SimulationResult) -> dict[str, Any]:
    c = result.config
    rng = np.random.default_rng([c.seed, 4])
    out: dict[str, Any] = {"populations": {}, "uplift": {}, "daily": {}, "share_of_voice": {}, "popularity": {}}
    boots: dict[tuple[str, str], np.ndarray] = {}
    for i, p in enumerate(POPULATIONS):
        members = result.population == i
        row: dict[str, Any] = {
            "sources": "+".join(s.upper() for s in POPULATIONS[p]),
            "users": int(members.sum()),
            "displays": int(result.displays[members].sum()),
        }
        for metric in METRICS:
            per_user = getattr(result, metric)[members].sum(axis=1)  # over the reported days
            boots[p, metric] = b = bootstrap_means(per_user, c.bootstrap, rng)
            lo, hi = np.percentile(b, [2.5, 97.5])
            row[metric] = {"per_user": float(per_user.mean()), "ci95": [float(lo), float(hi)]}
        row["ctr"] = float(result.clicks[members].sum() / max(result.displays[members].sum(), 1))
        out["populations"][p] = row
        out["daily"][p] = {m: getattr(result, m)[members].mean(axis=0).tolist() for m in METRICS}
    for metric in METRICS:
        a, b, cc = (boots[p, metric] for p in "ABC")
        point = {p: out["populations"][p][metric]["per_user"] for p in "ABC"}
        ci = {p: out["populations"][p][metric]["ci95"] for p in "ABC"}
        out["uplift"][metric] = {
            "B_over_A": _ratio(point["B"], point["A"], -1.0),
            "C_over_A": _ratio(point["C"], point["A"], -1.0),
            "B_over_A_ci95": _ratio_ci(b, a, -1.0),
            "C_over_A_ci95": _ratio_ci(cc, a, -1.0),
            "C_over_B": _ratio(point["C"], point["B"], -1.0),  # the question LED answers: does it add to B?
            "C_over_B_ci95": _ratio_ci(cc, b, -1.0),
            "C_over_A_normalised_by_B": _ratio(point["C"] - point["A"], point["B"] - point["A"]),
            "normalised_ci95": _ratio_ci(cc - a, b - a),
            "order_C_B_A_separated": bool(ci["C"][0] > ci["B"][1] and ci["B"][0] > ci["A"][1]),
            "order_C_B_A_point": bool(point["C"] > point["B"] > point["A"]),
        }
    for p, flags in result.shown_sources.items():
        n = max(len(flags), 1)
        exclusive = flags & (flags.sum(axis=1, keepdims=True) == 1)
        out["share_of_voice"][p] = {
            s: {"proposed": float(flags[:, j].sum() / n), "only": float(exclusive[:, j].sum() / n)}
            for j, s in enumerate(SOURCES)
            if s in POPULATIONS[p]
        }
    flags_c, pop_c = result.shown_sources["C"], result.shown_popularity["C"]
    for j, s in enumerate(SOURCES):
        pops = pop_c[flags_c[:, j]]
        if len(pops):
            out["popularity"][s] = {
                "median": float(np.median(pops)),
                "mean": float(pops.mean()),
                "quartiles": np.percentile(pops, [25, 75]).tolist(),
                "displays": len(pops),
            }
    out["truth"] = truth_summary(result.diagnostics)
    return out


def truth_summary(diagnostics: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Per population, the averages of :func:`~ledrec.simulate.ab.truth_diagnostics`' sums: coverage of the
    merchant's catalogue by the candidates, expected clicks per banner (oracle, the candidates' best, shown,
    and shown had the ranker been blind to LED's features) and, per source, precision against the ground
    truth's top k, mean P₀ and share on the browsed intent."""
    out: dict[str, Any] = {}
    for p, d in diagnostics.items():
        n = d.get("requests", 0.0)
        if not n:
            continue
        out[p] = {
            "requests": int(n),
            "candidates_per_request": d["candidates"] / n,
            "coverage": d["candidates"] / d["merchant_items"],
            "clicks_per_banner": {k: d[k] / n for k in ("oracle", "ceiling", "shown", "shown_without_led") if k in d},
            # > 0: the ranker's LED features raise the expected clicks of C's banners, < 0 they lower them
            "led_features_gain": _ratio(d["shown"], d["shown_without_led"], -1.0) if "shown_without_led" in d else None,
            "candidate_efficiency": _ratio(d["ceiling"], d["oracle"]),
            "ranking_efficiency": _ratio(d["shown"], d["ceiling"]),
            "sources": {
                s: {
                    "precision": d[f"{s}.hits"] / d[f"{s}.proposed"],
                    "mean_p0": d[f"{s}.p0"] / d[f"{s}.proposed"],
                    "intent_share": d[f"{s}.intent"] / d[f"{s}.proposed"],
                }
                for s in SOURCES
                if d.get(f"{s}.proposed")
            },
        }
    return out


def _ratio(num: float, den: float, offset: float = 0.0) -> float | None:
    return None if den == 0 else num / den + offset


def _ratio_ci(num: np.ndarray, den: np.ndarray, offset: float = 0.0) -> list[float] | None:
    """95% percentile interval of num/den + offset over bootstrap replicas (replicas with den = 0 dropped)."""
    ok = den != 0
    return np.percentile(num[ok] / den[ok] + offset, [2.5, 97.5]).tolist() if ok.any() else None


def answers(stats: dict[str, Any]) -> list[str]:
    """The issue's three questions, answered from the numbers."""
    lines = []
    for metric in ("clicks", "sales"):
        u = stats["uplift"][metric]
        pops = stats["populations"]
        order = sorted("ABC", key=lambda p: -pops[p][metric]["per_user"])
        lines.append(
            f"- **{metric}**: order by point estimate {' > '.join(order)}; "
            f"C > B > A with non-overlapping 95% CIs: **{'yes' if u['order_C_B_A_separated'] else 'no'}**."
        )
    share = stats["share_of_voice"]["C"]
    largest = max(share, key=lambda s: share[s]["proposed"])
    lines.append(
        f"- **Share of voice in C**: the largest is {largest.upper()} "
        f"({share[largest]['proposed']:.0%} of displayed products proposed by it); LED's share is largest: "
        f"**{'yes' if largest == 'led' else 'no'}**."
    )
    pop = stats["popularity"]
    if "led" in pop and "gbo" in pop:
        less = pop["led"]["median"] < pop["gbo"]["median"]
        lines.append(
            f"- **Popularity**: median pre-period viewers of displayed products, LED {pop['led']['median']:.0f} vs "
            f"GBO {pop['gbo']['median']:.0f}; LED's items are less popular: **{'yes' if less else 'no'}**."
        )
    return lines


def plot(result: SimulationResult, stats: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    # Fig. 4: uplift over A with CIs
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, metric in enumerate(METRICS):
        u = stats["uplift"][metric]
        for j, p in enumerate("BC"):
            if u[f"{p}_over_A"] is None or u[f"{p}_over_A_ci95"] is None:
                continue
            point, (lo, hi) = u[f"{p}_over_A"], u[f"{p}_over_A_ci95"]
            ax.errorbar(
                k + (j - 0.5) * 0.25,
                100 * point,
                yerr=[[100 * (point - lo)], [100 * (hi - point)]],
                fmt="o",
                color=f"C{j}",
                label=p if k == 0 else None,
                capsize=4,
            )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(METRICS)), METRICS)
    ax.set_ylabel("uplift over A (%)")
    ax.set_title("Uplift over GBO (A); B = +CBO, C = +CBO+LED; 95% CI")
    ax.legend()
    paths.append(_save(fig, out / "uplift.png"))
    # Fig. 5: per-day clicks per user
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    days = np.arange(result.config.warmup_days + 1, result.config.test_days + 1)
    for ax, metric in zip(axes, ("clicks", "sales"), strict=True):
        for j, p in enumerate("ABC"):
            ax.plot(
                days,
                stats["daily"][p][metric],
                marker=".",
                color=f"C{j}",
                label=f"{p} ({stats['populations'][p]['sources']})",
            )
        ax.set_xlabel("simulated day")
        ax.set_ylabel(f"{metric} per user")
    axes[0].legend(fontsize=8)
    paths.append(_save(fig, out / "daily.png"))
    # Fig. 6: popularity of displayed products per source (population C)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    flags, pops = result.shown_sources["C"], result.shown_popularity["C"]
    for j, s in enumerate(SOURCES):
        x = np.sort(pops[flags[:, j]])
        if len(x):
            ax.plot(np.maximum(x, 1), np.linspace(0, 1, len(x)), label=s.upper(), color=f"C{j}")
    ax.set_xscale("log")
    ax.set_xlabel("pre-period viewers of the displayed product")
    ax.set_ylabel("share of displays (CDF)")
    ax.set_title("Popularity of displayed products per source (population C)")
    ax.legend()
    paths.append(_save(fig, out / "popularity.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _pct(point: float | None, ci: list[float] | None, fmt: str) -> str:
    if point is None:
        return "–"
    return fmt.format(point) + ("" if ci is None else " [" + ", ".join(fmt.format(x) for x in ci) + "]")


def markdown(result: SimulationResult, stats: dict[str, Any], command: str) -> str:
    c = result.config
    lines = [
        "# Simulated A/B test: GBO (A) vs GBO+CBO (B) vs GBO+CBO+LED (C)",
        "",
        f"Command: `{command}`  ",
        f"World: {c.world.n_users:,} users, {c.world.n_items:,} items, {c.world.n_merchants} merchants, "
        f"{c.world.n_countries} countries, {c.world.n_categories} categories; {c.world.days} pre-period days, "
        f"{c.test_days} test days of which the first {c.warmup_days} (random ranking, exploration) are not "
        f"reported; banners of {c.banner_size} from {c.candidates_per_source} candidates per source; LED's query "
        f"gives the viewed item a share {c.trigger_share:g}, the ranker reads its {c.led_score} score; "
        f"seed {c.seed}.  ",
        f"Wall time: {result.timings['total_s']:.0f} s (models of the pre-period {result.timings['models_s']:.0f} s).",
        "",
        "## Answers",
        *answers(stats),
        "",
        f"## Outcomes per user over the reported days (bootstrap 95% CI, users resampled {c.bootstrap} times)",
        "",
        "| population | sources | users | displays | CTR | clicks/user | sales/user | order value/user |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p, row in stats["populations"].items():
        cells = [f"{row[m]['per_user']:.3f} [{row[m]['ci95'][0]:.3f}, {row[m]['ci95'][1]:.3f}]" for m in METRICS]
        lines.append(
            f"| {p} | {row['sources']} | {row['users']:,} | {row['displays']:,} | {row['ctr']:.2%} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "## Uplift over A (Fig. 4)",
        "",
        "| metric | B over A | C over A | C over A ÷ B over A |",
        "|---|---|---|---|",
    ]
    for m, u in stats["uplift"].items():
        cells = [
            _pct(u["B_over_A"], u["B_over_A_ci95"], "{:+.1%}"),
            _pct(u["C_over_A"], u["C_over_A_ci95"], "{:+.1%}"),
            _pct(u["C_over_A_normalised_by_B"], u["normalised_ci95"], "{:.2f}"),
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Share of voice after ranking (Table 5)",
        "",
        "Share of displayed products that each source proposed (an item proposed by several sources counts "
        "for each; *only*: proposed by that source alone).",
        "",
        "| population | " + " | ".join(s.upper() for s in SOURCES) + " |",
        "|---|" + "---|" * len(SOURCES),
    ]
    for p, share in stats["share_of_voice"].items():
        cells = [f"{share[s]['proposed']:.1%} (only {share[s]['only']:.1%})" if s in share else "–" for s in SOURCES]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Popularity of displayed products per source, population C (Fig. 6)",
        "",
        "| source | displays | median pre-period viewers | quartiles |",
        "|---|---|---|---|",
    ]
    for s, row in stats["popularity"].items():
        lines.append(
            f"| {s.upper()} | {row['displays']:,} | {row['median']:.0f} | "
            f"{row['quartiles'][0]:.0f}–{row['quartiles'][1]:.0f} |"
        )
    if stats.get("truth"):
        lines += [
            "",
            "## Candidates and banners against the ground truth",
            "",
            f"On {c.diagnostic_requests:,} requests per population and reported day: P₀ = the true P(click) at the "
            "first position; *coverage* = distinct candidates ÷ the merchant's items; expected clicks per banner of "
            "the best banner of the merchant's catalogue (*oracle*), of the best the candidates allow, of the one "
            "shown, and of the one the ranker shows when blind to LED's features (population C); per source, "
            "*precision* = share of its candidates among the merchant's true top "
            f"{c.candidates_per_source} by P₀, and the share on the browsed category or its complement.",
            "",
            "| population | candidates | coverage | oracle | candidates' best | shown | shown, LED features zeroed "
            "| precision | on the browsed intent |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p, t in stats["truth"].items():
            k = t["clicks_per_banner"]
            blind = k.get("shown_without_led")
            src = t["sources"]
            lines.append(
                f"| {p} | {t['candidates_per_request']:.1f} | {t['coverage']:.0%} | {k['oracle']:.3f} | "
                f"{k['ceiling']:.3f} | {k['shown']:.3f} | {'–' if blind is None else f'{blind:.3f}'} | "
                + ", ".join(f"{s.upper()} {v['precision']:.2f}" for s, v in src.items())
                + " | "
                + ", ".join(f"{s.upper()} {v['intent_share']:.0%}" for s, v in src.items())
                + " |"
            )
    coefs = result.ranker_coefficients
    if coefs:
        lines += [
            "",
            "## The click ranker's coefficients (standardised features, last day)",
            "",
            ", ".join(f"{k} {v:+.3f}" for k, v in coefs.items()),
        ]
    lines += ["", "Plots: `uplift.png` (Fig. 4), `daily.png` (Fig. 5), `popularity.png` (Fig. 6).", ""]
    return "\n".join(lines)


def write_report(result: SimulationResult, out: str | Path, command: str) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = analyse(result)
    plot(result, stats, out)
    with atomic_path(out / "report.md") as tmp:
        Path(tmp).write_text(markdown(result, stats, command))
    write_json(
        out / "result.json",
        {"config": asdict(result.config), "timings": result.timings, "pre_period": result.pre_period, **stats},
    )
    return stats


def simulate_and_report(
    config: SimulationConfig,
    out: str | Path,
    command: str,
    *,
    progress: bool = True,
    save_system_dir: str | None = None,
) -> tuple[SimulationResult, dict[str, Any]]:
    """``ledrec simulate ab``: :func:`~ledrec.simulate.ab.simulate` (with ``save_system_dir``, the final
    two-stage system is written there too), then :func:`write_report` into ``out`` with ``command`` as the
    command that made it. Returns the result and the report's statistics."""
    result = simulate(config, progress=progress, save_system_dir=save_system_dir)
    return result, write_report(result, out, command)


__all__ = ["analyse", "answers", "bootstrap_means", "markdown", "plot", "simulate_and_report", "write_report"]
