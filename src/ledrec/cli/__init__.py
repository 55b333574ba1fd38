"""The ``ledrec`` command line. Every subcommand has ``--help``; results go to stdout as JSON, logs and
progress bars to stderr.

One module per command group, each registering its own flags next to its handlers (``register(sub)``,
``cmd_*``): :mod:`~ledrec.cli.run` (run, prepare), :mod:`~ledrec.cli.data` (info, generate),
:mod:`~ledrec.cli.pretrain`, :mod:`~ledrec.cli.serving` (export, serve), :mod:`~ledrec.cli.bench` and
:mod:`~ledrec.cli.simulate`, :mod:`~ledrec.cli.pipeline` (the daily job), :mod:`~ledrec.cli.recommend`
(batch top-k); :mod:`~ledrec.cli.common` holds the flags they share. A handler parses its
flags, calls one library function and prints. ``ledrec COMMAND`` imports and builds only that command's
module and parser, so ``ledrec serve`` never imports the training stack to parse its flags.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from ledrec import __version__
from ledrec.data.interactions import DataError
from ledrec.errors import ConfigError
from ledrec.io import ArtifactError

# one line of help per command; a command's own parser (and what it imports) is built only when it runs
HELP = {
    "run": "prepare data, select on validation, fit, evaluate on test, print JSON",
    "prepare": "apply a protocol and save the prepared dataset for reuse",
    "tune": "a budgeted hyper-parameter search on validation (Optuna, pruned), then the winner run and tested",
    "bench": "paper figures and tables as commands (long runs)",
    "export": "write the serving form of a run: [v; b] item vectors, the query map, catalogues (partitions)",
    "serve": "the gRPC service: recent items -> top-k, cold start, catalogues, hot reload, Prometheus metrics",
    "pretrain": "PMI + randomized SVD item embeddings, written as an artifact",
    "info": "read a dataset and print its counts",
    "generate": "write a synthetic multi-feedback event table (Parquet)",
    "simulate": "the production-like world: generate its log, or run the simulated A/B test",
    "pipeline": "the daily job per catalogue: events -> pre-train -> LED -> index -> gate -> publish; status, rollback",
    "recommend": "top-k for every user of an event table, in bulk (one machine or Spark)",
    "similar": "the items most alike to an item (by id or title), as the service's Similar call answers",
    "fold-in": "add the items that appeared since the last retrain to the published models (intra-day)",
    "look": "a web page on 127.0.0.1 to look at recommendations: Figure 8, similar items, the map, the daily job",
}
# the command groups: the module of ledrec.cli whose register() builds each command's parser
COMMANDS = {
    "run": "run",
    "prepare": "run",
    "tune": "run",
    "bench": "bench",
    "export": "serving",
    "serve": "serving",
    "pretrain": "pretrain",
    "info": "data",
    "generate": "data",
    "simulate": "simulate",
    "pipeline": "pipeline",
    "recommend": "recommend",
    "similar": "recommend",
    "fold-in": "pipeline",
    "look": "look",
}


class OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line naming the command and what is wrong, exit status 2 (argparse prints the
    whole usage first; ``--help`` still shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser (``only=None``), or one with only command ``only`` built in full and the others as
    one-line stubs (what ``main`` uses: ``ledrec serve`` never imports the training stack to parse flags)."""
    parser = OneLineErrors(
        prog="ledrec", description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"ledrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in HELP:
        if only is None or only == name:
            importlib.import_module(f"{__name__}.{COMMANDS[name]}").register(sub, name)
        else:
            sub.add_parser(name, help=HELP[name], add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "pipeline" in argv:  # `ledrec pipeline CONFIG` is `ledrec pipeline run CONFIG`
        from ledrec.cli.pipeline import normalize

        argv = normalize(argv)
    command = next((a for a in argv if not a.startswith("-")), "")  # the first word that is not an option
    parser = build_parser(only=command if command in HELP else "")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        status = args.func(args)
        sys.stdout.flush()  # (a closed stdout shows here, not in the interpreter's exit)
        return status
    except BrokenPipeError:
        # whoever read stdout stopped (`ledrec pipeline status ROOT | head -1`): nothing more to say to it, no
        # traceback; the status a process killed by SIGPIPE gets, as other Unix tools in a pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except (DataError, ArtifactError, ConfigError, FileNotFoundError, argparse.ArgumentTypeError) as exc:
        nested = (getattr(args, a, None) for a in ("bench", "simulate_command", "pipeline_command"))
        command = " ".join(c for c in (args.command, *nested) if c)
        print(f"ledrec {command}: error: {exc}", file=sys.stderr)
        return 2
