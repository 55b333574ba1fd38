"""Pointwise mutual information of item co-occurrences (seed paper §4.1 and §9.3; Levy & Goldberg 2014).

For co-occurrence counts C (symmetric, zero diagonal) with item totals c_i = Σ_j C_ij and T = Σ_ij C_ij:

    PMI(i, j) = log( C_ij · Σ_k c_k^α / (c_i · c_j^α) ) − log(shift)

The context distribution is smoothed with α = 0.75 (§9.3; Levy et al. 2015 "context distribution
smoothing"), which raises the PMI of rare contexts less. Only observed pairs (C_ij > 0) get a value, so the
matrix keeps C's sparsity; ``positive=True`` keeps max(PMI, 0) (shifted positive PMI, SPPMI, when shift > 1).

Note: criteo/deepr normalises the smoothed context distribution by Σ over *cells* C_ij^α rather than by
Σ over items c_k^α; that only shifts every PMI by a constant. We use the textbook form.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ledrec.errors import ConfigError


def pmi(C: sp.spmatrix, alpha: float = 0.75, shift: float = 1.0, positive: bool = True) -> sp.csr_matrix:
    """PMI of the observed pairs of a co-occurrence matrix (float32 CSR, same sparsity or sparser)."""
    if shift <= 0:
        raise ConfigError("shift must be > 0 (it is k in log(k); 1 means no shift)")
    C = sp.csr_matrix(C, dtype=np.float64)
    C.eliminate_zeros()
    if C.shape[0] != C.shape[1]:
        raise ValueError(f"co-occurrence must be square, got {C.shape}")
    if C.nnz == 0:  # no pair at all (a tiny catalogue): no PMI, and no log(0) warning on the way
        return sp.csr_matrix(C.shape, dtype=np.float32)
    totals = np.asarray(C.sum(axis=1)).ravel()  # c_i
    context = np.asarray(C.sum(axis=0)).ravel() ** alpha  # c_j^α
    norm = context.sum()  # Σ_k c_k^α
    rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    values = np.log(C.data) + np.log(norm) - np.log(totals[rows]) - np.log(context[C.indices]) - np.log(shift)
    out = sp.csr_matrix((values.astype(np.float32), C.indices.copy(), C.indptr.copy()), shape=C.shape)
    if positive:
        out.data = np.maximum(out.data, 0.0)
        out.eliminate_zeros()
    return out


def filter_items(C: sp.csr_matrix, min_count: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Drop the rows and columns of items whose total co-occurrence count is below ``min_count``
    (deepr uses 10); returns the filtered matrix (same shape) and the boolean mask of kept items."""
    totals = np.asarray(C.sum(axis=1)).ravel()
    keep = totals >= min_count
    d = sp.diags(keep.astype(np.float32))
    out = (d @ C @ d).tocsr()
    out.eliminate_zeros()
    return out, keep
