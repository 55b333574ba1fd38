"""``ledrec run`` (prepare, select on validation, fit, test: one JSON object) and ``ledrec prepare`` (a
protocol applied and saved)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ledrec.cli import HELP
from ledrec.cli.common import (
    add_data_args,
    add_no_refit,
    add_parsers,
    feedback_list,
    flag,
    parse_list,
    prepared_data,
    protocol_options,
)
from ledrec.config import number
from ledrec.errors import ConfigError
from ledrec.io import write_json

if TYPE_CHECKING:
    from ledrec.config import Option


def register(sub: Any, name: str | None = None) -> None:
    """Add ``run``, ``prepare`` and ``tune`` (or only command ``name``) to the subcommands ``sub``."""
    add_parsers(sub, {"run": _parser_run, "prepare": _parser_prepare, "tune": _parser_tune}, name)


def model_options() -> dict[str, Option]:
    """Union of every model's options; a name shared by two models must mean the same type."""
    from ledrec.models import MODELS

    merged: dict[str, Option] = {}
    for model in MODELS.values():
        for o in model.options:
            if o.name in merged and merged[o.name].type is not o.type:
                raise TypeError(f"option {o.name!r} has different types in different models")
            merged.setdefault(o.name, o)
    return merged


# ------------------------------------------------------------------------------------------------ run
def _parser_run(sub: Any) -> None:
    from ledrec.models import MODELS

    p = sub.add_parser(
        "run",
        help=HELP["run"],
        description="Prepare the data with a protocol, choose hyper-parameters on validation only "
        "(options given as comma-separated lists are searched), fit the final model, "
        "evaluate it on test and print one JSON object.",
    )
    add_data_args(p)
    p.add_argument("--model", required=True, choices=sorted(MODELS), help="recommender to run")
    p.add_argument(
        "--out",
        default=None,
        help="run directory to keep the fitted model (.npy + JSON manifest); must be new or empty",
    )
    p.add_argument("--overwrite", action="store_true", help="clear a non-empty --out first")
    p.add_argument("--json", default=None, help="also write the result object to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--compact", action="store_true", help="print the JSON on one line")
    p.add_argument(
        "--select-max-items",
        type=number(int, low=1),
        default=None,
        help="search hyper-parameters on the N most popular items only, then refit the winner on all items "
        "(for models whose fit grows fast with the catalog, like EASE at O(I^3))",
    )
    p.add_argument(
        "--no-select",
        action="store_true",
        help="no validation run: train once on all training data with the given options (iterative models: "
        "exactly --epochs, no early stopping) and test; for a known configuration, as in daily retraining",
    )
    add_no_refit(p)
    _add_model_options(p)
    p.set_defaults(func=cmd_run)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """One flag per model option (of any model), a comma-separated list where the option is searchable."""
    from ledrec.models import MODELS

    g = p.add_argument_group("model options (comma-separated lists are searched on validation)")
    for o in model_options().values():
        # each model's own default (the trainers differ: LED lr 0.01 / 50 epochs, the VAE 1e-3 / 200)
        defaults = {name: own.default for name, m in MODELS.items() for own in m.options if own.name == o.name}
        by_model = ", ".join(f"{name} {'by --preset' if v is None else repr(v)}" for name, v in defaults.items())
        g.add_argument(
            f"--{flag(o.name)}",
            dest=o.name,
            default=None,
            type=lambda text, o=o: parse_list(o, text),
            help=f"{o.help}; {o.describe()} (default: {by_model})",
        )


def _model_params(args: argparse.Namespace) -> dict[str, list[Any]]:
    """Each option of ``--model``: the values given, else the model's default. An option of another model
    is an error (it would silently do nothing)."""
    from ledrec.models import MODELS

    model_cls = MODELS[args.model]
    own = {o.name for o in model_cls.options}
    foreign = [o for o in model_options() if o not in own and getattr(args, o, None) is not None]
    if foreign:
        flags = ", ".join(f"--{flag(o)}" for o in foreign)
        raise ConfigError(f"{flags}: not an option of --model {args.model} ('ledrec run --model {args.model} --help')")
    params: dict[str, list[Any]] = {}
    for o in model_cls.options:
        given = getattr(args, o.name, None)
        params[o.name] = given if given is not None else [o.default]
    return params


def _run_config(args: argparse.Namespace, **more: Any) -> Any:
    """The :class:`RunConfig` of the flags ``ledrec run`` and ``ledrec tune`` share, with ``more``."""
    from ledrec.train.run import RunConfig

    return RunConfig(
        data=args.data,
        protocol=args.protocol,
        model=args.model,
        params=_model_params(args),
        seed=args.seed,
        format=args.format,
        feedback=feedback_list(args),
        protocol_options=protocol_options(args),
        out=args.out,
        progress=not args.quiet,
        overwrite=args.overwrite,
        **more,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from ledrec.train.run import run

    config = _run_config(
        args, select_max_items=args.select_max_items, select=not args.no_select, refit=not args.no_refit
    )
    result = run(config)
    print(json.dumps(result, indent=None if args.compact else 2))
    if args.json:
        write_json(args.json, result)
    return 0


# ------------------------------------------------------------------------------------------------ tune
def _parser_tune(sub: Any) -> None:
    from ledrec.train.tune import SPACES

    p = sub.add_parser(
        "tune",
        help=HELP["tune"],
        description="A budgeted search on validation only (Optuna: TPE sampler; an iterative model's "
        "candidate below the median at the same epoch is pruned), then the winner run as 'ledrec run' runs it "
        "and tested once. Spaces: "
        + "; ".join(f"{m}: {', '.join(space)}" for m, space in SPACES.items())
        + ". Options given on the command line are kept, not searched. Prints ledrec run's JSON with 'tuning'.",
    )
    add_data_args(p)
    from ledrec.models import MODELS

    # "led-trained" is led's space with --init svd|random, "led-wls" with --loss wls
    models = sorted(m for m in SPACES if m in MODELS)
    p.add_argument("--model", required=True, choices=models, help="recommender to tune")
    p.add_argument("--trials", type=number(int, low=1), default=30, help="candidates at most (default 30)")
    p.add_argument("--timeout", type=number(float, low=0.0, low_open=True), default=None, help="seconds at most")
    p.add_argument("--out", default=None, help="run directory for the winner (as ledrec run --out)")
    p.add_argument("--overwrite", action="store_true", help="clear a non-empty --out first")
    p.add_argument("--json", default=None, help="also write the result object to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_model_options(p)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from ledrec.models import MODELS
    from ledrec.train.tune import tune

    config = _run_config(args)
    given = frozenset(o.name for o in MODELS[args.model].options if getattr(args, o.name, None) is not None)
    result = tune(config, trials=args.trials, timeout=args.timeout, seed=args.seed, given=given)
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)
    return 0


# ------------------------------------------------------------------------------------------------ prepare
def _parser_prepare(sub: Any) -> None:
    p = sub.add_parser(
        "prepare",
        help=HELP["prepare"],
        description="Read a dataset, apply a protocol (seeded) and save the result; "
        "'ledrec run --data DIR' reloads it.",
    )
    add_data_args(p)
    p.add_argument("--out", required=True, help="folder to write")
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args: argparse.Namespace) -> int:
    data = prepared_data(args)
    data.save(args.out)
    print(json.dumps(data.summary(), indent=2))
    return 0
