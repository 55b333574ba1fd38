"""``ledrec pretrain``: PMI + randomized SVD item embeddings of a dataset, on this machine or on Spark."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledrec.cli import HELP
from ledrec.cli.common import DATA_HELP, add_parsers, feedback_list, protocol_options
from ledrec.config import add_flags, from_args
from ledrec.data import PROTOCOLS
from ledrec.pretrain.embeddings import PretrainConfig


def register(sub: Any, name: str | None = None) -> None:
    """Add ``pretrain`` to the subcommands ``sub``."""
    add_parsers(sub, {"pretrain": _parser_pretrain}, name)


def _parser_pretrain(sub: Any) -> None:
    p = sub.add_parser(
        "pretrain",
        help=HELP["pretrain"],
        description="Count item co-occurrences in user timelines, compute (shifted positive) PMI with smoothed "
        "context counts, factorise it with randomized SVD and write the item embeddings (npy + manifest). With "
        "--protocol, only the protocol's training data is used (so that 'ledrec run --model led --embeddings DIR' "
        "does not leak held-out users); without, all events of the chosen --feedback types.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--out", required=True, help="artifact folder to write")
    p.add_argument("--protocol", choices=PROTOCOLS, default=None, help="pre-train on this protocol's training data")
    p.add_argument("--format", default=None, help="force a reader")
    p.add_argument("--feedback", default=None, help="comma-separated event types to use (the paper: views)")
    add_flags(p, PretrainConfig)  # (--seed also seeds the protocol's split)
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: this machine, bounded memory; spark: PySpark (pip install 'ledrec[spark]', Java 17+)",
    )
    p.add_argument("--master", default="local[2]", help="Spark master: local[N], spark://host:port, yarn")
    p.add_argument("--driver-memory", default="8g", help="Spark driver memory (it holds the n × k SVD blocks)")
    p.add_argument("--min-rating", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--heldout-users", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--valid-fraction", type=float, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_pretrain)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from ledrec.pretrain import pretrain_dataset

    config = from_args(PretrainConfig, args)
    emb = pretrain_dataset(
        args.data,
        config,
        protocol=args.protocol,
        format=args.format,
        feedback=feedback_list(args),
        protocol_options=protocol_options(args) if args.protocol else None,
        engine=args.engine,
        master=args.master,
        driver_memory=args.driver_memory,
        progress=True,
    )
    emb.save(args.out)
    print(json.dumps({"out": args.out, "items": len(emb.vectors), "dim": emb.dim, **emb.stats}, indent=2))
    return 0
