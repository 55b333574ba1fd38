"""The spectral start: GF-CF's ideal low-pass filter in LED's encoder-decoder form, against a dense oracle."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ledrec.evaluate.ranking import evaluate
from ledrec.export.mips import from_model
from ledrec.models.led import LED
from ledrec.pretrain.spectral import filter_weights, spectral_tables
from tests.conftest import planted_task


def dense_filter(X: sp.csr_matrix, k: int, beta: float) -> np.ndarray:
    """r ↦ r · D^-β V_k V_kᵀ D^β as an (I, I) matrix, V_k from numpy's exact SVD of D_U^-½ R D_I^-½."""
    R = (X.toarray() > 0).astype(np.float64)
    du, di = R.sum(1), R.sum(0)
    _, _, vt = np.linalg.svd(R / np.sqrt(du)[:, None] / np.sqrt(di)[None, :])
    V = vt[:k].T
    return (di[:, None] ** -beta * V) @ (di[:, None] ** beta * V).T


def test_the_tables_are_gfcf_ideal_low_pass_filter():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((60, 25)) < 0.3).astype(np.float32))
    X = sp.csr_matrix(X + sp.eye(60, 25, dtype=np.float32))  # every item seen
    for beta in (0.5, 0.25):
        encoder, decoder, singular = spectral_tables(X, 6, exponent=beta, n_iter=30)
        np.testing.assert_allclose(encoder @ decoder.T, dense_filter(X, 6, beta), atol=1e-4)
        assert np.all(np.diff(singular) <= 1e-6) and singular[0] == pytest.approx(1.0, abs=1e-4)  # R̃'s top is 1


def test_unseen_items_get_zero_rows_and_dim_is_checked():
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0]], np.float32))
    encoder, decoder, _ = spectral_tables(X, 1)
    assert not encoder[2].any() and not decoder[2].any()
    with pytest.raises(Exception, match="dim must be in"):
        spectral_tables(X, 3)


def test_filter_weights():
    singular = np.array([4.0, 3.0, 2.0, 1.0])
    np.testing.assert_array_equal(filter_weights(singular, 0.0, 0.5), np.ones(4))  # ideal
    w = filter_weights(singular, 4.0, 0.5)  # half at component 2 of 4
    assert (
        w[1] == pytest.approx(0.5)
        and np.all(np.diff(w) < 0)
        and w[0] == pytest.approx(1 / (1 + 0.75**4))
        and w[3] < 0.02
    )


def test_led_by_default_is_the_closed_form_and_serves_it():
    """The bare LED: no epoch; its scores are the filter's up to a positive factor plus a small popularity
    term; the serving form (untied: the encoder's own table) gives the model's own scores."""
    train, held = planted_task()
    model = LED(dim=8, spectral_order=0.0).fit(train)
    assert model.variant_ == "spectral" and model.history_ == [] and model.best_epoch_ == 0
    p = model.params_
    assert p["encoder"] == "untied" and model.encoder_vectors_ is not model.item_vectors_
    encoder, decoder, _ = spectral_tables(train, 8, exponent=p["spectral_exponent"], n_iter=p["svd_iter"])
    H = held.input[:20]
    closed = np.asarray(H @ encoder) / np.maximum(np.diff(H.indptr), 1)[:, None] @ decoder.T
    scores = model.score(H) - model.item_bias_
    factor = float((scores * closed).sum() / (closed * closed).sum())  # least squares
    assert factor > 0
    np.testing.assert_allclose(scores, factor * closed, atol=1e-4 * np.abs(scores).max())
    assert np.abs(model.item_bias_).max() < 0.1 * np.abs(scores).max()  # the bias only breaks ties
    assert evaluate(model.score, held, ks=(10,))["recall@10"] > 0.8  # the planted clusters, with no training
    serving = from_model(model, np.array([f"i{i}" for i in range(train.shape[1])]))
    assert not serving.tied
    np.testing.assert_allclose(
        serving.scores(serving.user_vector(H[0].indices)), model.score(H[:1])[0], rtol=1e-4, atol=1e-4
    )
    # the cold start (empty history) ranks by popularity
    popularity = np.asarray(train.sum(axis=0)).ravel()
    assert np.argmax(serving.scores(serving.user_vector(np.array([], np.int64)))) == np.argmax(popularity)


def test_fine_tuning_starts_from_the_closed_form():
    train, held = planted_task()
    start = LED(dim=8, random_state=1).fit(train)
    tuned = LED(dim=8, epochs=2, patience=0, lr=1e-3, random_state=1).fit(train)
    assert tuned.effective("epochs", train.shape[1]) == 2 and tuned.variant_ == "full"
    assert tuned.params_["init"] == "spectral"  # given no init, fine-tuning starts from the closed form
    assert not np.allclose(tuned.item_vectors_, start.item_vectors_)
    assert evaluate(tuned.score, held, ks=(10,))["recall@10"] > 0.8
