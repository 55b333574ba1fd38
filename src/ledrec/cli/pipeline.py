"""``ledrec pipeline``: the daily job (run), and what an operator does around it (status, rollback)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledrec.cli import HELP

ACTIONS = ("run", "status", "rollback")


def register(sub: Any, name: str | None = None) -> None:
    """Add ``pipeline run|status|rollback`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "pipeline",
        help=HELP["pipeline"],
        description="The daily job of the seed paper (§6.1, §6.3), per catalogue: events (a time window of a "
        "Parquet file or folder) -> PMI + randomized SVD -> LED -> export and index -> holdout (the last day) "
        "-> quality gate against the published model -> a new immutable version, 'current' switched "
        "atomically; a running 'ledrec serve ROOT' picks it up. 'ledrec pipeline CONFIG' is 'ledrec pipeline "
        "run CONFIG'.",
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
        "a stage whose inputs did not change is reused, and a killed run resumes.",
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
    print(json.dumps(run_pipeline(config, progress=not args.quiet), indent=2))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ledrec.export.publish import status

    print(json.dumps(status(args.root), indent=2))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from ledrec.export.publish import rollback_catalogue

    before, after = rollback_catalogue(args.root, args.catalogue, args.to)
    print(json.dumps({"root": args.root, "from": before, "to": after}))
    return 0


def normalize(argv: list[str]) -> list[str]:
    """``ledrec pipeline CONFIG …`` means ``ledrec pipeline run CONFIG …``."""
    at = argv.index("pipeline") if "pipeline" in argv else -1
    if at >= 0 and at + 1 < len(argv) and argv[at + 1] not in (*ACTIONS, "-h", "--help"):
        return [*argv[: at + 1], "run", *argv[at + 1 :]]
    return argv
