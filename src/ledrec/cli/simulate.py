"""``ledrec simulate generate`` (the production-like log with its ground truth), ``ledrec simulate ab``
(the paper's A/B test, simulated) and ``ledrec simulate sweep`` (that test over world sizes and seeds)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ledrec.cli import HELP
from ledrec.cli.common import add_parsers
from ledrec.config import add_flags, from_args


def register(sub: Any, name: str | None = None) -> None:
    """Add ``simulate`` and its subcommands to the subcommands ``sub``."""
    add_parsers(sub, {"simulate": _parser_simulate}, name)


def _parser_simulate(sub: Any) -> None:
    simulate = sub.add_parser(
        "simulate",
        help=HELP["simulate"],
        description="A production-like retargeting world with a written-down ground truth "
        "(ledrec.simulate.world): merchants, countries, categories, prices, views, banner displays, "
        "clicks and sales.",
    )
    sim_sub = simulate.add_subparsers(dest="simulate_command", required=True, metavar="SIMULATE_COMMAND")
    _parser_generate(sim_sub)
    _parser_ab(sim_sub)
    _parser_sweep(sim_sub)


def _parser_generate(sim_sub: Any) -> None:
    from ledrec.simulate.world import ProductionConfig

    p = sim_sub.add_parser(
        "generate",
        help="write a production-like event log (events.parquet, items.parquet, manifest.json)",
        description="Generate the seeded production-like log: organic views across merchants and the banners "
        "of a logging policy with their displays, clicks and sales (sized by flags; 1M users x 100k items "
        "fits this box).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="directory to write")
    add_flags(p, ProductionConfig)
    p.set_defaults(func=cmd_simulate_generate)


def cmd_simulate_generate(args: argparse.Namespace) -> int:
    from ledrec.simulate.world import ProductionConfig, generate_world

    summary = generate_world(from_args(ProductionConfig, args), args.out)
    print(json.dumps({"path": args.out, **summary}, indent=2))
    return 0


def _parser_ab(sim_sub: Any) -> None:
    from ledrec.simulate.ab import SimulationConfig
    from ledrec.simulate.world import ProductionConfig

    p = sim_sub.add_parser(
        "ab",
        help="the paper's A/B test (GBO vs +CBO vs +CBO+LED), simulated; writes a report and plots",
        description="Split users at random into A (GBO), B (GBO+CBO) and C (GBO+CBO+LED) candidates, rank "
        "with one logistic-regression ranker retrained daily on every population's logged displays, draw "
        "clicks and sales from the ground truth, and report per-population outcomes with bootstrap 95% CIs, "
        "uplifts, share of voice and popularity per source (report.md, result.json, PNG plots).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="runs/simulate-ab", help="directory for report.md, result.json and plots")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--save-system",
        default=None,
        metavar="DIR",
        help="also write the final two-stage system (GBO, CBO, LED, ranker); 'ledrec serve DIR' then answers "
        "Banner calls as well as Recommend",
    )
    add_flags(p, ProductionConfig, skip=("seed",))
    add_flags(p, SimulationConfig, skip=("world",))
    p.set_defaults(func=cmd_simulate_ab)


def cmd_simulate_ab(args: argparse.Namespace) -> int:
    from ledrec.simulate.ab import SimulationConfig
    from ledrec.simulate.report import simulate_and_report
    from ledrec.simulate.world import ProductionConfig

    world = from_args(ProductionConfig, args, seed=args.seed)  # a seed is a new world, not only a new split
    config = from_args(SimulationConfig, args, world=world)
    command = "ledrec " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("ledrec") else "ledrec simulate ab"
    result, stats = simulate_and_report(
        config, args.out, command, progress=not args.quiet, save_system_dir=args.save_system
    )
    print(json.dumps({"out": args.out, "timings": result.timings, "uplift": stats["uplift"]}, indent=2))
    return 0


def _parser_sweep(sim_sub: Any) -> None:
    from ledrec.simulate.ab import SimulationConfig
    from ledrec.simulate.world import ProductionConfig

    p = sim_sub.add_parser(
        "sweep",
        help="the simulated A/B test over world sizes x seeds: where C > B > A holds, and why",
        description="Run 'ledrec simulate ab' for every size and seed (a seed draws a new world, split and "
        "log) and tabulate, per run: clicks and sales per user of A, B and C with bootstrap 95% CIs, C's "
        "uplift over B, whether C > B > A holds (by point estimate; with separated intervals), LED's share of "
        "voice, the click ranker's coefficients on LED's features, and the candidates checked against the "
        "ground truth (coverage, precision against the true top k, expected clicks of the best and the shown "
        "banner). Writes sweep.md, sweep.json and each run's report under --out; progress on stderr, the "
        "sweep as JSON on stdout. Other flags apply to every run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--sizes",
        default="5000x1000,10000x2000,20000x4000,50000x10000",
        help="comma-separated world sizes, USERSxITEMS (the merchants of --n-merchants) or USERSxITEMSxMERCHANTS",
    )
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds; each size runs once per seed")
    p.add_argument("--out", default="runs/simulate-sweep", help="directory for sweep.md, sweep.json and the runs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_flags(p, ProductionConfig, skip=("n_users", "n_items", "seed"))
    add_flags(p, SimulationConfig, skip=("world", "seed"))
    p.set_defaults(func=cmd_simulate_sweep)


def cmd_simulate_sweep(args: argparse.Namespace) -> int:
    from ledrec.simulate.ab import SimulationConfig
    from ledrec.simulate.sweep import parse_seeds, parse_sizes, run_sweep
    from ledrec.simulate.world import ProductionConfig

    sizes, seeds = parse_sizes(args.sizes), parse_seeds(args.seeds)
    base = from_args(SimulationConfig, args, world=from_args(ProductionConfig, args))
    command = "ledrec " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("ledrec") else "ledrec simulate sweep"
    doc = run_sweep(base, sizes, seeds, args.out, command, progress=not args.quiet)
    print(json.dumps({"out": args.out, **doc}, indent=2))
    return 0
