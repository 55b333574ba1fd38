"""The A/B simulator end to end on a small world: reproducible under a seed, honest bookkeeping, a report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ledrec.cli import main
from ledrec.errors import ConfigError
from ledrec.simulate.ab import SimulationConfig, simulate
from ledrec.simulate.report import analyse, bootstrap_means, write_report
from ledrec.simulate.world import ProductionConfig

WORLD = ProductionConfig(n_users=1500, n_items=800, n_merchants=8, n_categories=8, categories_per_merchant=3, days=7)
SMALL = SimulationConfig(
    world=WORLD, test_days=4, warmup_days=1, led_dim=8, led_epochs=2, cbo_clusters=4, bootstrap=200
)


@pytest.fixture(scope="module")
def result():
    return simulate(SMALL, progress=False)


def test_reproducible_under_seed(result):
    again = simulate(SMALL, progress=False)
    for name in ("population", "clicks", "sales", "value", "displays"):
        np.testing.assert_array_equal(getattr(result, name), getattr(again, name))


def test_bookkeeping(result):
    assert result.clicks.shape == (WORLD.n_users, SMALL.test_days - SMALL.warmup_days)
    assert np.all(result.clicks <= result.displays) and np.all(result.sales <= result.clicks)
    assert result.displays.sum() > 0 and result.clicks.sum() > 0
    assert np.all(result.value[result.sales == 0] == 0)
    # population A is served by GBO only, B never by LED
    assert result.shown_sources["A"][:, 0].all() and not result.shown_sources["A"][:, 1:].any()
    assert not result.shown_sources["B"][:, 2].any()
    assert result.shown_sources["C"][:, 2].any()


def test_report(result, tmp_path):
    stats = write_report(result, tmp_path, "test")
    text = (tmp_path / "report.md").read_text()
    for section in ("Answers", "Uplift over A", "Share of voice", "Popularity of displayed products"):
        assert section in text
    for png in ("uplift.png", "daily.png", "popularity.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "result.json").read_text())
    assert (
        saved["populations"]["A"]["users"] + saved["populations"]["B"]["users"] + saved["populations"]["C"]["users"]
        == WORLD.n_users
    )
    a = stats["populations"]["A"]["clicks"]
    assert a["ci95"][0] <= a["per_user"] <= a["ci95"][1]
    assert stats["share_of_voice"]["A"]["gbo"]["proposed"] == 1.0
    assert analyse(result) == stats  # the report's numbers come from the result, deterministically


def test_bootstrap_interval_covers_the_mean():
    rng = np.random.default_rng(0)
    x = rng.poisson(2.0, 5000).astype(float)
    b = bootstrap_means(x, 500, rng)
    lo, hi = np.percentile(b, [2.5, 97.5])
    assert lo < x.mean() < hi and hi - lo < 0.2


def test_config_validation():
    with pytest.raises(ConfigError, match="warmup"):
        SimulationConfig(test_days=2, warmup_days=2)
    with pytest.raises(ConfigError, match="SimulationConfig: banner_size must be an int >= 1, not 0"):
        SimulationConfig(banner_size=0)
    with pytest.raises(ConfigError, match="led_score must be one of"):
        SimulationConfig(led_score="z")
    with pytest.raises(ConfigError, match="candidates_per_source"):
        SimulationConfig(banner_size=8, candidates_per_source=6)


@pytest.mark.parametrize("command", ["ab", "sweep"])
def test_every_option_is_a_flag_with_its_declared_default_and_bounds(command, capsys):
    from ledrec.cli import build_parser
    from ledrec.config import field_options

    args = build_parser().parse_args(["simulate", command])
    skipped = {"ab": {"seed"}, "sweep": {"n_users", "n_items", "seed"}}[command]
    for cls in (ProductionConfig, SimulationConfig):
        for o, _ in field_options(cls):
            if not (cls is ProductionConfig and o.name in skipped) and not (command == "sweep" and o.name == "seed"):
                assert getattr(args, o.name) == o.default, o.name
    # a flag refuses what its field refuses, in one line, exit 2
    for bad in (["--bootstrap", "5"], ["--led-score", "z"]):
        with pytest.raises(SystemExit) as exit:
            main(["simulate", command, *bad, "--out", "x"])
        assert exit.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "bootstrap must be an int >= 10" in err[0] and "led_score must be one of" in err[1]


def test_cli_generate_and_ab(tmp_path, capsys):
    size = ["--n-users", "800", "--n-items", "600", "--n-merchants", "6", "--n-categories", "6", "--days", "5"]
    assert (
        main(["simulate", "generate", "--out", str(tmp_path / "world"), *size, "--categories-per-merchant", "2"]) == 0
    )
    assert (tmp_path / "world" / "events.parquet").exists()
    out = tmp_path / "ab"
    args = ["simulate", "ab", "--out", str(out), "--quiet", *size, "--categories-per-merchant", "2"]
    args += ["--test-days", "3", "--warmup-days", "1", "--led-dim", "8", "--led-epochs", "1", "--cbo-clusters", "3"]
    assert main(args) == 0
    assert (out / "report.md").exists()
    capsys.readouterr()


def test_population_split_is_deterministic_disjoint_and_balanced(result):
    again = simulate(SMALL, progress=False)
    np.testing.assert_array_equal(result.population, again.population)
    assert set(np.unique(result.population)) == {0, 1, 2}  # one label per user: disjoint, covering everyone
    shares = np.bincount(result.population) / len(result.population)
    assert np.all(np.abs(shares - 1 / 3) < 0.05)


def _planted(seed: int, uplift_b: float, uplift_c: float, n_users: int = 3000):
    """A SimulationResult whose per-user clicks are Poisson with known population means."""
    from ledrec.simulate.ab import SimulationResult

    rng = np.random.default_rng(seed)
    population = rng.integers(0, 3, n_users)
    rate = np.array([1.0, 1.0 + uplift_b, 1.0 + uplift_c])[population]
    clicks = rng.poisson(rate[:, None] / 2, (n_users, 2)).astype(float)  # two reported days
    sales = np.minimum(clicks, rng.poisson(0.3 * rate[:, None] / 2, (n_users, 2)))
    config = SimulationConfig(world=WORLD, test_days=3, warmup_days=1, bootstrap=400, seed=seed)
    flags = np.zeros((0, 3), bool)
    return SimulationResult(
        config=config,
        population=population,
        clicks=clicks,
        sales=sales,
        value=sales * 10.0,
        displays=clicks * 10 + 5,
        shown_sources={p: flags for p in "ABC"},
        shown_popularity={p: np.zeros(0) for p in "ABC"},
        ranker_coefficients={},
        timings={},
        pre_period={},
    )


def test_confidence_intervals_cover_a_planted_uplift():
    covered = 0
    for seed in range(40):
        u = analyse(_planted(seed, 0.1, 0.25))["uplift"]["clicks"]
        lo, hi = u["C_over_A_ci95"]
        covered += lo <= 0.25 <= hi
    assert covered >= 34  # nominal 95%: 38 of 40 expected; P(≤ 33 | 95%) < 0.5%
    stats = analyse(_planted(0, 0.1, 0.25, n_users=30_000))
    assert stats["uplift"]["clicks"]["order_C_B_A_separated"]
    assert abs(stats["uplift"]["clicks"]["C_over_A_normalised_by_B"] - 2.5) < 0.6


def test_saved_system_serves_the_led_score_its_ranker_learned_on(tmp_path):
    from dataclasses import replace

    from ledrec.twostage.artifact import load_system

    for score in ("log_lift", "raw"):
        simulate(replace(SMALL, test_days=2, led_score=score), progress=False, save_system_dir=str(tmp_path / score))
        led = load_system(tmp_path / score).system.sources[2]
        assert led.name == "led" and led.score == score
