"""``ledrec pretrain``: PMI + randomized SVD item embeddings of a dataset, on this machine or on Spark."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledrec.cli import HELP
from ledrec.cli.common import DATA_HELP, add_parsers, feedback_list, protocol_options
from ledrec.config import number
from ledrec.data import PROTOCOLS


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
    p.add_argument(
        "--seed", type=number(int, low=0), default=0, help="seed of the randomized SVD (and of the protocol's split)"
    )
    _add_embedding_flags(p)
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


def _add_embedding_flags(p: argparse.ArgumentParser) -> None:
    """The fields of :class:`ledrec.pretrain.PretrainConfig` but the seed."""
    p.add_argument("--dim", type=number(int, low=1), default=128, help="embedding dimension")
    p.add_argument(
        "--alpha", type=number(float, low=0.0, high=1.0), default=0.75, help="context-count smoothing exponent (§9.3)"
    )
    p.add_argument(
        "--shift", type=number(float, low=0.0, low_open=True), default=1.0, help="shifted PMI: subtract log(shift)"
    )
    p.add_argument("--keep-negative", action="store_true", help="keep negative PMI values (default: clip at 0)")
    p.add_argument("--min-count", type=number(int, low=1), default=1, help="drop items with fewer co-occurrences")
    p.add_argument(
        "--window", type=number(int, low=1), default=None, help="count pairs within W positions of a timeline only"
    )
    p.add_argument("--power", type=number(float, low=0.0), default=1.0, help="embeddings = U·S^power")
    p.add_argument("--no-normalize", action="store_true", help="do not L2-normalise item vectors")
    p.add_argument("--n-iter", type=number(int, low=0), default=5, help="power iterations of the randomized SVD")


def cmd_pretrain(args: argparse.Namespace) -> int:
    from ledrec.pretrain import PretrainConfig, pretrain_dataset

    config = PretrainConfig(
        dim=args.dim,
        alpha=args.alpha,
        shift=args.shift,
        positive=not args.keep_negative,
        min_count=args.min_count,
        window=args.window,
        power=args.power,
        normalize=not args.no_normalize,
        n_iter=args.n_iter,
        seed=args.seed,
    )
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
