"""``ledrec info`` (a dataset's counts) and ``ledrec generate`` (the synthetic event log as Parquet)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledrec.cli import HELP
from ledrec.cli.common import DATA_HELP, add_parsers
from ledrec.config import add_flags, from_args


def register(sub: Any, name: str | None = None) -> None:
    """Add ``info`` and ``generate`` (or only command ``name``) to the subcommands ``sub``."""
    add_parsers(sub, {"info": _parser_info, "generate": _parser_generate}, name)


def _parser_info(sub: Any) -> None:
    p = sub.add_parser(
        "info",
        help=HELP["info"],
        description="Read a dataset with the detected (or named) reader and print counts as JSON.",
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--format", default=None, help="force a reader")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from ledrec.data.load import describe

    print(json.dumps(describe(args.data, args.format), indent=2))
    return 0


def _parser_generate(sub: Any) -> None:
    from ledrec.data.synthetic import SyntheticConfig

    p = sub.add_parser(
        "generate",
        help=HELP["generate"],
        description="Generate the seeded synthetic event log (views, clicks, sales, partitions) "
        "described in ledrec.data.synthetic and write it as Parquet.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="Parquet file to write (a .json sidecar holds the config)")
    add_flags(p, SyntheticConfig)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from ledrec.data.synthetic import SyntheticConfig, write_synthetic

    print(json.dumps(write_synthetic(args.out, from_args(SyntheticConfig, args)), indent=2))
    return 0
