"""``ledrec look``: a web page on 127.0.0.1 for looking at what the models recommend (docs/look.md)."""

from __future__ import annotations

import argparse
from typing import Any

from ledrec.cli import HELP
from ledrec.config import number
from ledrec.errors import ConfigError


def register(sub: Any, name: str | None = None) -> None:
    p = sub.add_parser(
        "look",
        help=HELP["look"],
        description="Serve pages for looking at recommendations: the paper's Figure 8 (a user of --events, or a "
        "history typed by title, beside GBO's, CBO's and LED's top k, per catalogue), an item's nearest items "
        "and the histories it is in, a map of the item vectors (t-SNE, coloured by category), and for a "
        "published root the daily job's versions, metrics, gate decisions and rollbacks. Prints one JSON line "
        "with the URL once it listens; logs to stderr; stops on Ctrl-C. Needs pip install -e '.[look]'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="a run directory, a serving export, a published version, or a published root")
    p.add_argument(
        "--items",
        default=None,
        metavar="META",
        help="item table (CSV, Parquet, JSON lines; an id column such as item, movieId, sku) with title, category "
        "(genres), image, …: shown wherever an item is",
    )
    p.add_argument(
        "--events",
        default=None,
        help="event table (Parquet file or folder, or CSV: user, item, …): its users can be picked, it gives "
        "popularity and the GBO and CBO baselines",
    )
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="another model shown beside LED under LABEL (a run directory, export or published root, e.g. "
        "als=runs/als); repeat for several",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (the pages have no login: keep it local)")
    p.add_argument("--port", type=number(int, low=0, high=65535), default=8050, help="port; 0: one the system picks")
    p.add_argument("--map", choices=("tsne", "pca"), default="tsne", help="the map's projection (t-SNE: seconds, once)")
    p.add_argument(
        "--map-items", type=number(int, low=2, high=20000), default=3000, help="the map's items: the most popular"
    )
    p.set_defaults(func=cmd_look)


def cmd_look(args: argparse.Namespace) -> int:
    try:
        from ledrec.look.app import serve
        from ledrec.look.data import Look, LookError
    except ImportError as exc:
        raise ConfigError(f"ledrec look needs the web packages ({exc.name}): pip install -e '.[look]'") from None
    try:
        also = {}
        for text in args.also:
            label, sep, where = text.partition("=")
            if not sep or not label or not where:
                raise ConfigError(f"--also {text!r}: expected LABEL=DIR, e.g. als=runs/als")
            if label in also:
                raise ConfigError(f"--also {label}: given twice")
            also[label] = where
        look = Look(args.model, args.items, args.events, map_items=args.map_items, map_method=args.map, also=also)
    except LookError as exc:
        raise ConfigError(str(exc)) from None
    serve(look, args.host, args.port, verbose=args.verbose)
    return 0
