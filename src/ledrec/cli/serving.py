"""``ledrec export`` (the serving form of a run) and ``ledrec serve`` (the gRPC service). Neither imports
torch or the training code."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ledrec.cli import HELP
from ledrec.cli.common import add_parsers
from ledrec.config import number


def register(sub: Any, name: str | None = None) -> None:
    """Add ``export`` and ``serve`` (or only command ``name``) to the subcommands ``sub``."""
    add_parsers(sub, {"export": _parser_export, "serve": _parser_serve}, name)


# ------------------------------------------------------------------------------------------------ export
def _parser_export(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help=HELP["export"],
        description="Export a trained LED (or raw SVD) run directory for serving: item vectors with the bias as "
        "an extra dimension, the encoder, and one catalogue per partition (country/merchant) read from --data's "
        "partition column. Writes RUN_DIR/serving (or --out).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run_dir", help="a directory written by 'ledrec run --out'")
    p.add_argument("--data", default=None, help="events with a partition column, for one catalogue per partition")
    p.add_argument("--format", default=None, help="force a reader for --data")
    p.add_argument("--out", default=None, help="where to write the export (default RUN_DIR/serving)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ledrec.export.loading import export_run

    serving, path, note = export_run(args.run_dir, args.data, args.format, args.out)
    if note:
        print(f"ledrec export: note: {note}", file=sys.stderr)
    sizes = {name: len(items) for name, items in serving.partitions.items()}
    out = args.out or str(path)
    print(json.dumps({"out": out, "version": serving.version, "items": len(serving.item_ids), "partitions": sizes}))
    return 0


# ------------------------------------------------------------------------------------------------ serve
def _parser_serve(sub: Any) -> None:
    from ledrec.config import add_flags
    from ledrec.serve.retriever import RetrieverConfig
    from ledrec.serve.server import ServeConfig

    p = sub.add_parser(
        "serve",
        help=HELP["serve"],
        description="Serve a run directory or serving export over gRPC (ledrec.v1.Recommender, grpc.health.v1, "
        "reflection) on 127.0.0.1 unless --host says otherwise. A model serves only after full validation and "
        "a self-check per catalogue against exact scoring; health is NOT_SERVING until then. SIGHUP, or "
        "pointing RUN_DIR (a symlink) at another run, reloads the model without failing a request; a new model "
        "that fails validation is refused and the old one keeps serving. SIGTERM: NOT_SERVING, answer what is "
        "queued (at most --grace seconds), exit. Prints one JSON line when serving. Metrics in Prometheus text "
        "format on http://METRICS_HOST:METRICS_PORT/metrics (worker i: METRICS_PORT + i).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run_dir", help="run directory ('ledrec run --out'), its export, or a symlink to either")
    add_flags(p, ServeConfig)
    g = p.add_argument_group("retrieval")
    add_flags(g, RetrieverConfig)
    g.add_argument(
        "--ef", type=number(int, low=1), default=None, help="ANN search effort (ef_search; default: the index's, 100)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="load, validate and self-check the model, print the result as JSON and exit (0: it would serve)",
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ledrec.config import from_args
    from ledrec.serve.retriever import RetrieverConfig
    from ledrec.serve.server import ServeConfig, check, run

    index_params = {"ef_search": args.ef} if args.ef is not None and args.index != "exact" else {}
    retriever = from_args(RetrieverConfig, args, index_params=index_params)
    config = from_args(
        ServeConfig,
        args,
        run_dir=args.run_dir,
        retriever=retriever,
    )
    if args.check:
        print(json.dumps(check(config)))
        return 0
    return run(config)
