"""The command line: --help everywhere, the run contract, and clear errors."""

from __future__ import annotations

import json

import pytest

from ledrec.cli import build_parser, main


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize(
    "command", [None, *subcommands(), *(f"bench {b}" for b in ("figure2", "table2", "ann", "serve"))]
)
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"] if command is None else [*command.split(), "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_run_contract_on_synthetic(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code = main(
        [
            "run",
            "--data",
            "synthetic:n_users=400,n_items=200,n_topics=5",
            "--protocol",
            "strong",
            "--model",
            "ease",
            "--lam",
            "10,100",
            "--quiet",
            "--json",
            str(out_json),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out_json.read_text())
    assert printed == written
    assert {"dataset", "protocol", "model", "params", "metrics", "timings"} <= set(printed)
    assert printed["protocol"] == "strong" and printed["model"] == "ease"
    assert printed["params"]["lam"] in (10.0, 100.0)
    assert {"recall@20", "recall@50", "ndcg@20", "ndcg@50", "ndcg@100"} <= set(printed["metrics"])
    assert {"fit_s", "eval_s"} <= set(printed["timings"])
    assert len(printed["selection"]["candidates"]) == 2
    assert (tmp_path / "run" / "model" / "manifest.json").is_file()
    assert (tmp_path / "run" / "items" / "item_ids.npy").is_file()


def test_prepare_then_run(tmp_path, capsys):
    prep = tmp_path / "prep"
    assert (
        main(
            [
                "prepare",
                "--data",
                "synthetic:n_users=300,n_items=150,n_topics=5",
                "--protocol",
                "strong",
                "--out",
                str(prep),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["run", "--data", str(prep), "--protocol", "strong", "--model", "pop", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "pop"
    assert main(["run", "--data", str(prep), "--protocol", "bars", "--model", "pop", "--quiet"]) == 2
    assert "prepared with protocol 'strong'" in capsys.readouterr().err


def test_generate_and_info(tmp_path, capsys):
    path = tmp_path / "ev.parquet"
    assert main(["generate", "--out", str(path), "--n-users", "100", "--n-items", "80", "--n-topics", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["users"] == 100
    assert main(["info", "--data", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "events" and set(info["parts"]["all"]["feedback"]) == {"view", "click", "sale"}


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["run", "--data", str(tmp_path / "nope"), "--protocol", "strong", "--model", "pop"]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["run", "--data", "synthetic", "--protocol", "strong", "--model", "ease", "--lam", "abc"])


def test_bench_ann_on_a_run_directory(tmp_path, capsys):
    """--run takes the queries from --data's test users (the path of Table 4's real-model rows)."""
    data = "synthetic:n_users=300,n_items=150,n_topics=4"
    run = ["run", "--data", data, "--protocol", "strong", "--model", "led", "--dim", "8", "--epochs", "1"]
    assert main([*run, "--quiet", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    bench = ["bench", "ann", "--run", str(tmp_path / "run"), "--data", data, "--protocol", "strong"]
    bench += ["--libraries", "hnswlib", "--forms", "nn", "--ef", "50", "--queries", "20", "--out", str(tmp_path / "a")]
    assert main(bench) == 0
    assert "| hnswlib | nn | 50 |" in capsys.readouterr().out
