"""What a new user meets first: `import ledrec`, models with real signatures and checked options,
recommendations by id, and a command line whose every user error is one line with exit status 2."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

import ledrec
from ledrec.cli import HELP, build_parser, main
from ledrec.errors import ConfigError

DATA = "synthetic:n_users=200,n_items=80"


def test_import_ledrec_is_cheap_and_exports_the_public_names():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, ledrec; print('torch' in sys.modules, 'LED' in dir(ledrec))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["False", "True"]
    for name in ledrec.__all__:
        assert getattr(ledrec, name) is not None


def test_models_have_signatures_docs_and_checked_options():
    signature = inspect.signature(ledrec.LED)
    assert signature.parameters["dim"].default is None and signature.parameters["random_state"].default == 0
    assert "dim : int, default None" in ledrec.LED.__doc__ and "led-trained" in ledrec.LED.__doc__
    assert "an int >= 1" in ledrec.LED.__doc__
    assert "lam : float, default 500.0" in ledrec.EASE.__doc__
    bad = [
        (ledrec.LED, {"dim": "16"}, "dim must be an int"),
        (ledrec.LED, {"dim": -1}, "dim must be an int >= 1"),
        (ledrec.LED, {"loss": "foo"}, "loss must be one of"),
        (ledrec.LED, {"dropout": 1.5}, r"dropout must be a number in \[0, 1\)"),
        (ledrec.LED, {"epochs": True}, "epochs must be an int"),
        (ledrec.EASE, {"lam": -1}, "lam must be a number > 0"),
        (ledrec.MultVAE, {"lr": float("nan")}, "lr must be"),
    ]
    for model, params, message in bad:
        with pytest.raises(ConfigError, match=message):
            model(**params)
    assert ledrec.LED(dim=np.int64(8), lr=1).lr == 1.0  # numpy ints are ints, ints are valid floats


def test_every_model_option_is_a_run_flag_with_each_models_default():
    helps = {a.dest: a.help for a in build_parser("run")._subparsers._group_actions[0].choices["run"]._actions}
    for name, model in ledrec.MODELS.items():
        for option in model.options:
            default = "by --preset" if option.default is None else repr(option.default)
            assert f"{name} {default}" in helps[option.name], (name, option.name)


def test_events_to_recommendations_by_id(tmp_path):
    rng = np.random.default_rng(0)
    users = [f"u{u}" for u in range(60) for _ in range(8)]
    items = [f"item-{(u % 6) * 10 + rng.integers(10)}" for u in range(60) for _ in range(8)]  # 6 groups of 10
    data = ledrec.Interactions.from_events(users, items, timestamp=np.arange(len(users)))
    assert data.n_users == 60 and data.timestamp is not None and data.items.ids[0].startswith("item-")
    model = ledrec.LED(dim=8, epochs=30, init="random", dropout=0.0, lr=0.05).fit(data)
    recs = model.recommend_ids(["item-1", "item-2", "nope"], k=5)
    assert len(recs) == 5 and not {"item-1", "item-2"} & {i for i, _ in recs}
    assert sum(int(i.split("-")[1]) < 10 for i, _ in recs) >= 4  # the history's own group
    assert [s for _, s in recs] == sorted((s for _, s in recs), reverse=True)
    assert [i for i, _ in model.recommend_ids(["item-1"], k=3, allowed=["item-55", "item-2", "x"])] == [
        i for i, _ in model.recommend_ids(["item-1"], k=3, allowed=["item-2", "item-55"])
    ]
    assert {i for i, _ in model.recommend_ids(["item-1"], k=9, allowed=["item-55", "item-2"])} == {"item-55", "item-2"}
    assert len(model.recommend_ids([], k=4)) == 4  # a brand-new user: cold start
    model.save(tmp_path / "m")
    again = ledrec.LED.load(tmp_path / "m")
    assert again.recommend_ids(["item-1", "item-2"], k=5) == recs  # the saved model kept its item ids
    with pytest.raises(ledrec.DataError, match="rows"):
        ledrec.Interactions.from_events(["a", "b"], ["x"])


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--data", DATA, "--protocol", "strong", "--model", "led", "--dim", "-5"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "led", "--lr", "-1"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "led", "--batch-size", "0"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "led", "--loss", "foo"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "ease", "--lam", "-1"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "vae", "--epochs", "0"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "led", "--epochs", "-1"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "led", "--dropout", "1.5"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "pop", "--dim", "64"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "ease", "--lam", "1,2", "--no-select"],
        ["run", "--data", DATA, "--protocol", "strong", "--model", "led", "--dim", "16x"],
        ["run", "--data", DATA, "--protocol", "bogus", "--model", "led"],
        ["run", "--data", "/no/such/data", "--protocol", "strong", "--model", "pop"],
        ["bench", "ann", "--k", "0"],
        ["bench", "serve", "--rate", "-1", "--out", "x"],
        ["bench", "figure2", "--data", DATA, "--protocol", "strong", "--out", "x", "--dropout", "1"],
        ["bench", "table2", "--data", DATA, "--protocol", "strong", "--out", "x", "--param", "led.dim=-3"],
        ["serve", ".", "--port", "-1"],
        ["serve", ".", "--workers", "0"],
        ["export", "/no/such/run"],
        ["info", "--data", "/no/such/data"],
        ["pretrain", "--data", DATA, "--dim", "-3", "--out", "x"],
        ["generate", "--out", "x.parquet", "--n-users", "-5"],
        ["simulate", "generate", "--out", "x", "--n-users", "0"],
        ["prepare", "--data", DATA, "--protocol", "strong", "--out", "x", "--heldout-users", "-1"],
        ["pipeline", "--events", "/no/such/events", "--out", "x"],
        ["pipeline", "run", "--events", "e", "--out", "x", "--holdout-days", "0"],
        ["pipeline", "run", "--events", "e", "--out", "x", "--led", "loss=foo"],
        ["pipeline", "run", "--events", "e", "--out", "x", "--led", "nope=1"],
        ["pipeline", "run", "--events", "e"],
        ["pipeline", "status", "/no/such/root"],
        ["pipeline", "rollback", "/no/such/root"],
        ["fold-in", "/no/such/root", "--events", "e"],
        ["fold-in", ".", "--events", "e", "--min-users", "0"],
        ["recommend", "/no/such/model", "--histories", "e", "--out", "r.parquet"],
        ["recommend", ".", "--histories", "e", "--out", "r.parquet", "--k", "0"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_user_errors_are_one_line_and_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_a_missing_native_load_generator_is_refused_before_any_work(tmp_path, capsys):
    """`bench serve --client cpp` without the built client was refused only after ~80 s of building the
    catalogue."""
    out = tmp_path / "bench"
    argv = ["bench", "serve", "--client", "cpp", "--cpp-client", str(tmp_path / "no-such-client"), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no-such-client" in err and "grpc_load/build.sh" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing built, nothing written


def test_every_command_has_help_built_lazily():
    for command in HELP:
        with pytest.raises(SystemExit) as exc:
            build_parser(command).parse_args([command, "--help"])
        assert exc.value.code == 0


def test_run_refuses_a_non_empty_out_unless_told_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--data", DATA, "--protocol", "strong", "--model", "pop", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    (out / "serving").mkdir()  # what an old export would leave
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "serving").exists() and (out / "model" / "manifest.json").is_file()


def test_export_of_events_without_a_partition_column_makes_one_catalogue_and_says_so(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    run = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--data",
                DATA,
                "--protocol",
                "strong",
                "--model",
                "svd",
                "--dim",
                "4",
                "--quiet",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    ids = ledrec.ServingModel.from_run(run).item_ids[:20].tolist()
    pq.write_table(pa.table({"user": ["u1"] * 20, "item": ids}), tmp_path / "events.parquet")
    capsys.readouterr()
    assert main(["export", str(run), "--data", str(tmp_path / "events.parquet")]) == 0
    captured = capsys.readouterr()
    assert "no partition column: one catalogue" in captured.err
    assert list(json.loads(captured.out)["partitions"]) == [""]


def test_led_chooses_its_member_by_the_data_and_never_changes_a_parameter():
    import sklearn.base

    from ledrec.models.led_common import LARGE_CATALOGUE, PRESETS

    default = ledrec.LED()  # small: the closed form (no epoch), large: ALS's loss (4 sweeps); no validation run
    assert default.candidates(100) == ["spectral"] and default.candidates(LARGE_CATALOGUE) == ["wls"]
    assert default.effective("dim", 100) == 256 and default.effective("dim", LARGE_CATALOGUE) == 512
    assert default.effective("epochs", LARGE_CATALOGUE) == 4 and default.effective("epochs", 100) is None
    assert not default.selects_on_validation(100) and not default.selects_on_validation(LARGE_CATALOGUE)
    assert default.candidates(100, separate_targets=True) == ["full"]  # multi-feedback: the paper's training
    assert ledrec.LED(loss="mult").candidates(LARGE_CATALOGUE) == ["spectral"]  # the closed form, chosen
    assert ledrec.LED(loss="mult").effective("dim", LARGE_CATALOGUE) == 1024
    assert ledrec.LED(init="svd").candidates(100) == ["full"]
    assert ledrec.LED(init="svd").effective("dim", 100) == PRESETS["trained"]["small"]["dim"]
    assert ledrec.LED(init="svd").effective("loss", LARGE_CATALOGUE) == "mult-css"  # the paper's training
    assert ledrec.LED(tuning="project").candidates(100) == ["project"]
    assert ledrec.LED(variant="spectral,wls").candidates(100) == ["spectral", "wls"]
    with pytest.raises(ConfigError, match="wls_confidence do"):
        ledrec.LED(variant="spectral", wls_confidence=3.0).member("spectral")  # it would be ignored
    with pytest.raises(ConfigError, match="variant must be"):
        ledrec.LED(variant="bogus").candidates(100)
    model = ledrec.LED(dim=16, epochs=2)
    assert model.effective("loss", 100) == "mult" and model.effective("variant", LARGE_CATALOGUE) == "wls"  # sweeps
    assert model.effective("dim", LARGE_CATALOGUE) == 16  # given: kept
    assert model.selects_on_validation(100) and not model.selects_on_validation(LARGE_CATALOGUE)  # fixed schedule
    rng = np.random.default_rng(0)
    users = [f"u{u}" for u in range(50) for _ in range(5)]
    items = [f"i{rng.integers(40)}" for _ in range(250)]
    data = ledrec.Interactions.from_events(users, items)
    for led in (model, ledrec.LED(preset="large", init="svd", epochs=1, dim=8), ledrec.LED(preset="large", dim=8)):
        before = led.get_params()
        clone = sklearn.base.clone(led)
        led.fit(data)
        assert led.get_params() == before and clone.get_params() == before  # fit changes no parameter
    assert model.variant_ == "full" and model.params_["lr"] == PRESETS["trained"]["small"]["lr"] and model.dim == 16
    large = ledrec.LED(preset="large", init="svd", epochs=1, dim=8).fit(data)
    assert (large.params_["loss"], large.params_["share_negatives"], large.params_["mult_after"]) == (
        "mult-css",
        "batch",
        21,
    )
    solved = ledrec.LED(preset="large", dim=8).fit(data)
    assert solved.variant_ == "wls" and solved.params_["reduce"] == "sqrt" and solved.reduce is None


@pytest.fixture(scope="module")
def fitted():
    """A small LED fitted on events with their own ids (the front door's path)."""
    rng = np.random.default_rng(0)
    users = [f"u{u}" for u in range(60) for _ in range(8)]
    items = [str((u % 6) * 10 + rng.integers(10)) for u in range(60) for _ in range(8)]
    return ledrec.LED(dim=8).fit(ledrec.Interactions.from_events(users, items))


def test_a_dataframe_or_table_given_to_fit_is_refused_with_the_fix():
    """`LED().fit(df)` trained a 4-item model on the column names."""
    import pandas as pd
    import pyarrow as pa

    events = {"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"], "event": ["view"] * 3, "timestamp": [1, 2, 3]}
    for table in (pd.DataFrame(events), pa.table(events), [[1, 0], [0, 1]], "events.parquet"):
        with pytest.raises(ledrec.InputError, match=r"Interactions.from_events\(table\['user'\], table\['item'\]\)"):
            ledrec.LED(dim=2).fit(table)
    with pytest.raises(ConfigError, match="no interactions"):
        ledrec.EASE().fit(np.zeros((3, 4)))
    with pytest.raises(ConfigError, match="negative, NaN"):
        ledrec.Popularity().fit(np.array([[1.0, np.nan]]))


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "5"])
def test_recommend_refuses_a_k_that_is_not_a_positive_int(fitted, k):
    """k=0 returned [] and k=-1 every item."""
    with pytest.raises(ConfigError, match="k must be an int >= 1"):
        fitted.recommend_ids(["1", "2"], k=k)
    with pytest.raises(ConfigError, match="k must be an int >= 1"):
        fitted.recommend(np.zeros((1, fitted.n_items)), k=k)


