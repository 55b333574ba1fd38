"""Mult-VAE / Mult-DAE: the KL term and its schedule, the EmbeddingBag encoder against the dense one, CSS
converging to the full softmax, learning a planted structure, resuming."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ledrec.evaluate.ranking import evaluate
from ledrec.models.batches import bags, drop
from ledrec.models.losses import mult_css_loss, mult_loss
from ledrec.models.vae import MultDAE, MultVAE, MultVAENet, input_weights, kl_divergence, kl_weight
from tests.conftest import planted_task, random_binary


def test_kl_is_zero_at_the_prior_and_matches_torch_distributions():
    assert float(kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5))) == 0.0
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(1).mean()
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)
    # a unit shift of the mean in every one of 6 dimensions costs 6 · ½
    assert float(kl_divergence(torch.ones(1, 6), torch.zeros(1, 6))) == pytest.approx(3.0)


def test_kl_annealing_is_linear_then_capped():
    assert kl_weight(0, 1000, 0.2) == 0.0
    assert kl_weight(100, 1000, 0.2) == pytest.approx(0.1)
    assert kl_weight(200, 1000, 0.2) == pytest.approx(0.2)
    assert kl_weight(10_000, 1000, 0.2) == 0.2
    assert kl_weight(5, 0, 0.2) == 0.2  # no annealing: β = cap from the start


def test_vae_counts_its_steps_for_the_schedule():
    train, _ = planted_task()  # 600 users, batch 64 → 10 steps an epoch
    model = MultVAE(hidden=16, latent=4, epochs=3, batch_size=64, patience=0).fit(train)
    assert int(model.net_.steps) == 30


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_embedding_bag_encoder_equals_the_dense_one_hot_encoder(dropout):
    n_items, hidden = 30, 7
    torch.manual_seed(0)
    net = MultVAENet(n_items, hidden=hidden, latent=3)
    X = sp.csr_matrix(
        sp.diags([1.0, 1, 1, 1, 0]) @ random_binary(5, n_items, 0.3, seed=2), dtype=np.float32
    )  # 4: empty
    X.eliminate_zeros()
    kept = drop(X, dropout, np.random.default_rng(0)) if dropout else X
    # the reference: nn.Dropout(p)(normalize(x)) with the same mask, then a dense Linear layer
    dense = torch.from_numpy(X.toarray())
    dense = dense / dense.norm(dim=1, keepdim=True).clamp(min=1e-12)
    dense = dense * torch.from_numpy(kept.toarray()) / (1 - dropout)
    expected_h = torch.tanh(dense @ net.in_vectors + net.in_bias)
    expected_mu, _ = net.to_latent(expected_h).chunk(2, dim=1)
    weights = input_weights(kept, np.diff(X.indptr), dropout)
    mu, logvar = net.encode(*bags(kept), weights)
    torch.testing.assert_close(mu, expected_mu, rtol=1e-5, atol=1e-6)
    assert logvar.shape == mu.shape


def test_css_approaches_the_full_mult_loss_as_negatives_grow():
    gen = torch.Generator().manual_seed(0)
    n_items = 5000
    logits = torch.randn(8, n_items, generator=gen) * 2
    pos_rows = torch.arange(8).repeat_interleave(3)
    pos_items = torch.randint(0, n_items, (24,), generator=gen)
    exact = float(mult_loss(logits, pos_rows, pos_items))
    errors = []
    for n in (10, 100, 1000, 20_000):
        draws = []
        for _ in range(5):
            neg = torch.randint(0, n_items, (8, n), generator=gen)
            css = mult_css_loss(logits[pos_rows, pos_items], pos_rows, logits.gather(1, neg), n_items)
            draws.append(abs(float(css) - exact))
        errors.append(float(np.mean(draws)))
    assert errors == sorted(errors, reverse=True), errors
    assert errors[-1] / exact < 0.005


@pytest.mark.parametrize(
    "model_cls, params",
    [
        (MultVAE, {"loss": "mult", "anneal_steps": 100}),
        (MultVAE, {"loss": "mult-css", "negatives": 30}),
        (MultVAE, {"loss": "mult-css", "negatives": 40, "share_negatives": "batch"}),
        (MultDAE, {"loss": "mult"}),
        (MultDAE, {"loss": "mult", "l2": 1e-3}),
    ],
)
def test_learns_planted_clusters(model_cls, params):
    train, held = planted_task()
    model = model_cls(hidden=32, latent=8, epochs=30, lr=0.01, batch_size=64, patience=0, **params)
    model.fit(train, validation=held)
    result = evaluate(model.score, held, ks=(10,))
    # 20 items per cluster, 9 seen: the 3 targets are among the 11 unseen of the cluster; random would be ~0.08
    assert result["recall@10"] > 0.8, (params, result.metrics)


def test_l2_penalty_shrinks_the_weights_and_needs_dense_gradients():
    train, _ = planted_task()
    common = {"hidden": 16, "latent": 4, "epochs": 5, "lr": 0.01, "batch_size": 64, "patience": 0}
    plain = MultDAE(**common).fit(train)
    shrunk = MultDAE(l2=0.05, **common).fit(train)

    def sq(m: MultDAE) -> float:
        return float(sum(w.detach().pow(2).sum() for w in m.net_.weight_matrices()))

    assert sq(shrunk) < 0.5 * sq(plain)
    with pytest.raises(ValueError, match="dense gradients"):
        MultVAE(hidden=8, latent=4, epochs=1, batch_size=4, negatives=5, loss="mult-css", l2=0.01).fit(train)


def test_sparse_css_path_is_taken_for_large_catalogues():
    train, held = planted_task()  # 120 items > 4 × 5 sampled lookups per step
    model = MultVAE(hidden=8, latent=4, epochs=1, batch_size=4, negatives=5, loss="mult-css").fit(train)
    assert model.sparse_gradients_
    assert np.isfinite(model.score(held.input)).all()


def test_training_resumes_after_interruption_with_the_same_result(tmp_path):
    train, held = planted_task()
    common = {"hidden": 16, "latent": 4, "lr": 0.01, "batch_size": 128, "patience": 0, "anneal_steps": 10}
    straight = MultVAE(epochs=4, **common).fit(train, validation=held)
    first = MultVAE(epochs=2, checkpoint_dir=str(tmp_path / "ck"), **common).fit(train, validation=held)
    resumed = MultVAE(epochs=4, checkpoint_dir=str(tmp_path / "ck"), **common).fit(train, validation=held)
    np.testing.assert_array_equal(resumed.out_vectors_, straight.out_vectors_)
    assert int(resumed.net_.steps) == int(straight.net_.steps)
    # the training time counts the interrupted part too; a finished checkpoint reports it without retraining
    kept = json.loads((tmp_path / "ck" / "manifest.json").read_text())["seconds"]
    assert resumed.train_s_ >= kept > first.train_s_
    done = MultVAE(epochs=4, checkpoint_dir=str(tmp_path / "ck"), **common).fit(train, validation=held)
    assert done.train_s_ >= kept and done.history_ == resumed.history_


def test_empty_history_gets_the_same_scores_for_everyone():
    train, _ = planted_task()
    model = MultDAE(hidden=16, latent=4, epochs=1, batch_size=128).fit(train)
    scores = model.score(sp.csr_matrix((2, train.shape[1]), dtype=np.float32))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert math.isfinite(float(scores.max()))
