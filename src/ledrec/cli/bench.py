"""``ledrec bench …``: the paper's figures and tables (figure2, table2, table3), the ANN libraries (ann),
the service's Table 4 (serve) and the service under attack (chaos)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledrec.cli import HELP
from ledrec.cli.common import (
    add_data_args,
    add_no_refit,
    add_parsers,
    add_served_run_args,
    feedback_list,
    numbers,
    prepared_data,
    protocol_options,
    served_run_data,
)
from ledrec.config import add_flags, from_args, number
from ledrec.errors import ConfigError


def register(sub: Any, name: str | None = None) -> None:
    """Add ``bench`` and its subcommands to the subcommands ``sub``."""
    add_parsers(sub, {"bench": _parser_bench}, name)


def _parser_bench(sub: Any) -> None:
    bench = sub.add_parser(
        "bench",
        help=HELP["bench"],
        description="Benchmarks that reproduce the seed paper's figures and tables.",
    )
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for build in (
        _parser_figure2,
        _parser_table2,
        _parser_peers,
        _parser_ann,
        _parser_serve,
        _parser_chaos,
        _parser_table3,
    ):
        build(bench_sub)


# ------------------------------------------------------------------------------------------------ figure2
def _parser_figure2(bench_sub: Any) -> None:
    p = bench_sub.add_parser(
        "figure2",
        help="LED R@50 for init {random, svd} x tuning {full, project} on 1%%, 10%%, 100%% of training users",
        description="The seed paper's Figure 2: Recall@50 of LED for init {random, SVD} x tuning {full, project} "
        "when fine-tuning on a share of the training users (SVD always on all of them). Writes figure2.json, "
        "figure2.md and figure2.png into --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_data_args(p)
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


def cmd_bench_figure2(args: argparse.Namespace) -> int:
    from ledrec.bench.figure2 import figure2

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
    figure2(prepared_data(args), args.out, fractions=fractions, led_params=led, seed=args.seed)
    print((Path(args.out) / "figure2.md").read_text())
    return 0


# ------------------------------------------------------------------------------------------------ table2
def _parser_table2(bench_sub: Any) -> None:
    p = bench_sub.add_parser(
        "table2",
        help="the paper's Table 2: LED (4 losses), Mult-VAE, Mult-DAE, EASE, SVD, popularity in one table",
        description="The seed paper's Table 2 on one dataset: Recall@20, Recall@50, difference to Mult-VAE, "
        "training time and evaluation time per user for LED (mult, mult-css, bpr, ns), Mult-VAE (mult, "
        "mult-css), Mult-DAE, EASE, raw SVD and popularity. Each row is one 'ledrec run' (selection on "
        "validation only); its JSON is kept in --out and reused when the command is run again.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_data_args(p)
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
    add_no_refit(p)
    p.add_argument(
        "--select-max-items",
        type=number(int, low=1),
        default=None,
        help="choose hyper-parameters on the N most popular items only, then refit (for EASE on big catalogues)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench_table2)


def _parser_peers(bench_sub: Any) -> None:
    from ledrec.bench.peers import ROWS

    p = bench_sub.add_parser(
        "peers",
        help="LED beside implicit's ALS, GF-CF, EASE and popularity: test metrics, fit time, peak memory",
        description="Each row is one 'ledrec run' in its own process (selection on validation only), measured "
        "from outside: wall time and peak resident memory of its process tree. Rows: "
        + "; ".join(f"{k}: {' '.join(v)}" for k, v in ROWS.items())
        + ". Row JSON is kept in --out and reused.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", help="the dataset (as ledrec run --data); or --boards")
    p.add_argument("--protocol", choices=("strong", "bars", "time"), help="as ledrec run --protocol (with --data)")
    p.add_argument(
        "--boards",
        metavar="DIR",
        help="instead of --data: every BARS board of issue 19 under DIR (e.g. ../shared/data: "
        "gowalla-lightgcn, ml-1m-implicit-lcfn, amazon-cds-bgcf), one folder each in --out and boards.md, "
        "the table of all of them",
    )
    p.add_argument("--out", required=True, help="folder for the per-row JSON and logs, peers.json and peers.md")
    p.add_argument("--rows", default=None, help=f"comma-separated subset of {','.join(ROWS)}")
    p.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="ROW=FLAGS",
        help="ledrec run flags added to a row (ROW 'all': to every row), e.g. --args ease='--select-max-items 8000'",
    )
    p.set_defaults(func=cmd_bench_peers)


def cmd_bench_peers(args: argparse.Namespace) -> int:
    from ledrec.bench.peers import boards, parse_extra, peers

    rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
    if (args.boards is None) == (args.data is None) or (args.data is not None and args.protocol is None):
        raise ConfigError("bench peers: give --data with --protocol, or --boards DIR")
    if args.boards is not None:
        shared, extra = parse_extra(args.args, [])
        boards(args.boards, args.out, rows, extra, shared)
        print((Path(args.out) / "boards.md").read_text())
        return 0
    data_args, extra = parse_extra(args.args, ["--data", args.data, "--protocol", args.protocol])
    peers(data_args, args.out, rows, extra)
    print((Path(args.out) / "peers.md").read_text())
    return 0


def cmd_bench_table2(args: argparse.Namespace) -> int:
    from ledrec.bench.table2 import parse_params, parse_rows, table2
    from ledrec.train.run import RunConfig

    params = parse_params(args.param)
    rows = parse_rows(args.rows)
    base = RunConfig(
        data=args.data,
        protocol=args.protocol,
        model="",
        seed=args.seed,
        format=args.format,
        feedback=feedback_list(args),
        protocol_options=protocol_options(args),
        progress=not args.quiet,
        select_max_items=args.select_max_items,
        refit=not args.no_refit,
    )
    table2(base, args.out, params, rows)
    print((Path(args.out) / "table2.md").read_text())
    return 0


# ------------------------------------------------------------------------------------------------ ann
def _parser_ann(bench_sub: Any) -> None:
    p = bench_sub.add_parser(
        "ann",
        help="hnswlib vs faiss vs usearch (inner product or MIPS->NN reduction): recall, latency, build, memory",
        description="Measure the ANN libraries on exported LED vectors ([v; b], queries [q; 1]) or on a synthetic "
        "catalogue: recall@k against exact search, single-query latency p50/p99 on one thread, build time and "
        "index memory, for each library, form and ef_search. Each library runs in its own child process.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_served_run_args(p, "a run directory or serving export; queries from --data's test users")
    p.add_argument(
        "--items", type=number(int, low=1), default=1_000_000, help="synthetic catalogue size (without --run)"
    )
    p.add_argument("--dim", type=number(int, low=1), default=100, help="synthetic vector dimension (without --run)")
    p.add_argument("--queries", type=number(int, low=1), default=1000, help="number of queries")
    p.add_argument("--k", type=number(int, low=1), default=20, help="recall@k")
    p.add_argument("--ef", type=numbers(int, low=1), default=(50, 100, 200), help="ef_search values (comma-separated)")
    p.add_argument("--M", type=number(int, low=1), default=32, help="graph degree")
    p.add_argument("--ef-construction", type=number(int, low=1), default=200, help="build-time candidate list")
    p.add_argument("--libraries", default="hnswlib,faiss,usearch", help="comma-separated")
    p.add_argument("--forms", default="ip,nn", help="ip (raw inner product), nn (MIPS->NN reduction)")
    p.add_argument("--seed", type=number(int, low=0), default=0, help="seed of the synthetic data and query choice")
    p.add_argument("--out", default=None, help="folder for ann.json and ann.md")
    p.set_defaults(func=cmd_bench_ann)


def cmd_bench_ann(args: argparse.Namespace) -> int:
    from ledrec.bench.ann import ann_bench

    text = ann_bench(
        args.out,
        run=args.run,
        data=served_run_data(args),
        n_items=args.items,
        dim=args.dim,
        n_queries=args.queries,
        k=args.k,
        libraries=tuple(x.strip() for x in args.libraries.split(",")),
        forms=tuple(x.strip() for x in args.forms.split(",")),
        efs=args.ef,
        params={"M": args.M, "ef_construction": args.ef_construction},
        seed=args.seed,
    )
    print(text)
    return 0


# ------------------------------------------------------------------------------------------------ serve
def _parser_serve(bench_sub: Any) -> None:
    p = bench_sub.add_parser(
        "serve",
        help="the paper's Table 4: max QPS, p50/p99 end to end over loopback gRPC, per-stage latency, ANN recall",
        description="For each --front, start 'ledrec serve' and drive it from a separate load-generator process "
        "over loopback gRPC: closed loop for the max QPS, open loop at --rate for latency p50/p99; the same loads "
        "against a do-nothing server of the same stack (the floor); per-stage latencies (user embedding, KNN) "
        "and ANN recall@k in process on the same histories; Mult-VAE exact full scoring on the same histories as "
        "a latency ratio. Medians of --repeats runs, the fronts alternating. A trained run (--run with --data for "
        "histories of its test users) or a synthetic catalogue (--items, --dim). Prints the summary as JSON; "
        "OUT/serve.md has the table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_served_run_args(p, "run directory or serving export to serve; histories from --data's test users")
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
    p.add_argument(
        "--front",
        default=None,
        help="the fronts of ledrec serve to measure, comma-separated (python, native); each against its own "
        "do-nothing floor, repeats alternating their order (default: python,native where the native front is "
        "built, python otherwise)",
    )
    p.add_argument("--out", required=True, help="folder for serve.json, serve.md (and the synthetic export)")
    p.set_defaults(func=cmd_bench_serve)


def cmd_bench_serve(args: argparse.Namespace) -> int:
    from ledrec.bench.serve import ServeBenchConfig, serve_bench
    from ledrec.serve import native

    fronts = args.front or ("python,native" if native.available() else "python")
    config = ServeBenchConfig(
        serving_dir=args.run or "",
        k=args.k,
        ef=args.ef,
        workers=args.workers,
        clients=args.clients,
        rate=args.rate,
        seconds=args.seconds,
        client=args.client,
        fronts=tuple(f.strip() for f in fronts.split(",") if f.strip()),
        **({"cpp_client": args.cpp_client} if args.cpp_client else {}),
    )
    config.validate()  # before reading any data or building a catalogue
    data = served_run_data(args)
    summary = serve_bench(
        config,
        args.out,
        data=data,
        n_items=args.items,
        dim=args.dim,
        max_history=args.max_history,
        seed=args.seed,
        repeats=args.repeats,
    )
    print(json.dumps(summary, indent=2))
    return 0


# ------------------------------------------------------------------------------------------------ chaos
def _parser_chaos(bench_sub: Any) -> None:
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


def cmd_bench_chaos(args: argparse.Namespace) -> int:
    from ledrec.bench.chaos import ChaosConfig, markdown, run_chaos
    from ledrec.config import from_args

    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else ()
    config = from_args(ChaosConfig, args, export=args.export, out=args.out, classes=classes)
    result = run_chaos(config, progress=not args.quiet)
    print(markdown(result), file=sys.stderr)
    print(json.dumps({"ok": result["ok"], "out": args.out, "seconds": result["seconds"]}))
    return 0 if result["ok"] else 1


# ------------------------------------------------------------------------------------------------ table3
def _parser_table3(bench_sub: Any) -> None:
    from ledrec.simulate.world import ProductionConfig

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
    add_flags(p, ProductionConfig)
    p.set_defaults(func=cmd_bench_table3)


def cmd_bench_table3(args: argparse.Namespace) -> int:
    from ledrec.bench.table3 import world_table3
    from ledrec.simulate.world import ProductionConfig

    world_table3(
        args.data,
        None if args.data else from_args(ProductionConfig, args),  # a directory's world is its own
        args.out,
        epochs=args.epochs,
        dim=args.dim,
        negatives=args.negatives,
        seed=args.seed,
        progress=not args.quiet,
    )
    print((Path(args.out) / "table3.md").read_text())
    return 0
