"""``ledrec pipeline``: the daily job (run), and what an operator does around it (status, rollback)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledrec.cli import HELP
from ledrec.cli.common import add_parsers
from ledrec.config import number

ACTIONS = ("run", "status", "rollback")
# `ledrec pipeline run`'s exit status when the gate refused a catalogue's new model (the report is printed
# all the same): a scheduler must be able to tell it from success (0) and from a user error (2)
EXIT_REFUSED = 3


def register(sub: Any, name: str | None = None) -> None:
    """Add ``pipeline run|status|rollback`` and ``fold-in`` (or only command ``name``) to ``sub``."""
    add_parsers(sub, {"pipeline": _parser_pipeline, "fold-in": _parser_fold_in}, name)


def _parser_pipeline(sub: Any) -> None:
    p = sub.add_parser(
        "pipeline",
        help=HELP["pipeline"],
        description="The daily job of the seed paper (§6.1, §6.3), per catalogue: events (a time window of a "
        "Parquet file or folder) -> PMI + randomized SVD -> LED -> export and index -> holdout (the last day) "
        "-> quality gate against the published model -> a new immutable version, 'current' switched "
        "atomically; a running 'ledrec serve ROOT' picks it up. 'ledrec pipeline CONFIG' is 'ledrec pipeline "
        f"run CONFIG'. Exit status of run: 0 every catalogue published or unchanged, {EXIT_REFUSED} the gate "
        "refused a catalogue's new model (the published one keeps serving; the JSON report is printed all the "
        "same), 2 a user error (one line on stderr).",
    )
    actions = p.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")
    _parser_run(actions)
    q = actions.add_parser("status", help="each catalogue's current version, metrics and kept versions (JSON)")
    q.add_argument("root", help="a published root (the pipeline's --out)")
    q.set_defaults(func=cmd_status)
    q = actions.add_parser(
        "rollback", help="switch a catalogue's current version back (to the one before it, or --to VERSION)"
    )
    q.add_argument("root", help="a published root (the pipeline's --out)")
    q.add_argument("--catalogue", default=None, help="which catalogue (needed when the root has several)")
    q.add_argument("--to", default=None, help="the version to serve (default: the one published before the current)")
    q.set_defaults(func=cmd_rollback)


def _parser_run(actions: Any) -> None:
    from ledrec.pipeline.config import OPTIONS

    p = actions.add_parser(
        "run",
        help="run the daily job for every catalogue (resumable; prints the report as JSON)",
        description="Settings come from CONFIG (TOML: the keys below, LED's options in a [led] table), then "
        "from the flags given. Each stage's output is kept under WORK (default OUT/.work) keyed by its inputs: "
        "a stage whose inputs did not change is reused, and a killed run resumes. The report (JSON, stdout) "
        "has a 'warnings' list (a holdout too small to decide on, a timestamp read as milliseconds, …), also "
        f"said on stderr. Exit status: 0 published or unchanged, {EXIT_REFUSED} the gate refused a catalogue's "
        "new model (the report is printed all the same), 2 a user error.",
    )
    p.add_argument("config", nargs="?", default=None, help="a TOML file (optional when the flags say everything)")
    g = p.add_argument_group("pipeline options (also keys of CONFIG)")
    for o in OPTIONS:
        default = "" if o.default in (None, "") else f" (default: {o.default})"
        g.add_argument(
            "--" + o.name.replace("_", "-"),
            dest=o.name,
            default=None,
            type=lambda text, o=o: o.parse(text)[0],
            help=f"{o.help}; {o.describe()}{default}",
        )
    p.add_argument(
        "--led",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an LED option over CONFIG's [led] table, repeatable (e.g. --led dim=64 --led epochs=5); "
        "default LED: SVD init, project tuning (the paper's production choice), the rest as help(ledrec.LED)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from ledrec.pipeline.config import OPTIONS, load, parse_assignment
    from ledrec.pipeline.daily import run_pipeline

    overrides = {o.name: getattr(args, o.name) for o in OPTIONS}
    config = load(args.config, overrides, led=dict(parse_assignment(a) for a in args.led))
    report = run_pipeline(config, progress=not args.quiet)
    print(json.dumps(report, indent=2))
    refused = any(part["decision"] == "refused" for part in report["catalogues"].values())
    return EXIT_REFUSED if refused else 0


def cmd_status(args: argparse.Namespace) -> int:
    from ledrec.export.publish import status

    print(json.dumps(status(args.root), indent=2))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from ledrec.export.publish import rollback_catalogue

    before, after = rollback_catalogue(args.root, args.catalogue, args.to)
    print(json.dumps({"root": args.root, "from": before, "to": after}))
    return 0


def _parser_fold_in(sub: Any) -> None:
    from ledrec.export.foldin import METHODS

    p = sub.add_parser(
        "fold-in",
        help=HELP["fold-in"],
        description="Between two daily runs: the items of the recent events that a catalogue's current version "
        "does not know get a vector (a calibrated, PMI-weighted mean of the items they co-occur with) and a "
        "bias (from their early popularity); they join the model as a new version whose index is the old graph "
        "extended (add_items), self-checked, and 'current' switches to it. The next daily run replaces it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("root", help="a published root (the pipeline's --out)")
    p.add_argument("--events", required=True, help="the recent event table (Parquet file or folder, or CSV)")
    p.add_argument("--days", type=number(float, low=0.0, low_open=True), default=1.0, help="recent = this many days")
    p.add_argument("--since", default=None, help="recent = from this time (ISO date or seconds) instead of --days")
    p.add_argument("--catalogue", action="append", default=None, help="only this catalogue (repeatable)")
    p.add_argument("--method", choices=METHODS, default="pmi", help="how a new item's vector is made")
    p.add_argument("--min-users", type=number(int, low=1), default=2, help="users a new item needs in the events")
    p.add_argument("--keep", type=number(int, low=1), default=5, help="versions kept per catalogue")
    p.add_argument("--partition-column", default="", help="the events' catalogue column (default: by name)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_fold_in)


def cmd_fold_in(args: argparse.Namespace) -> int:
    from ledrec.pipeline.foldin import fold_in_published

    report = fold_in_published(
        args.root,
        args.events,
        catalogues=args.catalogue,
        days=None if args.since else args.days,
        since=args.since,
        method=args.method,
        min_users=args.min_users,
        keep=args.keep,
        partition_column=args.partition_column,
        progress=not args.quiet,
    )
    print(json.dumps(report, indent=2))
    return 0


def normalize(argv: list[str]) -> list[str]:
    """``ledrec pipeline CONFIG …`` means ``ledrec pipeline run CONFIG …``."""
    at = argv.index("pipeline") if "pipeline" in argv else -1
    if at >= 0 and at + 1 < len(argv) and argv[at + 1] not in (*ACTIONS, "-h", "--help"):
        return [*argv[: at + 1], "run", *argv[at + 1 :]]
    return argv