def test_a_string_history_is_refused_not_read_as_characters(fitted):
    """`recommend_ids("50")` took the string as the history ['5', '0']."""
    with pytest.raises(ledrec.InputError, match=r"for one item, \['50'\]"):
        fitted.recommend_ids("50", k=3)
    with pytest.raises(ledrec.InputError, match="allowed must be a list"):
        fitted.recommend_ids(["50"], k=3, allowed="12")
    assert [i for i, _ in fitted.recommend_ids(["50"], k=3)] == [i for i, _ in fitted.recommend_ids([50], k=3)]


def test_a_saved_model_serves_and_exports_and_other_folders_say_what_they_are(fitted, tmp_path, capsys):
    """A `model.save()` folder given to `ledrec export` / `serve` said "not a serving export (kind
    serving-model)", which read as if it were one, and named no fix."""
    saved = tmp_path / "saved"
    fitted.save(saved)
    assert main(["serve", str(saved), "--check"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["ok"] and check["items"] == fitted.n_items
    assert main(["export", str(saved)]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(saved / "serving")
    assert main(["serve", str(saved), "--check"]) == 0  # now the export inside it
    assert json.loads(capsys.readouterr().out)["source"] == "export"
    anonymous = ledrec.EASE(lam=10.0).fit(fitted.score(np.eye(fitted.n_items, dtype=np.float32)) > 0)
    bare = tmp_path / "bare"
    anonymous.save(bare)
    ledrec.Interactions.from_events(["u"], ["i"]).save(tmp_path / "events")
    for folder, says in [
        (bare, "'ease' model cannot be served"),
        (tmp_path / "events", "artifact of kind 'interactions'"),
        (tmp_path, "not a folder ledrec wrote"),
    ]:
        assert main(["serve", str(folder), "--check"]) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert main(["serve", str(tmp_path), "--check"]) == 2
    err = capsys.readouterr().err
    assert "a serving export (ledrec export RUN_DIR)" in err and "a saved model (model.save(DIR) in Python)" in err


def test_a_closed_stdout_ends_a_command_quietly(tmp_path):
    """`ledrec pipeline status ROOT | head -1`: a BrokenPipeError traceback."""
    from ledrec.export import publish
    from ledrec.export.mips import from_model

    rng = np.random.default_rng(0)
    model = ledrec.SVD(dim=4).fit(rng.random((50, 30)) < 0.2)
    folder = publish.register(tmp_path / "root", "fr")
    from_model(model, np.arange(30).astype(str)).save(tmp_path / "staged")
    version = publish.new_version_name("x" * 12)
    publish.add_version(folder, tmp_path / "staged", version)
    publish.switch(folder, version, {"decision": "published"})
    for argv in (["pipeline", "status", str(tmp_path / "root")], ["info", "--data", DATA]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledrec.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        proc.stdout.close()  # the reader is gone before the command writes its result
        err = proc.stderr.read()
        assert proc.wait(60) == 141 and err == "", (argv, err)


def test_a_data_scientists_frames_in_and_out():
    """from_events takes a DataFrame (its columns found by name, or named) and a rating threshold; a model
    answers many users at once as a table of user, rank, item, score."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "userId": [f"u{u}" for u in range(60) for _ in range(8)],
            "movieId": [(u % 6) * 10 + int(rng.integers(10)) for u in range(60) for _ in range(8)],
            "stars": rng.integers(1, 6, 480).astype(float),
        }
    )
    data = ledrec.Interactions.from_events(frame, columns={"rating": "stars"}, min_rating=4)
    assert len(data) == int((frame.stars >= 4).sum()) and data.n_users == 60
    assert set(data.items.ids.astype(int)) <= set(frame.movieId)
    with pytest.raises(ledrec.DataError, match="column 'nope'"):
        ledrec.Interactions.from_events(frame, columns={"user": "nope"})
    with pytest.raises(ledrec.DataError, match="no rating"):
        ledrec.Interactions.from_events(frame[["userId", "movieId"]], min_rating=4)
    model = ledrec.LED(dim=8).fit(data)
    table = model.recommend_frame(frame.head(24), k=5)  # the first 3 users' histories, all their events
    assert table.column_names == ["user", "rank", "item", "score"] and table.num_rows == 15
    rows = table.to_pandas()
    first = rows[rows.user == "u0"]
    seen = frame[frame.userId == "u0"].movieId.astype(str).tolist()
    assert first["rank"].tolist() == [1, 2, 3, 4, 5]
    expected = list(zip(first.item, first.score, strict=True))
    assert [(i, pytest.approx(s)) for i, s in model.recommend_ids(seen, k=5)] == expected
    titles = pd.DataFrame({"movieId": list(range(60)), "title": [f"Film {m}" for m in range(60)]})
    shown = model.recommend_frame(frame.head(24), k=5, items=ledrec.ItemTable.from_frame(titles)).to_pandas()
    assert shown.columns.tolist()[:4] == ["user", "rank", "item", "score"] and "title" in shown.columns
    assert (shown.title == "Film " + shown.item).all() and len(shown) == 15


def test_the_time_protocol_and_the_pipeline_take_a_rating_threshold(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 3000
    events = {
        "user": rng.integers(0, 150, n).astype(str),
        "item": rng.integers(0, 60, n).astype(str),
        "rating": rng.integers(1, 6, n).astype(float),
        "timestamp": 1_700_000_000 + np.sort(rng.integers(0, 20 * 86_400, n)),
    }
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(events), tmp_path / "events.parquet")
    argv = ["prepare", "--data", str(tmp_path / "events.parquet"), "--protocol", "time", "--test-days", "2"]
    assert main([*argv, "--out", str(tmp_path / "all")]) == 0
    assert main([*argv, "--min-rating", "4", "--out", str(tmp_path / "liked")]) == 0
    capsys.readouterr()
    from ledrec.data.splits import PreparedData

    everything, liked = PreparedData.load(tmp_path / "all"), PreparedData.load(tmp_path / "liked")
    assert liked.fit_all.nnz < everything.fit_all.nnz
    from ledrec.pipeline import config as pipeline_config

    config = pipeline_config.load(None, {"events": "e", "out": "o", "min_rating": 4.0})
    assert config.min_rating == 4.0
