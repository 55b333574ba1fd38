"""Shared fixtures. Real-data tests read ../shared/data and are skipped (not failed) when it is absent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from packaging.utils import canonicalize_name

from ledrec.cli import main
from ledrec.data.splits import EvalSet

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_report_header(config: pytest.Config) -> str:
    selected = config.getoption("markexpr")
    if selected:
        return f"tests selected by -m {selected!r}: 'bash scripts/test.sh' runs the whole suite, as CI does"
    return "the whole suite (slow tests included)"


FRONTS = ("python", "native")


def need_front(front: str) -> str:
    """``front``, or a skip saying why the native front is not built here."""
    from ledrec.serve import native

    if front == "native" and not native.available():
        pytest.skip(native.WHY_NOT)
    return front


@pytest.fixture(params=FRONTS)
def front(request: pytest.FixtureRequest) -> str:
    """Each front of ``ledrec serve`` in turn: every promise of the service is tested on both."""
    return need_front(request.param)


def shared_dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data {path} not present")
    return path


def source_checksums(folder: Path) -> dict[str, str]:
    """``file -> sha256`` from the table in a dataset's SOURCE.md."""
    table = {}
    for line in (folder / "SOURCE.md").read_text().splitlines():
        m = re.match(r"\|\s*([\w.]+)(?: \(rebuilt\))?\s*\|.*\|\s*([0-9a-f]{64})\s*\|", line)
        if m:
            table[m.group(1)] = m.group(2)
    return table


def parse_lock(path: Path) -> dict[str, tuple[str, frozenset[str], frozenset[str]]]:
    """name → (version, hashes, what it is there for) of a pip-compile file."""
    out = {}
    for block in re.split(r"\n(?=\S)", path.read_text()):
        m = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if not m:
            continue
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
        via = re.findall(r"#[ \t]+(?:via[ \t]+)?(\S.*)$", block, re.M)
        out[canonicalize_name(m.group(1))] = (m.group(2), hashes, frozenset(v.strip() for v in via if v != "via"))
    return out


def random_binary(n_users: int, n_items: int, density: float, seed: int = 0) -> sp.csr_matrix:
    """A random 0/1 float32 CSR matrix in which every user has at least one item."""
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    return sp.csr_matrix(dense.astype(np.float32))


def planted_clusters(
    n_users: int = 600, n_items: int = 120, n_clusters: int = 6, items_per_user: int = 12, seed: int = 0
) -> sp.csr_matrix:
    """Users who only interact with the items of their own cluster: an easy, known-answer dataset."""
    rng = np.random.default_rng(seed)
    size = n_items // n_clusters
    rows, cols = [], []
    for u in range(n_users):
        c = u % n_clusters
        chosen = rng.choice(size, items_per_user, replace=False) + c * size
        rows += [u] * items_per_user
        cols += chosen.tolist()
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))


def planted_task():
    """600 training users in 6 planted clusters; 60 held-out users with 9 input and 3 target items each."""
    train = planted_clusters(n_users=600, n_items=120, n_clusters=6, items_per_user=12, seed=0)
    held = planted_clusters(n_users=60, n_items=120, n_clusters=6, items_per_user=12, seed=1).tolil()
    inp, tgt = held.copy(), held.copy()
    for u in range(60):
        items = held.rows[u]
        for i in items[9:]:
            inp[u, i] = 0
        for i in items[:9]:
            tgt[u, i] = 0
    return train, EvalSet(inp.tocsr(), tgt.tocsr(), np.arange(60))


def ledrec(capsys, *argv: str) -> dict:
    """Run one ``ledrec`` command in this process; its stdout, parsed (the result is JSON)."""
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)
