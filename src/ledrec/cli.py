"""The ``ledrec`` command line. Every subcommand has ``--help``; results go to stdout as JSON, logs and
progress bars to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ledrec import __version__
from ledrec.config import number
from ledrec.data import PROTOCOLS
from ledrec.data.interactions import DataError
from ledrec.errors import ConfigError
from ledrec.io import ArtifactError, write_json

if TYPE_CHECKING:
    import numpy as np

    from ledrec.data.splits import PreparedData
    from ledrec.models.base import Option
    from ledrec.pretrain import ItemEmbeddings, PretrainConfig


log = logging.getLogger("ledrec")

DATA_HELP = (
    "dataset: a folder or file (MovieLens ratings.csv/ratings.dat/u.data, RecBole .inter, BARS train/valid/test "
    "folder, pair-file folder like Taobao view/cart/buy, events .parquet/.csv), a folder written by "
    "'ledrec prepare', or 'synthetic[:n_users=…,n_items=…,seed=…]' for generated data"
)


# ------------------------------------------------------------------------------------------------ helpers
class OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line naming the command and what is wrong, exit status 2 (argparse prints the
    whole usage first; ``--help`` still shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parse_list(option: Option, text: str) -> list[Any]:
    values = [v.strip() for v in text.split(",")] if option.searchable else [text]
    out = []
    for v in values:
        try:
            out.append(option.type(v))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{_flag(option.name)}: {v!r} is not {option.describe()}") from None
    return out


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _model_options() -> dict[str, Option]:
    """Union of every model's options; a name shared by two models must mean the same type."""
    from ledrec.models import MODELS

    merged: dict[str, Option] = {}
    for model in MODELS.values():
        for o in model.options:
            if o.name in merged and merged[o.name].type is not o.type:
                raise TypeError(f"option {o.name!r} has different types in different models")
            merged.setdefault(o.name, o)
    return merged


