"""``ledrec recommend``: top-k for every user of an event table, in bulk (one machine or Spark); ``ledrec
similar``: the items most alike to an item, as the service's Similar call answers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledrec.cli import HELP
from ledrec.cli.common import add_parsers
from ledrec.config import number


def register(sub: Any, name: str | None = None) -> None:
    """Add ``recommend`` and ``similar`` (or only command ``name``) to the subcommands ``sub``."""
    add_parsers(sub, {"recommend": _parser_recommend, "similar": _parser_similar}, name)


def _parser_similar(sub: Any) -> None:
    p = sub.add_parser(
        "similar",
        help=HELP["similar"],
        description="The k items most alike to an item, as the service's Similar call answers it: the cosine of "
        "the model's item similarity vectors (docs/similar.md), from the item's catalogue (or --partition), the "
        "item itself never. Prints JSON; with --items, each item's title, category, … beside its id.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="a run directory, a serving export, a published version, or a published root")
    p.add_argument("--item", action="append", default=[], metavar="ID", help="an item id (repeat for several)")
    p.add_argument(
        "--title",
        action="append",
        default=[],
        metavar="WORDS",
        help="an item found by title in --items (every word, case and accents ignored; the model's most popular "
        "match); repeat for several",
    )
    p.add_argument("--k", type=number(int, low=1, high=1000), default=10, help="items per answer")
    p.add_argument("--partition", default=None, help="answer from this catalogue (default: the item's own)")
    p.add_argument("--items", default=None, metavar="META", help="item table to show items by (README: Data)")
    p.set_defaults(func=cmd_similar)


def cmd_similar(args: argparse.Namespace) -> int:
    from ledrec.serve.batch import similar

    print(json.dumps(similar(args.model, args.item, args.k, args.partition, args.items, args.title)))
    return 0


def _parser_recommend(sub: Any) -> None:
    from ledrec.serve.batch import BATCH_EF

    p = sub.add_parser(
        "recommend",
        help=HELP["recommend"],
        description="Write (user, rank, item, score) for every user of an event table, by the service's rules: "
        "each user's distinct known items are the history, answers come from the user's catalogue (the table's "
        "partition column; a published root routes each catalogue to its current version), the history is "
        "excluded, a user with no known item gets the highest-bias items. Scored in chunks of users by the "
        "service's own index (the cached graph of a large catalogue; --exact: every item). --items adds each "
        "item's metadata (title, category, image, price, other columns) to its rows.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="a run directory, a serving export, a published version, or a published root")
    p.add_argument("--histories", required=True, help="event table: Parquet file or folder, or CSV (user, item, …)")
    p.add_argument("--out", required=True, help="Parquet file to write (with --engine spark: a folder)")
    p.add_argument("--k", type=number(int, low=1, high=1000), default=20, help="items per user")
    p.add_argument("--partition", default=None, help="score every user in this catalogue (tables without one)")
    p.add_argument("--include-seen", action="store_true", help="allow the history's own items")
    p.add_argument(
        "--exact", action="store_true", help="score every item of the catalogue instead of searching its graph"
    )
    p.add_argument(
        "--ef",
        type=number(int, low=1),
        default=BATCH_EF,
        help="search effort of a catalogue's graph (recall@20 against exact at 330k items: .879 at the service's "
        "100, .986 at 200, .997 at 400; docs/pipeline.md)",
    )
    p.add_argument("--chunk-users", type=number(int, low=1), default=4096, help="users scored per matrix product")
    p.add_argument(
        "--items",
        default=None,
        metavar="META",
        help="item table (CSV, Parquet file or folder, JSON lines; an id column such as item, item_id, movieId, "
        "sku) whose columns are joined on item: title, category, image, price and any other; read and checked "
        "before scoring; --engine local only (refused with spark)",
    )
    p.add_argument("--engine", choices=("local", "spark"), default="local", help="this machine, or PySpark")
    p.add_argument("--master", default="local[2]", help="Spark master for --engine spark")
    p.add_argument("--overwrite", action="store_true", help="replace --out when it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_recommend)


def cmd_recommend(args: argparse.Namespace) -> int:
    from ledrec.serve.batch import run_recommend

    summary = run_recommend(
        args.model,
        args.histories,
        args.out,
        k=args.k,
        exclude_seen=not args.include_seen,
        partition=args.partition,
        chunk_users=args.chunk_users,
        exact=args.exact,
        ef=args.ef,
        engine=args.engine,
        master=args.master,
        overwrite=args.overwrite,
        progress=not args.quiet,
        items=args.items,
    )
    print(json.dumps(summary))
    return 0
