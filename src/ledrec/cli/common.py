"""What the command groups share: the data flags and protocol options (and the data they name), list
flags of searchable model options, and how a group registers its parsers. (A configuration dataclass's
flags are :func:`ledrec.config.add_flags`'.)"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ledrec.config import number
from ledrec.data import PROTOCOLS
from ledrec.errors import ConfigError

if TYPE_CHECKING:
    from ledrec.config import Option
    from ledrec.data.splits import PreparedData

DATA_HELP = (
    "dataset: a folder or file (MovieLens ratings.csv/ratings.dat/u.data, RecBole .inter, BARS train/valid/test "
    "folder, pair-file folder like Taobao view/cart/buy, events .parquet/.csv), a folder written by "
    "'ledrec prepare', or 'synthetic[:n_users=…,n_items=…,seed=…]' for generated data"
)
# which protocol options each protocol takes (the flags are --name with dashes)
PROTOCOL_OPTIONS = {
    "strong": ("min_rating", "heldout_users"),
    "bars": ("valid_fraction", "pretrain_feedback", "exclude"),
    "time": ("test_days", "leave_last", "target_feedback", "pretrain_feedback", "exclude", "min_rating"),
}
LISTS = ("pretrain_feedback", "target_feedback")  # comma-separated event types


def add_parsers(sub: Any, parsers: dict[str, Callable[[Any], None]], name: str | None = None) -> None:
    """Build a command group's parsers (``{command: builder}``), or only command ``name``'s, into ``sub``."""
    for command, build in parsers.items():
        if name is None or name == command:
            build(sub)


def flag(name: str) -> str:
    return name.replace("_", "-")


def parse_list(option: Option, text: str) -> list[Any]:
    """The argparse ``type`` of a model option: its values (:meth:`ledrec.config.Option.parse`)."""
    try:
        return option.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ------------------------------------------------------------------------------------------------ data
def add_data_args(p: argparse.ArgumentParser) -> None:
    """--data, --protocol and its options, --format, --seed, --input-feedback: what :func:`prepared_data`
    reads."""
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument(
        "--protocol",
        required=True,
        choices=PROTOCOLS,
        help="strong: held-out users, 80/20 fold-in (Mult-VAE); bars: fixed train/test files (BARS); time: one "
        "time-stamped event table cut by time (--test-days or --leave-last)",
    )
    p.add_argument("--format", default=None, help="force a reader instead of detecting it from file names")
    p.add_argument(
        "--seed", type=number(int, low=0), default=0, help="seed of every random choice (splits, init, sampling)"
    )
    p.add_argument(
        "--input-feedback",
        "--feedback",
        dest="feedback",
        default=None,
        help="comma-separated event types that form the input (training) matrix (default: all)",
    )
    _add_protocol_options(p)


def _add_protocol_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("protocol options (an option of another protocol is an error)")
    g.add_argument(
        "--min-rating",
        type=number(float),
        default=None,
        help="strong: keep ratings >= this (default 3.5, as ../shared/README.md says); time: keep only the events "
        "rated at least this (default: every event)",
    )
    g.add_argument(
        "--heldout-users",
        type=number(float, low=0.0, low_open=True),
        default=None,
        help="strong: validation and test users each, a fraction (<1) or a count (default 0.1)",
    )
    g.add_argument(
        "--valid-fraction",
        type=number(float, low=0.0, high=1.0, low_open=True, high_open=True),
        default=None,
        help="bars without a valid file: share of each user's train items carved out for validation (default 0.1)",
    )
    g.add_argument(
        "--test-days",
        type=number(float, low=0.0, low_open=True),
        default=None,
        help="time: the last D days are the test period (and the D days before them validation)",
    )
    g.add_argument(
        "--leave-last",
        type=number(int, low=1),
        default=None,
        help="time: each user's last N target events are the test targets (and the N before them validation)",
    )
    g.add_argument(
        "--target-feedback",
        default=None,
        help="time: comma-separated event types to predict (e.g. sale; default: the input types)",
    )
    g.add_argument(
        "--pretrain-feedback",
        default=None,
        help="bars, time, multi-feedback data: event types the SVD pre-training uses (the paper: view); "
        "default: the inputs",
    )
    g.add_argument(
        "--exclude",
        choices=("history", "target"),
        default=None,
        help="bars, time, multi-feedback data: never rank any item of the history (default: history), or only "
        "items of the target type (e.g. already bought)",
    )


def add_served_run_args(p: argparse.ArgumentParser, run_help: str) -> None:
    """--run (else: a synthetic catalogue) and the dataset whose test users give the queries."""
    p.add_argument("--run", default=None, help=run_help + " (without --run: a synthetic catalogue)")
    p.add_argument("--data", default=None, help="with --run: " + DATA_HELP)
    p.add_argument("--protocol", default="bars", choices=PROTOCOLS, help="with --run: the data's protocol")
    p.add_argument("--format", default=None, help=argparse.SUPPRESS)
    p.add_argument("--feedback", default=None, help=argparse.SUPPRESS)


def served_run_data(args: argparse.Namespace) -> PreparedData | None:
    """The prepared ``--data`` of a ``--run`` benchmark (None without ``--run``); ``--run`` needs it."""
    if not args.run:
        return None
    if not args.data:
        raise ConfigError("--run needs --data: the dataset whose test users give the queries")
    return prepared_data(args)


def numbers(kind: type, **bounds: Any) -> Callable[[str], tuple[Any, ...]]:
    """An argparse ``type`` for a comma-separated list of numbers, each within ``bounds``."""
    one = number(kind, **bounds)
    return lambda text: tuple(one(v.strip()) for v in text.split(","))


def add_no_refit(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-refit",
        action="store_true",
        help="where validation is carved out of train (BARS without a valid file), test the model selected on "
        "validation (best checkpoint) instead of refitting it on all of train: half the training time of an "
        "early-stopped network, for 10%% less training data per user",
    )


def protocol_options(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol options a command was given; one that the chosen protocol does not take is an error
    (it would do nothing), and commands that do not offer an option leave its default."""
    every = {name for names in PROTOCOL_OPTIONS.values() for name in names}
    given = {name: getattr(args, name) for name in every if getattr(args, name, None) is not None}
    foreign = sorted(set(given) - set(PROTOCOL_OPTIONS[args.protocol]))
    if foreign:
        flags = ", ".join(f"--{flag(n)}" for n in foreign)
        raise ConfigError(f"{flags}: not an option of --protocol {args.protocol}")
    opts: dict[str, Any] = {}
    for name, value in given.items():
        opts[name] = [f.strip() for f in value.split(",")] if name in LISTS else value
    if "heldout_users" in opts and opts["heldout_users"] >= 1:
        opts["heldout_users"] = int(opts["heldout_users"])  # a count, not a fraction
    return opts


def feedback_list(args: argparse.Namespace) -> list[str] | None:
    """--feedback's comma-separated event types (None: all)."""
    return None if args.feedback is None else [f.strip() for f in args.feedback.split(",") if f.strip()]


def prepared_data(args: argparse.Namespace) -> PreparedData:
    """The dataset of ``--data`` with ``--protocol`` and its options applied."""
    from ledrec.data.load import load_prepared

    return load_prepared(
        args.data,
        args.protocol,
        seed=args.seed,
        format=args.format,
        feedback=feedback_list(args),
        protocol_options=protocol_options(args),
    )
