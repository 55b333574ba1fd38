"""LED: losses at known points, the transposition trick, learning a planted structure, resuming."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ledrec.evaluate.ranking import evaluate
from ledrec.models.batches import split as _split
from ledrec.models.led import LED, LEDNet
from ledrec.models.losses import bpr_loss, mult_css_loss, mult_loss, ns_loss
from tests.conftest import planted_task


def test_bpr_loss_with_equal_scores_is_log_2():
    pos = torch.zeros(7)
    rows = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    neg = torch.zeros(3, 50)
    assert float(bpr_loss(pos, rows, neg)) == pytest.approx(math.log(2))


def test_ns_loss_with_zero_scores():
    # −log σ(0) − N · log(1 − σ(0)) = (1 + N) log 2
    assert float(ns_loss(torch.zeros(4), torch.tensor([0, 0, 1, 1]), torch.zeros(2, 9))) == pytest.approx(
        10 * math.log(2)
    )


def test_css_equals_exact_softmax_when_negatives_are_all_other_items():
    torch.manual_seed(0)
    n_items = 12
    logits = torch.randn(1, n_items)
    p = 5
    negatives = torch.tensor([[i for i in range(n_items) if i != p]])  # exactly the I − 1 others
    css = mult_css_loss(logits[0, [p]], torch.tensor([0]), logits[0, negatives[0]][None], n_items)
    exact = mult_loss(logits, torch.tensor([0]), torch.tensor([p]))
    assert float(css) == pytest.approx(float(exact), rel=1e-6)
    assert float(exact) == pytest.approx(-float(torch.log_softmax(logits, 1)[0, p]), rel=1e-6)


def test_mult_loss_at_init_with_equal_scores_is_log_catalogue():
    # uniform scores: each positive costs log I; two users with 3 and 1 positives → (3 + 1) log I / 2
    loss = mult_loss(torch.zeros(2, 40), torch.tensor([0, 0, 0, 1]), torch.tensor([1, 2, 3, 4]))
    assert float(loss) == pytest.approx(4 * math.log(40) / 2)


def test_transposition_trick_equals_naive_projection():
    torch.manual_seed(0)
    vectors = torch.randn(300, 16).numpy()
    net = LEDNet(300, 16, vectors, tuning="project")
    with torch.no_grad():
        net.projection.copy_(torch.randn(16, 16))
        net.item_bias.copy_(torch.randn(300, 1))
    items, offsets = torch.tensor([1, 5, 7, 2, 9]), torch.tensor([0, 3])
    user = net.encode(items, offsets)  # (2, 16)
    trick = net.score_all(net.query(user))
    naive = net.naive_projected_scores(user)
    torch.testing.assert_close(trick, naive, rtol=1e-4, atol=1e-4)


def test_encoder_is_the_mean_and_empty_history_is_null():
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    net = LEDNet(4, 3, vectors)
    user = net.encode(torch.tensor([0, 2, 3]), torch.tensor([0, 2, 3]))  # bags [0, 2], [3], []
    torch.testing.assert_close(user[0], torch.tensor((vectors[0] + vectors[2]) / 2))
    torch.testing.assert_close(user[1], torch.tensor(vectors[3]))
    torch.testing.assert_close(user[2], torch.zeros(3))
    sqrt_net = LEDNet(4, 3, vectors, reduce="sqrt")
    torch.testing.assert_close(
        sqrt_net.encode(torch.tensor([0, 2]), torch.tensor([0]))[0],
        torch.tensor((vectors[0] + vectors[2]) / math.sqrt(2)),
    )


def test_split_is_per_row_and_disjoint():
    m = sp.csr_matrix(
        np.array([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]])
    )
    inp, tgt = _split(m, 0.2, np.random.default_rng(0))
    assert np.diff(tgt.indptr).tolist() == [2, 0, 1]
    assert (inp + tgt != m).nnz == 0 and inp.multiply(tgt).nnz == 0


@pytest.mark.parametrize(
    "params",
    [
        {"loss": "mult", "init": "random"},
        {"loss": "mult", "init": "svd", "tuning": "project"},
        {"loss": "mult-css", "init": "svd", "negatives": 50},
        {"loss": "mult-css", "init": "svd", "negatives": 30, "share_negatives": "batch", "negative_power": 0.75},
        {"loss": "bpr", "init": "random", "negatives": 50},
        {"loss": "ns", "init": "svd", "negatives": 20},
    ],
)
def test_led_learns_planted_clusters(params):
    train, held = planted_task()
    model = LED(dim=16, epochs=15, lr=0.02, batch_size=64, patience=0, **params).fit(train, validation=held)
    result = evaluate(model.score, held, ks=(10,))
    # 20 items per cluster, 9 seen: the 3 targets are among the 11 unseen of the cluster; random would be ~0.08
    assert result["recall@10"] > 0.8, (params, result.metrics)


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "bpr"},  # SparseAdam state restored
        {"loss": "mult"},  # Adam state
        {"loss": "mult-css", "share_negatives": "batch", "mult_after": 2},  # SparseAdam and the densified Adam
    ],
)
def test_training_resumes_after_interruption_with_the_same_result(tmp_path, options):
    train, held = planted_task()
    common = {"dim": 8, "lr": 0.02, "batch_size": 128, "patience": 0, "negatives": 20, **options}
    straight = LED(epochs=6, **common).fit(train, validation=held)
    # "interrupted" after 3 epochs (the checkpoint of epoch 3 is on disk), then resumed with the full budget
    LED(epochs=3, checkpoint_dir=str(tmp_path / "ck"), **common).fit(train, validation=held)
    resumed = LED(epochs=6, checkpoint_dir=str(tmp_path / "ck"), **common).fit(train, validation=held)
    np.testing.assert_array_equal(resumed.item_vectors_, straight.item_vectors_)
    np.testing.assert_array_equal(resumed.item_bias_, straight.item_bias_)
    assert [h.get("metric") for h in resumed.history_] == [h.get("metric") for h in straight.history_]
    assert resumed.best_epoch_ == straight.best_epoch_


@pytest.mark.parametrize("loss", ["mult-css", "bpr", "ns"])
def test_sparse_and_dense_sampled_losses_agree(loss):
    train, _ = planted_task()
    # batch 4 × 5 negatives < 120 items: fit takes the sparse-gradient path
    model = LED(dim=8, epochs=1, batch_size=4, negatives=5, loss=loss, init="random").fit(train)
    assert model.sparse_gradients_
    rows = np.arange(10)
    trained = model.estimator_  # (the member that trained: a TrainedLED)
    sparse = trained._loss(train, train, rows, np.random.default_rng(1), 0.0, sparse=True)
    dense = trained._loss(train, train, rows, np.random.default_rng(1), 0.0, sparse=False)
    assert float(sparse.detach()) == pytest.approx(float(dense.detach()), rel=1e-5)


def test_mult_after_switches_a_sampled_run_to_the_full_softmax(monkeypatch):
    import ledrec.models.led_trained as led_module

    train, held = planted_task()
    seen: list[tuple[int, str]] = []
    epoch_of_call = iter(e for e in range(3) for _ in range(-(-train.shape[0] // 64)))  # steps per epoch
    original = led_module.decoder_loss

    def spy(loss, *args, **kwargs):
        seen.append((next(epoch_of_call), loss))
        return original(loss, *args, **kwargs)

    monkeypatch.setattr(led_module, "decoder_loss", spy)
    params = {"dim": 8, "lr": 0.02, "batch_size": 64, "patience": 0, "loss": "mult-css", "negatives": 10}
    params["share_negatives"] = "batch"  # 10 lookups per step of a 120-item table: sparse gradients
    model = LED(epochs=3, mult_after=2, **params).fit(train)
    assert model.sparse_gradients_  # the full-softmax epochs run on the SparseAdam-trained table
    assert {loss for e, loss in seen if e < 2} == {"mult-css"} and {loss for e, loss in seen if e == 2} == {"mult"}
    assert evaluate(model.score, held, ks=(10,))["recall@10"] > 0.8


def test_a_custom_validation_score_drives_model_selection():
    import numpy as np
    import scipy.sparse as sp

    from ledrec.models.led import LED

    X = sp.random(200, 50, density=0.1, format="csr", random_state=0, dtype=np.float32)
    X.data[:] = 1.0
    calls = []

    def score(model):  # prefers the earliest state: the initial one must be returned
        calls.append(1)
        return -len(calls)

    model = LED(dim=4, epochs=3, patience=0, init="random", random_state=0)
    model.progress = False
    model.validation_score = score
    model.fit(X)
    assert model.best_epoch_ == 0 and len(calls) == 4  # initial state + 3 epochs


@pytest.mark.parametrize("loss", ["mult", "mult-css"])  # dense gradients; 20 negatives of 120 items: sparse ones
def test_an_untied_encoder_learns_its_own_table_and_serves_by_one_inner_product(loss, tmp_path):
    from ledrec.export.mips import ServingModel, from_model

    train, held = planted_task()
    params = {"dim": 16, "epochs": 15, "lr": 0.02, "batch_size": 64, "patience": 0, "negatives": 20, "loss": loss}
    params["share_negatives"] = "batch"
    model = LED(encoder="untied", **params).fit(train, validation=held)
    assert model.sparse_gradients_ == (loss != "mult")
    assert not np.allclose(model.encoder_vectors_, model.item_vectors_)  # two tables, both trained
    assert evaluate(model.score, held, ks=(10,))["recall@10"] > 0.8
    # the serving form: u = mean of the encoder's rows, score = <u, v_i> + b_i — the model's own scores
    ids = np.array([f"i{i}" for i in range(train.shape[1])])
    serving = from_model(model, ids)
    assert not serving.tied
    history = held.input[0].indices
    np.testing.assert_allclose(
        serving.scores(serving.user_vector(history)), model.score(held.input[:1])[0], rtol=1e-4, atol=1e-4
    )
    serving.save(tmp_path / "export")
    assert not ServingModel.load(tmp_path / "export").tied
    model.save(tmp_path / "model")  # and a saved model keeps its encoder
    np.testing.assert_array_equal(LED.load(tmp_path / "model").score(held.input[:3]), model.score(held.input[:3]))


def test_an_untied_encoder_needs_full_tuning():
    from ledrec.errors import ConfigError

    train, _ = planted_task()
    with pytest.raises(ConfigError, match="untied"):
        LED(dim=8, epochs=1, encoder="untied", tuning="project").fit(train)
