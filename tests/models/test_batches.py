import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ledrec.models.batches import decoder_loss, sample_negatives
from ledrec.models.losses import bpr_loss, mult_css_loss


def test_sample_negatives_draws_half_from_the_pool_rows():
    pool = sp.csr_matrix(np.array([[0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32))
    rng = np.random.default_rng(0)
    s = sample_negatives(pool, 6, 2, 10, rng)
    assert s.shape == (2, 10)
    assert set(s[0, :5]) <= {2, 3}  # the first half of row 0 from its pool
    assert s.min() >= 0 and s.max() < 6
    uniform = sample_negatives(None, 6, 2, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(uniform, np.random.default_rng(0).integers(0, 6, (2, 10)))  # unchanged stream
    np.testing.assert_array_equal(s[1], uniform[1])  # rows without a pool stay uniform


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(("loss", "reference"), [("mult-css", "css"), ("bpr", "bpr")])
def test_batch_shared_negatives_score_one_draw_for_every_user(sparse, loss, reference):
    """share='batch': every user is scored against the same N sampled items — the same loss as picking those
    columns out of the full (B, I) score matrix, and the same gradients whichever lookup computes them."""
    gen = torch.Generator().manual_seed(0)
    n_items, dim = 50, 4
    vectors = torch.randn(n_items, dim, generator=gen, requires_grad=True)
    bias = torch.randn(n_items, 1, generator=gen, requires_grad=True)
    query = torch.randn(3, dim, generator=gen)
    targets = sp.csr_matrix(np.array([[1, 0, 1] + [0] * 47, [0] * 49 + [1], [0, 1] + [0] * 48], dtype=np.float32))
    got = decoder_loss(
        loss, query, vectors, bias, targets, negatives=7, rng=np.random.default_rng(3), sparse=sparse, share="batch"
    )
    sampled = torch.from_numpy(np.random.default_rng(3).integers(0, n_items, 7))  # the draw the call made
    logits = query @ vectors.T + bias[:, 0]  # (B, I)
    coo = targets.tocoo()
    rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    neg = logits[:, sampled]  # (B, N): the same columns for every row
    if reference == "css":
        want = mult_css_loss(logits[rows, cols], rows, neg, n_items)
    else:
        want = bpr_loss(logits[rows, cols], rows, neg)
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-5)
    (g_got,) = torch.autograd.grad(got, vectors)
    (g_want,) = torch.autograd.grad(want, vectors)
    np.testing.assert_allclose(g_got.to_dense().numpy(), g_want.numpy(), rtol=1e-4, atol=1e-6)


def test_batch_shared_negatives_refuse_a_per_user_pool():
    pool = sp.csr_matrix(np.ones((1, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="share='user'"):
        decoder_loss(
            "bpr", torch.zeros(1, 2), torch.zeros(5, 2), torch.zeros(5, 1), pool,
            negatives=2, rng=np.random.default_rng(0), negative_pool=pool, share="batch",
        )  # fmt: skip


def test_popularity_sampled_css_is_importance_weighted_to_the_exact_partition_function():
    """Negatives drawn ∝ q: weighing each by 1/q recovers Σ_i exp(s_i); without the weights the skewed draw
    would overestimate Z (the favoured items have the highest scores here)."""
    from ledrec.models.batches import draw_items

    n_items = 200
    scores = torch.linspace(-2.0, 3.0, n_items)  # item i's score, the same for the one user
    q = np.exp(np.linspace(-2.0, 3.0, n_items)) ** 0.8
    q /= q.sum()
    drawn = draw_items(n_items, 200_000, np.random.default_rng(0), q)
    assert np.bincount(drawn, minlength=n_items)[-1] > np.bincount(drawn, minlength=n_items)[0] * 20
    pos, rows = scores[[5]], torch.tensor([0])
    neg = scores[torch.from_numpy(drawn)][None]  # (1, N)
    weighted = mult_css_loss(pos, rows, neg, n_items, torch.from_numpy(np.log(q[drawn])).float())
    exact = -(pos - torch.logaddexp(pos, torch.logsumexp(scores, 0)))
    assert float(weighted) == pytest.approx(float(exact), rel=2e-3)
    assert float(mult_css_loss(pos, rows, neg, n_items)) > float(exact) + 0.5  # uncorrected: far off
