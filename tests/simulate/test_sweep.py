"""The A/B sweep: one run per (size, seed), exactly the A/B test's numbers, a well-formed table, and the
ground-truth diagnostics obeying what they must (no banner beats the best the candidates allow)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ledrec.cli import main
from ledrec.errors import ConfigError
from ledrec.simulate.ab import SimulationConfig, simulate
from ledrec.simulate.report import analyse
from ledrec.simulate.sweep import Size, configs, markdown, parse_seeds, parse_sizes, run_sweep, summarise
from ledrec.simulate.world import ProductionConfig

WORLD = ProductionConfig(n_merchants=6, n_categories=6, categories_per_merchant=2, days=5)
BASE = SimulationConfig(world=WORLD, test_days=3, warmup_days=1, led_dim=8, led_epochs=1, cbo_clusters=3, bootstrap=100)
SIZES = [Size(600, 300), Size(900, 400)]


@pytest.fixture(scope="module")
def doc():
    return run_sweep(BASE, SIZES, [3], progress=False)


def test_sizes_and_seeds_parse_or_fail_in_one_line():
    assert parse_sizes("5000x1000, 20000X4000x60") == [Size(5000, 1000), Size(20000, 4000, 60)]
    assert parse_seeds("0,1,2") == [0, 1, 2]
    for bad in ("5000", "5000x", "0x10", "5000x1000x1x1", "axb", "10x10,10x10"):
        with pytest.raises(ConfigError, match="size"):
            parse_sizes(bad)
    for bad in ("", "1,,2", "-1", "1,1"):
        with pytest.raises(ConfigError, match="seeds"):
            parse_seeds(bad)


def test_configs_vary_size_and_seed_only():
    runs = configs(BASE, [Size(600, 300), Size(900, 400, 4)], [0, 5])
    assert [(c.world.n_users, c.world.n_items, c.world.n_merchants, c.seed) for c in runs] == [
        (600, 300, 6, 0),
        (600, 300, 6, 5),
        (900, 400, 4, 0),
        (900, 400, 4, 5),
    ]
    assert all(c.world.seed == c.seed for c in runs)  # a seed is a new world, not only a new split
    assert all(replace(c, world=WORLD, seed=0) == replace(BASE, world=WORLD, seed=0) for c in runs)


def test_a_row_is_the_ab_tests_own_numbers(doc):
    assert [(r["n_users"], r["n_items"], r["seed"]) for r in doc["rows"]] == [(600, 300, 3), (900, 400, 3)]
    config = configs(BASE, SIZES[:1], [3])[0]
    stats = analyse(simulate(config, progress=False))
    row = doc["rows"][0]
    for metric in ("clicks", "sales"):
        for p in "ABC":
            assert row[metric][p]["per_user"] == stats["populations"][p][metric]["per_user"]
            assert row[metric][p]["ci95"] == stats["populations"][p][metric]["ci95"]
    assert sum(row["users_per_population"].values()) == 600


def test_rows_are_consistent(doc):
    for r in doc["rows"]:
        for metric in ("clicks", "sales"):
            m = r[metric]
            point = {p: m[p]["per_user"] for p in "ABC"}
            for p in "ABC":
                lo, hi = m[p]["ci95"]
                assert lo <= point[p] <= hi
            assert m["C_B_A_point"] == (point["C"] > point["B"] > point["A"])
            separated = m["C"]["ci95"][0] > m["B"]["ci95"][1] and m["B"]["ci95"][0] > m["A"]["ci95"][1]
            assert m["C_B_A_separated"] == separated and (not separated or m["C_B_A_point"])
            if point["B"]:
                np.testing.assert_allclose(m["C_over_B"], point["C"] / point["B"] - 1)
        assert 0 < r["led"]["share_of_voice"] <= 1 and 0 <= r["led"]["share_of_voice_only"] <= 1
        assert set(r["led"]["ranker"]) == {"from_led", "rr_led", "led_score"}
        assert set(r["truth"]) == {"A", "B", "C"}
        for p, t in r["truth"].items():
            assert 0 < t["coverage"] <= 1
            # no banner expects more clicks than the best the candidates allow, nor those than the catalogue's
            assert 0 < t["candidate_efficiency"] <= 1 + 1e-9 and 0 < t["ranking_efficiency"] <= 1 + 1e-9
            assert all(0 <= v <= 1 for v in t["precision"].values())
            assert set(t["precision"]) == {"A": {"gbo"}, "B": {"gbo", "cbo"}, "C": {"gbo", "cbo", "led"}}[p]
            assert (t["led_features_gain"] is not None) == (p == "C")
    (small, large) = doc["by_size"]
    assert small["seeds"] == large["seeds"] == 1
    assert small["clicks"]["C_B_A_point"] == int(doc["rows"][0]["clicks"]["C_B_A_point"])


def test_markdown_has_a_line_per_run_and_per_size(doc):
    text = markdown(doc)
    for r in doc["rows"]:
        size = f"{r['n_users']:,} x {r['n_items']:,} x {r['n_merchants']}"
        # a line in each of the three per-run tables, one in the per-size table
        assert sum(line.startswith(f"| {size} | 3 |") for line in text.splitlines()) == 3
        assert sum(line.startswith(f"| {size} | 1 |") for line in text.splitlines()) == 1
    assert text.count("## ") == 4


def test_the_diagnostics_do_not_change_the_simulation():
    config = configs(BASE, SIZES[:1], [3])[0]
    a = simulate(config, progress=False)
    b = simulate(replace(config, diagnostic_requests=1), progress=False)
    for name in ("clicks", "sales", "displays"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.diagnostics["C"]["requests"] > b.diagnostics["C"]["requests"] > 0


@pytest.mark.slow
def test_cli_sweep_writes_the_table_and_prints_json(tmp_path, capsys):
    world = ["--n-merchants", "6", "--n-categories", "6", "--categories-per-merchant", "2", "--days", "5"]
    ab = ["--test-days", "3", "--warmup-days", "1", "--led-dim", "8", "--led-epochs", "1", "--cbo-clusters", "3"]
    out = tmp_path / "sweep"
    args = ["simulate", "sweep", "--sizes", "600x300,900x400x4", "--seeds", "1", "--out", str(out), *world, *ab]
    assert main([*args, "--bootstrap", "100"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    saved = json.loads((out / "sweep.json").read_text())
    assert printed["rows"] == saved["rows"] and len(saved["rows"]) == 2
    assert saved["rows"][1]["n_merchants"] == 4
    assert "sweep 2/2: 900x400x4 seed 1 done" in captured.err
    assert "| 900 x 400 x 4 | 1 |" in (out / "sweep.md").read_text()
    for run in ("600x300-seed1", "900x400x4-seed1"):
        assert (out / run / "report.md").exists() and (out / run / "result.json").exists()
    assert main(["simulate", "sweep", "--sizes", "600", "--out", str(tmp_path / "bad")]) == 2
    assert main(["simulate", "sweep", "--out", str(tmp_path / "bad"), "--test-days", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("ledrec simulate sweep: error:") for line in err)


def test_the_pooled_interval_of_independent_seeds_narrows_as_one_over_root_n():
    def fake(seed: int, uplift: float) -> dict:
        metric = {"C_over_B": uplift, "C_over_B_ci95": [uplift - 0.1, uplift + 0.1], "C_B_A_point": True}
        metric["C_B_A_separated"] = False
        return {"n_users": 10, "n_items": 5, "n_merchants": 2, "seed": seed, "clicks": metric, "sales": metric}

    (size,) = summarise([fake(s, u) for s, u in enumerate((0.02, 0.04, 0.06, 0.08))])
    lo, hi = size["clicks"]["C_over_B_pooled_ci95"]
    np.testing.assert_allclose([(lo + hi) / 2, hi - lo], [0.05, 0.2 / np.sqrt(4)])
    assert size["clicks"]["C_above_B_separated"] == 0 and size["seeds"] == 4
