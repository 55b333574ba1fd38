"""`ledrec bench table3` end to end on a tiny world (a smoke test with real checks on the output)."""

from __future__ import annotations

import json

from ledrec.cli import main


def test_table3_smoke(tmp_path, capsys):
    out = tmp_path / "t3"
    args = ["bench", "table3", "--out", str(out), "--quiet", "--epochs", "1", "--dim", "8", "--negatives", "10"]
    args += ["--n-users", "1500", "--n-items", "700", "--n-merchants", "6", "--n-categories", "6"]
    args += ["--categories-per-merchant", "2", "--days", "16"]
    assert main(args) == 0
    rows = json.loads((out / "table3.json").read_text())["rows"]
    assert len(rows) == 11
    for r in rows:
        assert 0 <= r["recall@20"] <= r["recall@50"] <= 1
        assert 0 <= r["click_rank"] <= 1
    assert "click-rank" in capsys.readouterr().out
