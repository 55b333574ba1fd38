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


def test_banner_click_rank_on_hand_made_banners():
    import numpy as np
    import pytest
    import scipy.sparse as sp

    from ledrec.bench.table3 import banner_click_rank
    from ledrec.simulate.world import BannerSet

    class Fixed:  # scores item i as i for an empty history, -i otherwise
        def score(self, X):
            sign = np.where(np.diff(X.indptr) > 0, -1.0, 1.0)
            return sign[:, None] * np.arange(6, dtype=float)[None, :]

    banners = BannerSet(
        rows=np.array([0, 1, 0]),
        items=np.array([[5, 1, 2, -1], [5, 1, 2, -1], [0, 4, -1, -1]]),
        clicked=np.array([[True, False, False, False], [True, False, False, False], [False, True, False, False]]),
    )
    inputs = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=np.float32))
    # banner 0: clicked 5 ranked first of 3 → 0; banner 1 (scores reversed): last → 1; banner 2: 4 over 0 → 0
    assert banner_click_rank(Fixed(), inputs, banners) == pytest.approx(1 / 3)
    assert banner_click_rank(Fixed(), inputs, banners, batch=1) == pytest.approx(1 / 3)  # batching is invisible
