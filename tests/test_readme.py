"""The README's Python quickstart runs as written (on a small generated event log)."""

from __future__ import annotations

import re
from pathlib import Path

from ledrec.data.synthetic import SyntheticConfig, generate, write_events

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_quickstart_runs_and_recommends_by_id(tmp_path, monkeypatch, capsys):
    section = README.read_text().split("## Python quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    config = SyntheticConfig(n_users=400, n_items=300, seed=3)
    write_events(generate(config), tmp_path / "events.parquet", config)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (Python quickstart)", "exec"), {})
    printed = capsys.readouterr().out
    pairs = re.findall(r"\('([^']+)', (-?[0-9.e+-]+)\)", printed)
    assert len(pairs) == 5 and not {"i1", "i2", "i3"} & {i for i, _ in pairs}
    scores = [float(s) for _, s in pairs]
    assert scores == sorted(scores, reverse=True)
