"""The spectral start of LED: the ideal low-pass filter of the degree-normalised user-item graph, in LED's form.

GF-CF (Shen et al., CIKM 2021) scores a history r with r · D_I^{-1/2} V_k V_kᵀ D_I^{1/2} among its terms,
V_k the top-k right singular vectors of R̃ = D_U^{-1/2} R D_I^{-1/2}. That term *is* an encoder-decoder with
no per-user parameter, one inner product per item:

    encoder table  E = D_I^{-β} V_k      (I, k)   user vector u = 1/T · Σ_t E[i_t]
    decoder table  V = D_I^{+β} V_k      (I, k)   score s(u, i) = ⟨u, V[i]⟩

(the 1/T of the mean changes no user's ranking when the bias is zero). GF-CF's β is 1/2; issue 19's
measurements (docs/led.md) chose β on validation. A smooth filter weighs component j by
w_j = 1 / (1 + (σ_c/σ_j)^p) instead of 1 (E = D_I^{-β} V_k diag(w)): on dense ML-1M it raised validation
NDCG@20 from .2655 to .2714; on sparse Gowalla the ideal filter with more components was best. With a
tied table there is one set of vectors for both sides, so β = 0: V_k itself. It is a closed form — one
randomized SVD, seconds — and LED's fine-tuning may start from it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from ledrec.errors import ConfigError


def normalized_adjacency(X: sp.spmatrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """R̃ = D_U^{-1/2} R D_I^{-1/2} of the binarised ``X`` (float32), and the item degrees (I,)."""
    R = sp.csr_matrix(X, dtype=np.float32, copy=True)
    R.data[:] = 1.0
    user_degree = np.asarray(R.sum(axis=1)).ravel()
    item_degree = np.asarray(R.sum(axis=0)).ravel()
    d_user = np.where(user_degree > 0, user_degree, np.inf) ** -0.5  # (U,), 0 for users without events
    d_item = np.where(item_degree > 0, item_degree, np.inf) ** -0.5  # (I,)
    return sp.csr_matrix(sp.diags(d_user) @ R @ sp.diags(d_item), dtype=np.float32), item_degree


def filter_weights(singular: np.ndarray, order: float, cutoff: float) -> np.ndarray:
    """w_j of each kept component: 1 for the ideal filter (``order`` 0), else the Butterworth-like
    1 / (1 + (σ_c / σ_j)^order), half at the component ``cutoff`` · k (σ_c its singular value)."""
    if order == 0:
        return np.ones_like(singular)
    pivot = singular[max(round(cutoff * len(singular)) - 1, 0)]
    return 1.0 / (1.0 + (pivot / np.maximum(singular, 1e-30)) ** order)


def spectral_tables(
    X: sp.spmatrix,
    dim: int,
    exponent: float = 0.5,
    order: float = 0.0,
    cutoff: float = 0.5,
    n_iter: int = 4,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(encoder table (I, dim), decoder table (I, dim), singular values (dim,)) of the low-pass filter of
    ``X`` (users × items) with degree exponent ``exponent`` (β above), ideal (``order`` 0) or smooth
    (:func:`filter_weights`, applied on the encoder's side). Items without an event have zero rows."""
    n = min(X.shape)
    if not 1 <= dim < n:
        raise ConfigError(f"dim must be in [1, {n - 1}] for a {X.shape} matrix, got {dim}")
    normalized, item_degree = normalized_adjacency(X)
    _, singular, vt = randomized_svd(normalized, dim, n_iter=n_iter, random_state=random_state)
    basis = vt.T.astype(np.float32)  # (I, dim)
    seen = item_degree > 0
    degree = np.where(seen, item_degree, 1.0).astype(np.float32)
    weights = filter_weights(singular, order, cutoff).astype(np.float32)  # (dim,)
    encoder = np.where(seen, degree**-exponent, 0.0)[:, None] * basis * weights  # (I, dim)
    decoder = np.where(seen, degree**exponent, 0.0)[:, None] * basis  # (I, dim)
    return encoder.astype(np.float32), decoder.astype(np.float32), singular.astype(np.float32)