def _add_common_data_args(p: argparse.ArgumentParser) -> None:
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
    g = p.add_argument_group("protocol options (an option of another protocol is an error)")
    g.add_argument(
        "--min-rating",
        type=number(float),
        default=None,
        help="strong: keep ratings >= this (default 3.5, as ../shared/README.md says)",
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


def _add_served_run_args(p: argparse.ArgumentParser, run_help: str) -> None:
    """--run (else: a synthetic catalogue) and the dataset whose test users give the queries."""
    p.add_argument("--run", default=None, help=run_help + " (without --run: a synthetic catalogue)")
    p.add_argument("--data", default=None, help="with --run: " + DATA_HELP)
    p.add_argument("--protocol", default="bars", choices=PROTOCOLS, help="with --run: the data's protocol")
    p.add_argument("--format", default=None, help=argparse.SUPPRESS)
    p.add_argument("--feedback", default=None, help=argparse.SUPPRESS)


# which protocol options each protocol takes (the flags are --name with dashes)
PROTOCOL_OPTIONS = {
    "strong": ("min_rating", "heldout_users"),
    "bars": ("valid_fraction", "pretrain_feedback", "exclude"),
    "time": ("test_days", "leave_last", "target_feedback", "pretrain_feedback", "exclude"),
}
LISTS = ("pretrain_feedback", "target_feedback")  # comma-separated event types


def _protocol_options(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol options a command was given; one that the chosen protocol does not take is an error
    (it would do nothing), and commands that do not offer an option leave its default."""
    every = {name for names in PROTOCOL_OPTIONS.values() for name in names}
    given = {name: getattr(args, name) for name in every if getattr(args, name, None) is not None}
    foreign = sorted(set(given) - set(PROTOCOL_OPTIONS[args.protocol]))
    if foreign:
        flags = ", ".join(f"--{_flag(n)}" for n in foreign)
        raise ConfigError(f"{flags}: not an option of --protocol {args.protocol}")
    opts: dict[str, Any] = {}
    for name, value in given.items():
        opts[name] = [f.strip() for f in value.split(",")] if name in LISTS else value
    if "heldout_users" in opts and opts["heldout_users"] >= 1:
        opts["heldout_users"] = int(opts["heldout_users"])  # a count, not a fraction
    return opts


def _prepared(args: argparse.Namespace) -> PreparedData:
    """The dataset of ``--data`` with ``--protocol`` and its options applied."""
    from ledrec.data.load import load_prepared

    return load_prepared(
        args.data,
        args.protocol,
        seed=args.seed,
        format=args.format,
        feedback=_feedback(args),
        protocol_options=_protocol_options(args),
    )


def _feedback(args: argparse.Namespace) -> list[str] | None:
    return None if args.feedback is None else [f.strip() for f in args.feedback.split(",") if f.strip()]


# ------------------------------------------------------------------------------------------------ commands
def _add_no_refit(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-refit",
        action="store_true",
        help="where validation is carved out of train (BARS without a valid file), test the model selected on "
        "validation (best checkpoint) instead of refitting it on all of train: half the training time of an "
        "early-stopped network, for 10%% less training data per user",
    )


def cmd_run(args: argparse.Namespace) -> int:
    from ledrec.models import MODELS
    from ledrec.train.run import RunConfig, run

    model_cls = MODELS[args.model]
    own = {o.name for o in model_cls.options}
    foreign = [o for o in _model_options() if o not in own and getattr(args, o, None) is not None]
    if foreign:  # an option of another model would silently do nothing
        flags = ", ".join(f"--{_flag(o)}" for o in foreign)
        raise ConfigError(f"{flags}: not an option of --model {args.model} ('ledrec run --model {args.model} --help')")
    params: dict[str, list[Any]] = {}
    for o in model_cls.options:
        given = getattr(args, o.name, None)
        params[o.name] = given if given is not None else [o.default]
    config = RunConfig(
        data=args.data,
        protocol=args.protocol,
        model=args.model,
        params=params,
        seed=args.seed,
        format=args.format,
        feedback=_feedback(args),
        protocol_options=_protocol_options(args),
        out=args.out,
        progress=not args.quiet,
        select_max_items=args.select_max_items,
        select=not args.no_select,
        refit=not args.no_refit,
        overwrite=args.overwrite,
    )
    result = run(config)
    text = json.dumps(result, indent=None if args.compact else 2)
    print(text)
    if args.json:
        write_json(args.json, result)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    data = _prepared(args)
    data.save(args.out)
    print(json.dumps(data.summary(), indent=2))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ledrec.data.load import load_dataset

    ds = load_dataset(args.data, args.format)
    out: dict[str, Any] = {
        "name": ds.name,
        "format": ds.format,
        "path": ds.path,
        "users": len(ds.users),
        "items": len(ds.items),
        "parts": {},
    }
    for name, part in ds.parts.items():
        counts = {t: int((part.feedback == k).sum()) for k, t in enumerate(part.feedback_types)}
        out["parts"][name] = {
            "events": len(part),
            "feedback": counts,
            "users_with_events": len(set(part.user.tolist())),
            "items_with_events": len(set(part.item.tolist())),
            "timestamps": part.timestamp is not None,
            "ratings": part.rating is not None,
            "partitions": None if part.partitions is None else len(part.partitions),
        }
    print(json.dumps(out, indent=2))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    import numpy as np

    from ledrec.data.load import load_dataset
    from ledrec.pretrain import PretrainConfig, pretrain

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
    if args.protocol:
        if args.window:
            raise DataError("--window needs time-ordered raw events: leave out --protocol")
        data = _prepared(args)
        X, item_ids = data.fit_test, data.items.ids
        users, items = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr)), X.indices.astype(np.int64)
    else:
        ds = load_dataset(args.data, args.format)
        events = (ds.parts["all"] if "all" in ds.parts else ds.parts["train"]).with_feedback(_feedback(args))
        X, item_ids = events.to_csr(), events.items.ids
        keys = (events.user,) if events.timestamp is None else (events.timestamp, events.user)
        order = np.lexsort(keys)  # by user, then time (stable: file order without timestamps)
        users, items = events.user[order], events.item[order]
    if args.engine == "spark":
        emb = _spark_pretrain(args, config, users, items, X.shape[1], item_ids)
    elif args.window:
        emb = pretrain(config=config, events=(users, items), n_items=X.shape[1], item_ids=item_ids, progress=True)
    else:
        emb = pretrain(X, config, item_ids=item_ids, progress=True)
    emb.save(args.out)
    print(json.dumps({"out": args.out, "items": len(emb.vectors), "dim": emb.dim, **emb.stats}, indent=2))
    return 0


def _spark_pretrain(
    args: argparse.Namespace,
    config: PretrainConfig,
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    item_ids: np.ndarray,
) -> ItemEmbeddings:
    """The events as Parquet (time order kept in a position column), pre-trained on Spark."""
    import tempfile

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ledrec.pretrain.spark import spark_pretrain, spark_session

    with tempfile.TemporaryDirectory(prefix="ledrec-spark-") as tmp:
        path = str(Path(tmp) / "events.parquet")
        table = pa.table(
            {"user": users.astype(np.int64), "item": items.astype(np.int64), "timestamp": np.arange(len(users))}
        )
        pq.write_table(table, path)
        spark = spark_session(args.master, driver_memory=args.driver_memory)
        try:
            return spark_pretrain(spark, path, n_items, config, item_ids=item_ids)
        finally:
            spark.stop()


def cmd_bench_figure2(args: argparse.Namespace) -> int:
    from ledrec.bench.figure2 import figure2

    data = _prepared(args)
    led = {
        "dim": args.dim,
        "epochs": args.epochs,
        "lr": args.lr,
        "loss": args.loss,
        "dropout": args.dropout,
        "init_scale": args.init_scale,
        "patience": args.patience,
    }
    fractions = [float(f) for f in args.fractions.split(",")]
    figure2(data, args.out, fractions=fractions, led_params=led, seed=args.seed)
    print((Path(args.out) / "figure2.md").read_text())
    return 0


def cmd_bench_table2(args: argparse.Namespace) -> int:
    from ledrec.bench.table2 import ROWS, row_name, table2
    from ledrec.models import MODELS
    from ledrec.train.run import RunConfig

    by_name = {row_name(m, loss): (m, loss) for m, loss in ROWS}
    params: dict[str, dict[str, list[Any]]] = {}
    for spec in args.param:
        key, sep, value = spec.partition("=")
        scope, dot, option = key.partition(".")  # scope: a model (all its rows) or one row
        model = by_name[scope][0] if scope in by_name else scope
        if not sep or not dot or model not in MODELS:
            raise argparse.ArgumentTypeError(
                f"--param {spec!r}: expected MODEL.OPTION=VALUE[,VALUE…] or ROW.OPTION=VALUE[,VALUE…], "
                f"MODEL in {list(MODELS)}, ROW in {list(by_name)}"
            )
        known = {o.name: o for o in MODELS[model].options}
        name = option.replace("-", "_")
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"--param {spec!r}: {model} has no option {option!r}; known: {sorted(known)}"
            )
        params.setdefault(scope, {})[name] = _parse_list(known[name], value)
    wanted = [r.strip() for r in args.rows.split(",")] if args.rows else list(by_name)
    unknown = [r for r in wanted if r not in by_name]
    if unknown:
        raise argparse.ArgumentTypeError(f"--rows: unknown {unknown}; known: {list(by_name)}")
    base = RunConfig(
        data=args.data,
        protocol=args.protocol,
        model="",
        seed=args.seed,
        format=args.format,
        feedback=_feedback(args),
        protocol_options=_protocol_options(args),
        progress=not args.quiet,
        select_max_items=args.select_max_items,
        refit=not args.no_refit,
    )
    table2(base, args.out, params, [by_name[r] for r in wanted])
    print((Path(args.out) / "table2.md").read_text())
    return 0


def cmd_bench_table3(args: argparse.Namespace) -> int:
    from ledrec.bench.table3 import table3
    from ledrec.data.production import GroundTruth, ProductionConfig, generate_log, read_events

    if args.data:
        event_log, manifest = read_events(args.data)
        n_items = int(manifest["config"]["n_items"])
    else:
        truth = GroundTruth(_from_flags(args, ProductionConfig))
        event_log, n_items = generate_log(truth), truth.n_items
    table3(
        event_log,
        n_items,
        args.out,
        epochs=args.epochs,
        dim=args.dim,
        negatives=args.negatives,
        seed=args.seed,
        progress=not args.quiet,
    )
    print((Path(args.out) / "table3.md").read_text())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ledrec.data.load import load_dataset
    from ledrec.export.mips import catalogues_from_events
    from ledrec.serve.loading import SERVING_DIR, load_serving_model

    serving = load_serving_model(args.run_dir)
    if args.data:
        catalogues = catalogues_from_events(serving, load_dataset(args.data, args.format).parts.values())
        if catalogues is None:
            n = len(serving.item_ids)
            print(
                f"ledrec export: note: {args.data} has no partition column: one catalogue of all {n} items",
                file=sys.stderr,
            )
        else:
            serving = replace(serving, partitions=catalogues)
    out = args.out or str(Path(args.run_dir) / SERVING_DIR)
    serving.save(out)
    sizes = {name: len(items) for name, items in serving.partitions.items()}
    print(json.dumps({"out": out, "version": serving.version, "items": len(serving.item_ids), "partitions": sizes}))
    return 0


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
        metrics_port=None if args.metrics_port == 0 else args.metrics_port,
        retriever=retriever,
    )
    if args.check:
        print(json.dumps(check(config)))
        return 0
    return run(config)


def cmd_bench_ann(args: argparse.Namespace) -> int:
    import numpy as np

    from ledrec.bench.ann import compare, markdown, synthetic_catalogue

    if args.run:
        from ledrec.serve.loading import load_serving_model

        serving = load_serving_model(args.run)
        items = serving.mips_items()
        data = _prepared(args)
        test = data.test.input
        rng = np.random.default_rng(args.seed)
        rows = rng.choice(test.shape[0], size=min(args.queries, test.shape[0]), replace=False)
        queries = np.vstack(
            [np.append(serving.user_vector(test[r].indices.astype(np.int64)), np.float32(1.0)) for r in rows]
        ).astype(np.float32)
        title = f"ANN on {data.name} (LED export: {len(items)} items, d = {items.shape[1] - 1} + 1)"
    else:
        items, queries = synthetic_catalogue(args.items, args.dim, args.queries, seed=args.seed)
        title = f"ANN on a synthetic catalogue ({args.items} items, d = {args.dim} + 1)"
    efs = tuple(int(e) for e in args.ef.split(","))
    libraries = tuple(x.strip() for x in args.libraries.split(","))
    forms = tuple(x.strip() for x in args.forms.split(","))
    params = {"M": args.M, "ef_construction": args.ef_construction}
    rows = compare(items, queries, k=args.k, libraries=libraries, forms=forms, efs=efs, params=params)
    text = markdown(rows, args.k, title)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out) / "ann.json", {"title": title, "rows": rows})
        (Path(args.out) / "ann.md").write_text(text)
    print(text)
    return 0


def cmd_bench_serve(args: argparse.Namespace) -> int:
    from ledrec.bench.serve import ServeBenchConfig, markdown, run_bench, synthetic_export

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.run:
        data = _prepared(args)
        test = data.test.input
        ids = data.items.ids.astype(str)
        histories = [ids[test[r].indices].tolist()[-args.max_history :] for r in range(test.shape[0]) if test[r].nnz]
        serving_dir = args.run
        title = f"Serving {data.name} LED ({len(ids)} items), {args.run}"
    else:
        serving_dir = str(out / "synthetic-export")
        histories_file = out / "synthetic-histories.json"
        if not histories_file.is_file():
            _, histories = synthetic_export(serving_dir, args.items, args.dim, seed=args.seed)
            write_json(histories_file, histories)
        histories = json.loads(histories_file.read_text())
        title = f"Serving a synthetic catalogue of {args.items} items, d = {args.dim}"
    config = ServeBenchConfig(
        serving_dir=serving_dir,
        histories=histories,
        k=args.k,
        ef=args.ef,
        workers=args.workers,
        clients=args.clients,
        rate=args.rate,
        seconds=args.seconds,
        client=args.client,
        **({"cpp_client": args.cpp_client} if args.cpp_client else {}),
    )
    result = run_bench(config, repeats=args.repeats)
    write_json(out / "serve.json", {"title": title, **result})
    text = markdown(result, title)
    (out / "serve.md").write_text(text)
    print(text)
    return 0


def cmd_bench_chaos(args: argparse.Namespace) -> int:
    from ledrec.bench.chaos import ChaosConfig, markdown, run_chaos
    from ledrec.config import from_args

    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else ()
    config = from_args(ChaosConfig, args, export=args.export, out=args.out, classes=classes)
    result = run_chaos(config, progress=not args.quiet)
    print(markdown(result), file=sys.stderr)
    print(json.dumps({"ok": result["ok"], "out": args.out, "seconds": result["seconds"]}))
    return 0 if result["ok"] else 1


def cmd_generate(args: argparse.Namespace) -> int:
    from ledrec.data.synthetic import SyntheticConfig, generate, write_events

    config = _from_flags(args, SyntheticConfig)
    data = generate(config)
    path = write_events(data, args.out, config)
    print(
        json.dumps(
            {
                "path": str(path),
                "events": len(data),
                "users": data.n_users,
                "items": data.n_items,
                "feedback": {t: int((data.feedback == k).sum()) for k, t in enumerate(data.feedback_types)},
            },
            indent=2,
        )
    )
    return 0


# ------------------------------------------------------------------------------------------------ parser
# ------------------------------------------------------------------------------------------------ parser
# one line of help per command; a command's own parser (and what it imports) is built only when it runs
HELP = {
    "run": "prepare data, select on validation, fit, evaluate on test, print JSON",
    "prepare": "apply a protocol and save the prepared dataset for reuse",
    "bench": "paper figures and tables as commands (long runs)",
    "export": "write the serving form of a run: [v; b] item vectors, the query map, catalogues (partitions)",
    "serve": "the gRPC service: recent items -> top-k, cold start, catalogues, hot reload, Prometheus metrics",
    "pretrain": "PMI + randomized SVD item embeddings, written as an artifact",
    "info": "read a dataset and print its counts",
    "generate": "write a synthetic multi-feedback event table (Parquet)",
    "simulate": "the production-like world: generate its log, or run the simulated A/B test",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser (``only=None``), or one with only command ``only`` built in full and the others as
    one-line stubs (what ``main`` uses: ``ledrec serve`` never imports the training stack to parse flags)."""
    parser = OneLineErrors(
        prog="ledrec", description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"ledrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, build in _BUILDERS.items():
        if only is None or only == name:
            build(sub)
        else:
            sub.add_parser(name, help=HELP[name], add_help=False)
    return parser


def _parser_run(sub: Any) -> None:
    from ledrec.models import MODELS

    p = sub.add_parser(
        "run",
        help=HELP["run"],
        description="Prepare the data with a protocol, choose hyper-parameters on validation only "
        "(options given as comma-separated lists are searched), fit the final model, "
        "evaluate it on test and print one JSON object.",
    )
    _add_common_data_args(p)
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
    _add_no_refit(p)
    options = _model_options()
    g = p.add_argument_group("model options (comma-separated lists are searched on validation)")
    for o in options.values():
        # each model's own default (the trainers differ: LED lr 0.01 / 50 epochs, the VAE 1e-3 / 200)
        defaults = {name: own.default for name, m in MODELS.items() for own in m.options if own.name == o.name}
        by_model = ", ".join(f"{name} {'by --preset' if v is None else repr(v)}" for name, v in defaults.items())
        g.add_argument(
            f"--{_flag(o.name)}",
            dest=o.name,
            default=None,
            type=lambda text, o=o: _parse_list(o, text),
            help=f"{o.help}; {o.describe()} (default: {by_model})",
        )
    p.set_defaults(func=cmd_run)


def _parser_prepare(sub: Any) -> None:
    p = sub.add_parser(
        "prepare",
        help=HELP["prepare"],
        description="Read a dataset, apply a protocol (seeded) and save the result; "
        "'ledrec run --data DIR' reloads it.",
    )
    _add_common_data_args(p)
    p.add_argument("--out", required=True, help="folder to write")
    p.set_defaults(func=cmd_prepare)


def _parser_bench(sub: Any) -> None:
    from ledrec.data.production import ProductionConfig

    bench = sub.add_parser(
        "bench",
        help=HELP["bench"],
        description="Benchmarks that reproduce the seed paper's figures and tables.",
    )
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    p = bench_sub.add_parser(
        "figure2",
        help="LED R@50 for init {random, svd} x tuning {full, project} on 1%%, 10%%, 100%% of training users",
        description="The seed paper's Figure 2: Recall@50 of LED for init {random, SVD} x tuning {full, project} "
        "when fine-tuning on a share of the training users (SVD always on all of them). Writes figure2.json, "
        "figure2.md and figure2.png into --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common_data_args(p)
    p.add_argument("--out", required=True, help="folder for the table, the JSON and the PNG plot")
    p.add_argument("--fractions", default="0.01,0.1,1.0", help="shares of the training users")
    p.add_argument("--dim", type=number(int, low=1), default=128, help="LED dimension")
    p.add_argument("--epochs", type=number(int, low=1), default=50, help="maximum epochs per model")
    p.add_argument("--patience", type=number(int, low=0), default=5, help="early-stopping patience (validations)")
    p.add_argument("--lr", type=number(float, low=0.0, low_open=True), default=0.01, help="Adam learning rate")
    p.add_argument("--loss", default="mult", help="LED loss")
    p.add_argument(
        "--dropout", type=number(float, low=0.0, high=1.0, high_open=True), default=0.5, help="input dropout"
    )
    p.add_argument(
        "--init-scale", type=number(float, low=0.0, low_open=True), default=4.0, help="norm of the initial item vectors"
    )
    p.set_defaults(func=cmd_bench_figure2)

    p = bench_sub.add_parser(
        "table2",
        help="the paper's Table 2: LED (4 losses), Mult-VAE, Mult-DAE, EASE, SVD, popularity in one table",
        description="The seed paper's Table 2 on one dataset: Recall@20, Recall@50, difference to Mult-VAE, "
        "training time and evaluation time per user for LED (mult, mult-css, bpr, ns), Mult-VAE (mult, "
        "mult-css), Mult-DAE, EASE, raw SVD and popularity. Each row is one 'ledrec run' (selection on "
        "validation only); its JSON is kept in --out and reused when the command is run again.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common_data_args(p)
    p.add_argument("--out", required=True, help="folder for the per-row JSON, table2.json and table2.md")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="MODEL.OPTION=VALUES",
        help="an option for one model's rows, repeatable; a comma list of a searchable option is searched on "
        "validation (e.g. --param led.dim=256 --param ease.lam=100,300,1000 --param vae.epochs=100). "
        "ROW.OPTION=VALUES sets it for one row only, over the model's (e.g. --param "
        "vae-mult-css.checkpoint_dir=ckpt/vae-css)",
    )
    p.add_argument("--rows", default=None, help="comma-separated subset of rows (e.g. led-mult,vae-mult,ease)")
    _add_no_refit(p)
    p.add_argument(
        "--select-max-items",
        type=number(int, low=1),
        default=None,
        help="choose hyper-parameters on the N most popular items only, then refit (for EASE on big catalogues)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench_table2)

    p = bench_sub.add_parser(
        "ann",
        help="hnswlib vs faiss vs usearch (inner product or MIPS->NN reduction): recall, latency, build, memory",
        description="Measure the ANN libraries on exported LED vectors ([v; b], queries [q; 1]) or on a synthetic "
        "catalogue: recall@k against exact search, single-query latency p50/p99 on one thread, build time and "
        "index memory, for each library, form and ef_search. Each library runs in its own child process.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_served_run_args(p, "a run directory or serving export; queries from --data's test users")
    p.add_argument(
        "--items", type=number(int, low=1), default=1_000_000, help="synthetic catalogue size (without --run)"
    )
    p.add_argument("--dim", type=number(int, low=1), default=100, help="synthetic vector dimension (without --run)")
    p.add_argument("--queries", type=number(int, low=1), default=1000, help="number of queries")
    p.add_argument("--k", type=number(int, low=1), default=20, help="recall@k")
    p.add_argument("--ef", default="50,100,200", help="ef_search values (comma-separated)")
    p.add_argument("--M", type=number(int, low=1), default=32, help="graph degree")
    p.add_argument("--ef-construction", type=number(int, low=1), default=200, help="build-time candidate list")
    p.add_argument("--libraries", default="hnswlib,faiss,usearch", help="comma-separated")
    p.add_argument("--forms", default="ip,nn", help="ip (raw inner product), nn (MIPS->NN reduction)")
    p.add_argument("--seed", type=number(int, low=0), default=0, help="seed of the synthetic data and query choice")
    p.add_argument("--out", default=None, help="folder for ann.json and ann.md")
    p.set_defaults(func=cmd_bench_ann)

    p = bench_sub.add_parser(
        "serve",
        help="the paper's Table 4: max QPS, p50/p99 end to end over loopback gRPC, per-stage latency, ANN recall",
        description="Start 'ledrec serve' and drive it from a separate load-generator process over loopback gRPC: "
        "closed loop for the max QPS, open loop at --rate for latency p50/p99; per-stage latencies (user "
        "embedding, KNN) and ANN recall@k in process on the same histories; and Mult-VAE exact full scoring on the "
        "same histories as a latency ratio. Medians of --repeats runs. A trained run (--run with --data for "
        "histories of its test users) or a synthetic catalogue (--items, --dim).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_served_run_args(p, "run directory or serving export to serve; histories from --data's test users")
    p.add_argument("--items", type=number(int, low=1), default=1_000_000, help="synthetic catalogue size")
    p.add_argument("--dim", type=number(int, low=1), default=100, help="synthetic vector dimension")
    p.add_argument("--max-history", type=number(int, low=1), default=50, help="most recent items per request")
    p.add_argument("--k", type=number(int, low=1, high=1000), default=20, help="items per response")
    p.add_argument("--ef", type=number(int, low=1), default=100, help="ANN search effort")
    p.add_argument("--workers", type=number(int, low=1, high=256), default=2, help="server processes")
    p.add_argument("--clients", type=number(int, low=1), default=4, help="closed-loop concurrent clients")
    p.add_argument(
        "--rate", type=number(float, low=0.0, low_open=True), default=1000.0, help="open-loop requests per second"
    )
    p.add_argument(
        "--seconds", type=number(float, low=0.0, low_open=True), default=10.0, help="duration of each load phase"
    )
    p.add_argument("--repeats", type=number(int, low=1), default=3, help="runs (medians are reported)")
    p.add_argument("--seed", type=number(int, low=0), default=0, help="seed of the synthetic catalogue")
    p.add_argument(
        "--client",
        choices=("python", "cpp"),
        default="python",
        help="load generator: python (grpc.aio) or cpp (native; build it first: bash benchmarks/grpc_load/build.sh)",
    )
    p.add_argument(
        "--cpp-client", default="", help="path of the built C++ load generator (default: benchmarks/grpc_load/build/)"
    )
    p.add_argument("--out", required=True, help="folder for serve.json, serve.md (and the synthetic export)")
    p.set_defaults(func=cmd_bench_serve)

    from ledrec.bench.chaos import ChaosConfig
    from ledrec.bench.corrupt import REBUILT, REFUSED
    from ledrec.config import add_flags

    p = bench_sub.add_parser(
        "chaos",
        help="the service under hostile requests, hot swaps, corrupt exports, kill -9 and SIGTERM: every answer "
        "checked against exact scoring",
        description="Start 'ledrec serve' on loopback on copies of EXPORT and run, bounded in count and time: "
        "seeded hostile requests (every OK answer checked against exact numpy scoring, every code against what "
        "the request deserves, the server's counters against the client's), hot swaps under load, each kind of "
        "corrupt export at reload and at start, kill -9 and restart, and a SIGTERM drain of queued slow "
        "requests. Writes chaos.json and chaos.md to --out, prints the table to stderr; exits 1 on any wrong "
        "answer, crash or lost accepted request.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("export", help="a serving export ('ledrec export') or run directory")
    p.add_argument("--out", required=True, help="folder for the copies, chaos.json and chaos.md")
    add_flags(p, ChaosConfig)
    p.add_argument(
        "--classes",
        default="",
        help="comma-separated corruption classes to run (default: all): " + ", ".join([*REFUSED, *REBUILT]),
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_bench_chaos)

    p = bench_sub.add_parser(
        "table3",
        help="the paper's Table 3 on the production-like log: LED-BPR (uniform / banner negatives), init x tuning",
        description="The production protocol (§9.2: last 7 days = target period, the rest split by user "
        "90/10): Recall@20 on target clicks and click-rank over clicked banners for LED trained with BPR "
        "(uniform negatives, or half of them from the banners' non-clicked items) x init random/svd x tuning "
        "full/project, LED-Mult, Mult-VAE and popularity. Data: a directory of 'ledrec simulate generate', or "
        "a world generated from the flags.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", default=None, help="directory written by 'ledrec simulate generate' (default: generate)")
    p.add_argument("--out", default="runs/table3", help="directory for table3.json and table3.md")
    p.add_argument(
        "--epochs", type=number(int, low=1), default=30, help="maximum epochs (early stopping on validation)"
    )
    p.add_argument("--dim", type=number(int, low=1), default=64, help="LED embedding dimension")
    p.add_argument(
        "--negatives",
        type=number(int, low=1),
        default=100,
        help="BPR negatives per user (half from its banners in those rows)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_dataclass_flags(p, ProductionConfig)
    p.set_defaults(func=cmd_bench_table3)


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


def _parser_info(sub: Any) -> None:
    p = sub.add_parser(
        "info",
        help=HELP["info"],
        description="Read a dataset with the detected (or named) reader and print counts as JSON.",
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--format", default=None, help="force a reader")
    p.set_defaults(func=cmd_info)


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
    _add_dataclass_flags(p, SyntheticConfig)
    p.set_defaults(func=cmd_generate)


def _parser_simulate(sub: Any) -> None:
    from ledrec.data.production import ProductionConfig
    from ledrec.simulate.ab import SimulationConfig

    simulate = sub.add_parser(
        "simulate",
        help=HELP["simulate"],
        description="A production-like retargeting world with a written-down ground truth "
        "(ledrec.data.production): merchants, countries, categories, prices, views, banner displays, "
        "clicks and sales.",
    )
    sim_sub = simulate.add_subparsers(dest="simulate_command", required=True, metavar="SIMULATE_COMMAND")
    p = sim_sub.add_parser(
        "generate",
        help="write a production-like event log (events.parquet, items.parquet, manifest.json)",
        description="Generate the seeded production-like log: organic views across merchants and the banners "
        "of a logging policy with their displays, clicks and sales (sized by flags; 1M users x 100k items "
        "fits this box).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="directory to write")
    _add_dataclass_flags(p, ProductionConfig)
    p.set_defaults(func=cmd_simulate_generate)
    p = sim_sub.add_parser(
        "ab",
        help="the paper's A/B test (GBO vs +CBO vs +CBO+LED), simulated; writes a report and plots",
        description="Split users at random into A (GBO), B (GBO+CBO) and C (GBO+CBO+LED) candidates, rank "
        "with one logistic-regression ranker retrained daily on every population's logged displays, draw "
        "clicks and sales from the ground truth, and report per-population outcomes with bootstrap 95%% CIs, "
        "uplifts, share of voice and popularity per source (report.md, result.json, PNG plots).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="runs/simulate-ab", help="directory for report.md, result.json and plots")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--save-system",
        default=None,
        metavar="DIR",
        help="also write the final two-stage system (GBO, CBO, LED, ranker); 'ledrec serve DIR' then answers "
        "Banner calls as well as Recommend",
    )
    _add_dataclass_flags(p, ProductionConfig, skip=("seed",))
    _add_dataclass_flags(p, SimulationConfig, skip=("world",))
    p.set_defaults(func=cmd_simulate_ab)


_BUILDERS = {
    "run": _parser_run,
    "prepare": _parser_prepare,
    "bench": _parser_bench,
    "export": _parser_export,
    "serve": _parser_serve,
    "pretrain": _parser_pretrain,
    "info": _parser_info,
    "generate": _parser_generate,
    "simulate": _parser_simulate,
}


def _add_dataclass_flags(p: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One --flag per field of a config dataclass, typed and defaulted from the dataclass."""
    defaults = cls()
    for f in fields(cls):
        if f.name in skip:
            continue
        p.add_argument(
            f"--{_flag(f.name)}",
            dest=f.name,
            type=type(getattr(defaults, f.name)),
            default=getattr(defaults, f.name),
            help=f.name.replace("_", " "),
        )


def _from_flags(args: argparse.Namespace, cls: type, **extra: Any) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names and k not in extra}, **extra)


def cmd_simulate_generate(args: argparse.Namespace) -> int:
    from ledrec.data.production import GroundTruth, ProductionConfig, generate_log, summary, write_dataset

    truth = GroundTruth(_from_flags(args, ProductionConfig))
    event_log = generate_log(truth)
    write_dataset(truth, event_log, args.out)
    print(json.dumps({"path": args.out, **summary(event_log)}, indent=2))
    return 0


def cmd_simulate_ab(args: argparse.Namespace) -> int:
    from ledrec.data.production import ProductionConfig
    from ledrec.simulate.ab import SimulationConfig, simulate
    from ledrec.simulate.report import write_report

    world = _from_flags(args, ProductionConfig, seed=args.seed)
    config = _from_flags(args, SimulationConfig, world=world)
    result = simulate(config, progress=not args.quiet, save_system_dir=args.save_system)
    command = "ledrec " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("ledrec") else "ledrec simulate ab"
    stats = write_report(result, args.out, command)
    print(json.dumps({"out": args.out, "timings": result.timings, "uplift": stats["uplift"]}, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), "")  # the first word that is not an option
    parser = build_parser(only=command if command in HELP else "")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except (DataError, ArtifactError, ConfigError, FileNotFoundError, argparse.ArgumentTypeError) as exc:
        command = " ".join(
            c for c in (args.command, getattr(args, "bench", None), getattr(args, "simulate_command", None)) if c
        )
        print(f"ledrec {command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
