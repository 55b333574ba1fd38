"""Item-item co-occurrence counts within user timelines (seed paper §4.1, Algorithm 1, step 1).

``C[i, j]`` is the number of timelines in which items ``i`` and ``j`` (i ≠ j) both occur — each timeline
counts a pair once, however often the items repeat. With a ``window`` W, a pair counts only when the two
items occur within W positions of each other in the time-ordered timeline (so that long timelines do not
make the pair count explode: a timeline of T items gives at most ~2·W·T pairs instead of T²).

Memory is bounded by the non-zeros of C: users are processed in chunks and each chunk's counts are added
to the running sparse total; no users × items dense matrix, no list of all pairs of all users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from ledrec.errors import ConfigError

DEFAULT_CHUNK_PAIRS = 20_000_000  # pairs per chunk; ~0.5 GB of int32/int64 temporaries


def cooccurrence(X: sp.csr_matrix, chunk_pairs: int = DEFAULT_CHUNK_PAIRS, progress: bool = False) -> sp.csr_matrix:
    """All-pairs co-occurrence of a binary user × item matrix: C = XᵀX with a zero diagonal (float32).

    Chunks of users are sized so that each chunk's Σ_u T_u² stays near ``chunk_pairs``.
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    X.data[:] = 1.0  # distinct items per timeline
    n_items = X.shape[1]
    lengths = np.diff(X.indptr).astype(np.int64)
    total = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    for lo, hi in tqdm(_chunks(lengths**2, chunk_pairs), desc="co-occurrence", disable=not progress):
        part = X[lo:hi]
        total = total + (part.T @ part).tocsr()
    total.setdiag(0.0)
    total.eliminate_zeros()
    return total


def windowed_cooccurrence(
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    window: int,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
    progress: bool = False,
) -> sp.csr_matrix:
    """Co-occurrence of items within ``window`` positions in time-ordered timelines.

    ``users``/``items`` are the events sorted by user, then by time. A pair
    (i, j) counts once per timeline if it occurs within the window anywhere in it; i = j never counts.
    """
    if window < 1:
        raise ConfigError("window must be >= 1")
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if len(users) and np.any(np.diff(users) < 0):
        raise ValueError("events must be sorted by user (then time)")
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.array([], np.int64)
    bounds = np.r_[starts, len(users)]
    lengths = np.diff(bounds)
    total = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    for lo, hi in tqdm(_chunks(lengths * window, chunk_pairs), desc="co-occurrence", disable=not progress):
        u, it = users[bounds[lo] : bounds[hi]], items[bounds[lo] : bounds[hi]]
        owners, rows, cols = [], [], []
        for offset in range(1, min(window, len(u) - 1) + 1):
            same = u[offset:] == u[:-offset]  # position t and t + offset are in one timeline
            left, right, owner = it[:-offset][same], it[offset:][same], u[offset:][same]
            keep = left != right
            left, right, owner = left[keep], right[keep], owner[keep]
            owners += [owner, owner]  # both directions: C is symmetric
            rows += [left, right]
            cols += [right, left]
        if rows:
            total = total + _distinct_pair_counts(
                np.concatenate(owners), np.concatenate(rows), np.concatenate(cols), n_items
            )
    total.eliminate_zeros()
    return total


def _distinct_pair_counts(owner: np.ndarray, rows: np.ndarray, cols: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Count each (row, col) pair once per owner (timeline), then sum over owners."""
    key = rows * n_items + cols  # int64: fine up to ~3e9 items
    order = np.lexsort((owner, key))
    key, owner = key[order], owner[order]
    first = np.r_[True, (key[1:] != key[:-1]) | (owner[1:] != owner[:-1])]  # distinct (pair, timeline)
    pair, counts = np.unique(key[first], return_counts=True)
    r, c = np.divmod(pair, n_items)
    return sp.csr_matrix((counts.astype(np.float32), (r, c)), shape=(n_items, n_items), dtype=np.float32)


def _chunks(cost: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive [lo, hi) ranges whose summed cost stays near ``budget`` (at least one row each)."""
    out: list[tuple[int, int]] = []
    lo, acc = 0, 0
    for i, c in enumerate(cost.tolist()):
        if acc and acc + c > budget:
            out.append((lo, i))
            lo, acc = i, 0
        acc += c
    if lo < len(cost):
        out.append((lo, len(cost)))
    return out
