"""The paper's tables and figures as commands: each runs end to end on tiny data and writes what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ledrec.bench.figure2 import figure2
from ledrec.cli import main
from ledrec.data.load import load_prepared

TINY = "synthetic:n_users=300,n_items=120,n_topics=4,n_partitions=1"


def test_table2_writes_every_row_and_reuses_them(tmp_path, capsys):
    out = tmp_path / "t2"
    argv = ["bench", "table2", "--data", TINY, "--protocol", "strong", "--out", str(out), "--quiet"]
    argv += ["--rows", "led-mult,vae-mult,dae-mult,pop", "--param", "led.epochs=2", "--param", "led.dim=8"]
    argv += ["--param", "vae.epochs=2", "--param", "vae.hidden=16", "--param", "dae.epochs=2"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| led | mult |" in text and "| pop | — |" in text
    rows = json.loads((out / "table2.json").read_text())["rows"]
    assert [(r["model"], r["loss"]) for r in rows] == [("led", "mult"), ("vae", "mult"), ("dae", "mult"), ("pop", None)]
    vae = next(r for r in rows if r["model"] == "vae")
    assert vae["vs_vae"] == 0.0 and vae["params"]["hidden"] == 16
    assert all(0.0 <= r["recall@20"] <= r["recall@50"] <= 1.0 for r in rows)
    # a second call reuses the rows' JSON instead of training again
    stamp = (out / "led-mult.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "led-mult.json").stat().st_mtime_ns == stamp
    # ... and refuses to reuse a row that was run with other options
    capsys.readouterr()
    assert main([a.replace("led.dim=8", "led.dim=16") for a in argv]) == 2
    assert "led-mult.json was run with other options (dim)" in capsys.readouterr().err


def test_table2_row_options_override_their_models_for_that_row_only(tmp_path, capsys):
    argv = ["bench", "table2", "--data", TINY, "--protocol", "strong", "--out", str(tmp_path), "--quiet"]
    argv += ["--rows", "vae-mult,vae-mult-css", "--param", "vae.epochs=1", "--param", "vae.hidden=16"]
    argv += ["--param", "vae-mult-css.hidden=8", "--param", "vae-mult-css.negatives=20"]
    assert main(argv) == 0
    rows = {r["loss"]: r["params"] for r in json.loads((tmp_path / "table2.json").read_text())["rows"]}
    assert (rows["mult"]["hidden"], rows["mult-css"]["hidden"]) == (16, 8)
    assert rows["mult-css"]["negatives"] == 20 and rows["mult"]["epochs"] == rows["mult-css"]["epochs"] == 1
    capsys.readouterr()
    assert main([*argv, "--param", "vae-foo.hidden=8"]) == 2
    assert "ROW in" in capsys.readouterr().err


def test_table2_rejects_unknown_rows_and_options(tmp_path, capsys):
    base = ["bench", "table2", "--data", TINY, "--protocol", "strong", "--out", str(tmp_path)]
    assert main([*base, "--rows", "led-foo"]) == 2
    assert "unknown" in capsys.readouterr().err
    assert main([*base, "--param", "vae.nonsense=3"]) == 2
    assert "has no option" in capsys.readouterr().err


def test_table2_specs_parse_into_params_and_rows():
    from ledrec.bench.table2 import parse_params, parse_rows
    from ledrec.errors import ConfigError

    params = parse_params(["led.dim=8,16", "ease.lam=3", "vae-mult-css.hidden=8", "led.init-scale=2"])
    assert params == {
        "led": {"dim": [8, 16], "init_scale": [2.0]},
        "ease": {"lam": [3.0]},
        "vae-mult-css": {"hidden": [8]},
    }
    assert parse_rows("ease, led-mult") == [("ease", None), ("led", "mult")] and len(parse_rows(None)) == 10
    for bad, message in [
        ("led.dim", "expected MODEL.OPTION"),
        ("foo.dim=3", "ROW in"),
        ("led.nope=1", "no option"),
        ("led.dim=16x", "--dim: '16x' is not an int"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_params([bad])
    with pytest.raises(ConfigError, match=r"--rows: unknown \['led-foo'\]"):
        parse_rows("led-foo,ease")


def test_figure2_writes_table_json_and_plot(tmp_path):
    data = load_prepared(TINY, "strong")
    rows = figure2(data, tmp_path, fractions=(0.1, 1.0), led_params={"dim": 8, "epochs": 2}, progress=False)
    assert len(rows) == 2 * 2 * 2  # fractions × init × tuning
    assert {(r["init"], r["tuning"]) for r in rows} == {(i, t) for i in ("random", "svd") for t in ("full", "project")}
    for name in ("figure2.json", "figure2.md", "figure2.png"):
        assert (tmp_path / name).stat().st_size > 0


def _native_client() -> str:
    from ledrec.bench.serve import ServeBenchConfig

    return ServeBenchConfig(serving_dir="").cpp_client


@pytest.mark.slow
@pytest.mark.parametrize("client", ["python", "cpp"])
def test_bench_serve_measures_the_service_and_the_grpc_floor_over_loopback(tmp_path, client):
    """One short repeat of Table 4 on a 2,000-item catalogue, on each front: the stages, both load loops
    against 'ledrec serve', and the same loads against the front's fixed-answer server; no request fails. The
    C++ generator is optional (benchmarks/grpc_load/build.sh): its case is skipped where it is not built."""
    from pathlib import Path

    from ledrec.bench.serve import ServeBenchConfig, markdown, run_bench, synthetic_export
    from ledrec.serve import native

    if client == "cpp" and not Path(_native_client()).is_file():
        pytest.skip("the C++ load generator is not built (bash benchmarks/grpc_load/build.sh)")
    fronts = ("python", "native") if native.available() else ("python",)
    export = tmp_path / "export"
    _, histories = synthetic_export(export, n_items=2000, dim=8, seed=0)
    config = ServeBenchConfig(
        serving_dir=str(export),
        histories=histories[:200],
        workers=1,
        clients=2,
        rate=100.0,
        seconds=0.5,
        client=client,
        fronts=fronts,
    )
    result = run_bench(config, repeats=1, progress=False)
    for front in fronts:
        m = result["median"][front]
        assert m["recall"] == 1.0  # 2,000 items: the exact index serves them
        assert m["open_loop_errors"] == 0 and m["closed_loop_errors"] == 0
        floor = result["runs"][front][0]["floor"]
        assert floor["open"]["errors"] == 0 and floor["open"]["sent"] == 50
        assert 0 < m["floor_p50_us"] < 1e6 and m["floor_max_qps"] > 0
        assert 0 <= m["send_lag_p50_us"] <= m["send_lag_p99_us"] < 1e6  # the generator's timing error, reported
        server = result["runs"][front][0]["e2e"]["open"]["server"]  # the open loop's requests, inside the server
        assert server["total"]["n"] == 50 and 0 < m["server_total_p50_us"] <= m["server_total_p99_us"]
        assert m["server_knn_p50_us"] <= m["server_total_p99_us"]
    text = markdown(result, "t")
    assert all(f"| {front} |" in text for front in fronts) and "paper, Table 4" in text and "late" in text
    assert set(result["acceptance"]) == (
        {"native_over_floor_qps", "p50_over_floor_plus_model_us", "p99_over_floor_us", "native_over_python_qps"}
        if len(fronts) == 2
        else set()
    )


def test_bench_serve_says_how_to_build_a_missing_native_client(tmp_path):
    from ledrec.bench.serve import ServeBenchConfig, _drive

    config = ServeBenchConfig(serving_dir="", histories=[["1"]], client="cpp", cpp_client=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match=r"build\.sh"):
        _drive(config, port=1)
    with pytest.raises(ValueError, match="python' or 'cpp"):
        _drive(ServeBenchConfig(serving_dir="", client="java"), port=1)


def test_stage_quantiles_interpolate_inside_the_bucket():
    from ledrec.bench.serve import stage_quantiles

    inf = float("inf")
    before = {"knn": {1e-4: 10.0, 2e-4: 10.0, inf: 10.0}}
    # 100 requests between the scrapes: 40 under 100 µs, 60 in (100, 200] µs
    after = {"knn": {1e-4: 50.0, 2e-4: 110.0, inf: 110.0}}
    q = stage_quantiles(before, after)["knn"]
    assert q["n"] == 100
    assert q["p50_us"] == pytest.approx(100 + 100 * (50 - 40) / 60)
    assert q["p99_us"] == pytest.approx(100 + 100 * (99 - 40) / 60)
    only_overflow = stage_quantiles({}, {"total": {1e-4: 0.0, inf: 5.0}})["total"]
    assert only_overflow["p50_us"] == pytest.approx(100.0)  # beyond the last edge: the edge is all we know


@pytest.mark.slow
def test_peers_rows_run_measured_and_are_reused(tmp_path, capsys):
    pytest.importorskip("implicit")
    from ledrec.cli import main

    argv = ["bench", "peers", "--data", "synthetic:n_users=300,n_items=80", "--protocol", "strong"]
    argv += ["--out", str(tmp_path), "--rows", "pop,als", "--args", "als=--factors 8 --regularization 0.1 --alpha 1"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| pop |" in table and "| als |" in table and "GiB" in table
    rows = json.loads((tmp_path / "peers.json").read_text())["rows"]
    assert [r["row"] for r in rows] == ["als", "pop"] and all(r["peak_gib"] > 0 and r["wall_s"] > 0 for r in rows)
    assert rows[0]["params"]["factors"] == 8  # the row's own flags win over the default grid
    stamp = (tmp_path / "als.json").stat().st_mtime_ns
    assert main(argv) == 0 and (tmp_path / "als.json").stat().st_mtime_ns == stamp  # reused, not rerun


@pytest.mark.slow
def test_peers_on_every_board_write_one_table(tmp_path, capsys):
    from ledrec.bench.peers import BOARDS
    from ledrec.cli import main

    rng = np.random.default_rng(0)
    for board in BOARDS:  # three tiny boards in the BARS text format: "user item item ..."
        (tmp_path / board).mkdir()
        for part, size in (("train", 6), ("test", 2)):
            lines = [f"{u} " + " ".join(map(str, rng.choice(30, size, replace=False))) for u in range(40)]
            (tmp_path / board / f"{part}.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert main(["bench", "peers", "--boards", str(tmp_path), "--out", str(out), "--rows", "pop"]) == 0
    table = capsys.readouterr().out
    assert table.strip() == (out / "boards.md").read_text().strip() and all(b in table for b in BOARDS)
    assert table.count("| pop |") == 1 and table.count(" s) ") == 3  # one row, a cell per board
    assert all((out / b / "pop.json").is_file() for b in BOARDS)
    assert main(["bench", "peers", "--boards", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert main(["bench", "peers", "--out", str(out)]) == 2
    capsys.readouterr()
