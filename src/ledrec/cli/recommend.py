"""``ledrec recommend``: top-k for every user of an event table, in bulk (one machine or Spark)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledrec.cli import HELP
from ledrec.config import number


def register(sub: Any, name: str | None = None) -> None:
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
