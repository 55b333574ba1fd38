"""LED on ALS's weighted square loss (``ledrec.models.led_wls``): each step is the exact least-squares solution
(checked against a dense solve), every sweep lowers the loss, and the model serves by one inner product."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ledrec.errors import ConfigError
from ledrec.evaluate.ranking import evaluate
from ledrec.models.led import LED
from ledrec.models.led_wls import WeightedLeastSquares, fit_tables
from tests.conftest import planted_task

ALPHA, LAM, GAMMA = 4.0, 0.5, 0.5


def _small(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sp.random(9, 7, density=0.35, random_state=rng, format="lil", dtype=np.float32)
    X[8] = 0  # a user without events: weight 0, no row of the loss
    X = X.tocsr()
    X.data[:] = 1.0
    X.eliminate_zeros()
    return X


def _item_l2(X: np.ndarray, eta: float) -> np.ndarray:
    counts = X.sum(0) + 1.0
    return LAM * (counts / counts.mean()) ** eta  # (I,) λ_i


def _dense_loss(X: np.ndarray, E: np.ndarray, V: np.ndarray, eta: float) -> float:
    """The loss written out over every (user, item) pair, without the constant."""
    T = X.sum(1)
    w = np.where(T > 0, np.maximum(T, 1) ** -GAMMA, 0.0)
    S = (w[:, None] * X @ E) @ V.T  # (U, I)
    C = 1.0 + ALPHA * X
    full = (C * (X - S) ** 2).sum() - C[X > 0].sum()  # the constant Σ_events (1 + α) dropped
    return float(full + (_item_l2(X, eta)[:, None] * (E**2 + V**2)).sum())


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_the_loss_is_the_weighted_square_loss_over_all_pairs(eta):
    X = _small()
    rng = np.random.default_rng(1)
    E, V = rng.normal(size=(7, 3)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)
    problem = WeightedLeastSquares(X, ALPHA, LAM, GAMMA, frequency_exponent=eta)
    assert problem.loss(torch.from_numpy(E), torch.from_numpy(V)) == pytest.approx(
        _dense_loss(X.toarray(), E, V, eta), rel=1e-4
    )


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_each_step_is_the_exact_least_squares_solution(eta):
    X = _small()
    Xd = X.toarray().astype(np.float64)
    rng = np.random.default_rng(2)
    d = 3
    V = rng.normal(size=(7, d))
    problem = WeightedLeastSquares(X, ALPHA, LAM, GAMMA, frequency_exponent=eta)
    lam = _item_l2(Xd, eta)  # (I,)
    # encoder step: the loss is quadratic in vec(E); its minimiser from the dense normal equations
    T = Xd.sum(1)
    w = np.where(T > 0, np.maximum(T, 1) ** -GAMMA, 0.0)
    A = w[:, None] * Xd  # (U, I): u = A E
    C = 1.0 + ALPHA * Xd
    H = np.zeros((7 * d, 7 * d))
    b = np.zeros(7 * d)
    for u in range(Xd.shape[0]):
        M = (V.T * C[u]) @ V  # Σ_i c_ui v_i v_iᵀ (d, d)
        H += np.kron(np.outer(A[u], A[u]), M)
        b += np.kron(A[u], (V.T * C[u]) @ Xd[u])
    H += np.diag(np.repeat(lam, d))  # vec(E) is row-major: item i's d entries share λ_i
    expected_E = np.linalg.solve(H, b).reshape(7, d)
    E, residual = problem.encoder_step(torch.zeros(7, d), torch.from_numpy(V.astype(np.float32)), iters=60)
    assert residual < 1e-4
    np.testing.assert_allclose(E.numpy(), expected_E, rtol=1e-3, atol=1e-4)
    # decoder step: ALS's item step, one d × d solve per item
    U = A @ expected_E
    expected_V = np.stack(
        [np.linalg.solve((U.T * C[:, i]) @ U + lam[i] * np.eye(d), (U.T * C[:, i]) @ Xd[:, i]) for i in range(7)]
    )
    V_step, residual = problem.decoder_step(torch.zeros(7, d), torch.from_numpy(U.astype(np.float32)), iters=60)
    assert residual < 1e-4
    np.testing.assert_allclose(V_step.numpy(), expected_V, rtol=1e-3, atol=1e-4)


def test_every_sweep_lowers_the_loss():
    train, _ = planted_task()
    problem = WeightedLeastSquares(train, ALPHA, LAM, GAMMA, frequency_exponent=1.0)
    losses = []
    for sweeps in range(1, 5):
        E, V, history = fit_tables(
            train, 8, confidence=ALPHA, regularization=LAM, frequency_exponent=1.0, reduce_power=GAMMA, sweeps=sweeps
        )
        assert len(history) == sweeps
        losses.append(problem.loss(torch.from_numpy(E), torch.from_numpy(V)))
    assert all(later < earlier for earlier, later in itertools.pairwise(losses)), losses


def test_led_wls_learns_planted_clusters_and_serves_by_one_inner_product(tmp_path):
    from ledrec.export.mips import ServingModel, from_model

    train, held = planted_task()
    model = LED(loss="wls", dim=16, epochs=6).fit(train, validation=held)
    assert model.variant_ == "wls" and model.params_["reduce"] == "sqrt" and model.reduce is None  # the preset's 1/√T
    assert model.encoder_vectors_ is not model.item_vectors_  # two tables
    assert not model.selects_on_validation(train.shape[1])  # a fixed number of sweeps
    assert evaluate(model.score, held, ks=(10,))["recall@10"] > 0.8  # random: ~0.08
    serving = from_model(model, np.array([f"i{i}" for i in range(train.shape[1])]))
    history = held.input[0].indices
    np.testing.assert_allclose(
        serving.scores(serving.user_vector(history)), model.score(held.input[:1])[0], rtol=1e-4, atol=1e-4
    )
    serving.save(tmp_path / "export")
    assert ServingModel.load(tmp_path / "export").reduce == "sqrt"
    model.save(tmp_path / "model")
    np.testing.assert_array_equal(LED.load(tmp_path / "model").score(held.input[:3]), model.score(held.input[:3]))
    again = LED(loss="wls", dim=16, epochs=6).fit(train)
    np.testing.assert_array_equal(again.item_vectors_, model.item_vectors_)  # seeded: the same tables


@pytest.mark.parametrize("params", [{"tuning": "project"}, {"encoder": "tied"}])
def test_wls_needs_two_trained_tables(params):
    train, _ = planted_task()
    with pytest.raises(ConfigError, match="wls"):
        LED(loss="wls", dim=8, epochs=1, **params).fit(train)


def test_a_rank_the_matrix_does_not_have_is_refused_and_an_empty_item_stays_null():
    X = _small()
    with pytest.raises(ConfigError, match="dim must be"):
        fit_tables(X, 7, sweeps=1)
    X = sp.hstack([X, sp.csr_matrix((9, 1), dtype=np.float32)]).tocsr()  # item 7: no event
    E, V, _ = fit_tables(X, 3, sweeps=2)
    assert np.isfinite(E).all() and np.isfinite(V).all()
    assert not E[7].any() and not V[7].any()


def test_a_solved_model_reports_no_gradient_step():
    train, _ = planted_task()
    model = LED(loss="wls", dim=8, epochs=1).fit(train)
    assert not getattr(model, "sparse_gradients_", False) and model.history_ == [] and model.best_epoch_ == 1
