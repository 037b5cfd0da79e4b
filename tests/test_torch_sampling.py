"""The sampled softmax of the low-rank head (``fit(..., sampled_labels=C)``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb.torch import SparseLabels, fit, make_model, mlp  # noqa: E402
from labelemb.torch.checkpoint import TrainSettings  # noqa: E402
from labelemb.torch.sampling import LabelSampler  # noqa: E402


def labels(rows, L):
    indptr = np.cumsum([0] + [len(r) for r in rows])
    return SparseLabels(torch.tensor(indptr), torch.tensor([i for r in rows for i in r]),
                        n_labels=L)


@pytest.mark.parametrize("seed", range(5))
def test_candidates_hold_the_batch_labels_and_distinct_draws(seed):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(50, 500))
    rows = [sorted(set(rng.integers(0, L, size=rng.integers(0, 6)).tolist()))
            for _ in range(20)]
    y = labels(rows, L)
    batch = sorted({i for r in rows for i in r})
    ids, offsets, sub = LabelSampler(L, len(batch) + 30, seed=seed)(y)
    got = ids.tolist()
    assert got[:len(batch)] == batch  # the batch's labels first, uncorrected
    assert len(set(got)) == len(got) and 0 <= min(got) and max(got) < L
    drawn = got[len(batch):]
    assert 0 < len(drawn) <= 30 and not set(drawn) & set(batch)
    assert torch.all(offsets[:len(batch)] == 0)
    rest = L - len(batch)
    assert torch.allclose(offsets[len(batch):], torch.tensor(math.log(rest / len(drawn))))
    assert sub.n_labels == len(got)
    assert torch.equal(ids[sub.indices], y.indices)  # re-indexed onto the candidates
    assert torch.equal(sub.indptr, y.indptr)


def test_fewer_candidates_than_batch_labels_and_more_than_all():
    y = labels([[3, 7], [7, 9, 1]], 12)
    ids, offsets, sub = LabelSampler(12, 2, seed=0)(y)
    assert ids.tolist() == [1, 3, 7, 9] and not offsets.any()
    ids, offsets, sub = LabelSampler(12, 12, seed=0)(y)  # every label: no sampling
    assert ids.tolist() == list(range(12)) and offsets.shape == (12,) and not offsets.any()
    assert torch.equal(sub.indices, y.indices) and sub.n_labels == 12


def test_the_corrected_normaliser_estimates_the_full_one():
    """With the drawn labels' offsets, the mean over draws of sum(exp(logits)) over the
    candidates is the sum over every label (the draws are uniform)."""
    L = 400
    z = torch.randn(L, generator=torch.Generator().manual_seed(0))
    y = labels([[0, 5], [9]], L)
    sampler = LabelSampler(L, 60, seed=1)
    est = []
    for _ in range(3000):
        ids, offsets, _ = sampler(y)
        est.append(float(torch.exp(z[ids] + offsets).sum()))
    assert np.mean(est) == pytest.approx(float(torch.exp(z).sum()), rel=0.02)


def _data():
    data = labelemb.make_topic_labels(900, 120, n_features=24, seed=0)
    X, Y = data.features, data.labels
    with warnings.catch_warnings():  # a few labels never occur in the first 700 rows
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(Y[:700], dim=16, seed=0)
    return (X[:700], Y[:700]), (X[700:], Y[700:]), emb


def _fit(sampled, epochs=3, **kw):
    train, valid, emb = _data()
    torch.manual_seed(0)
    model = make_model(mlp(24, [48]), 48, "lowrank-softmax", embedding=emb)
    h = fit(model, train, valid=valid, epochs=epochs, lr=3e-3, batch_size=32,
            progress=False, device="cpu", sampled_labels=sampled, **kw)
    return model, h


def test_sparse_rows_give_the_label_vectors_row_sparse_gradients():
    """Over a SparseLinear first layer (SparseAdamW), a step's label vectors get a
    row-sparse gradient holding only its candidates; with every label as candidates that
    trains as the full softmax."""
    import scipy.sparse as sp

    train, valid, emb = _data()
    X = sp.csr_matrix(np.maximum(train[0], 0.5) - 0.5)  # sparse non-negative rows
    seen = []

    def run(sampled):
        torch.manual_seed(0)
        model = make_model(mlp(24, [48], sparse=True), 48, "lowrank-softmax", embedding=emb)
        model[1].label_vectors.register_hook(lambda g: seen.append(g.is_sparse))
        fit(model, (X, train[1]), epochs=1, lr=3e-3, batch_size=64, progress=False,
            device="cpu", sampled_labels=sampled)
        return model

    full = run(None)
    assert not any(seen)
    seen.clear()
    every = run(120)
    assert seen and all(seen)
    for a, b in zip(full.parameters(), every.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
    seen.clear()
    run(110)  # a few labels drawn beside each batch's own
    assert seen and all(seen)


def test_every_label_as_candidates_trains_as_the_full_softmax():
    full_model, full = _fit(None, epochs=2)
    all_model, every = _fit(120, epochs=2)
    assert [e["loss"] for e in every.epochs] == pytest.approx([e["loss"] for e in full.epochs])
    for a, b in zip(full_model.parameters(), all_model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_sampled_training_learns_and_leaves_a_full_model():
    model, h = _fit(100, epochs=4)
    head = model[1]
    assert head.sample is None  # training over: the head scores every label again
    assert h.epochs[-1]["loss"] < h.epochs[0]["loss"]
    X = _data()[1][0]
    assert h.epochs[-1]["map@100"] > 0.3
    with torch.no_grad():
        out = model.eval()(torch.as_tensor(X[:5], dtype=torch.float32))
    assert out.shape == (5, 120)


def test_bad_sampled_labels():
    train, _, emb = _data()
    model = make_model(mlp(24, [48]), 48, "lowrank-softmax", embedding=emb)
    with pytest.raises(ValueError, match="sampled_labels"):
        fit(model, train, epochs=1, lr=1e-3, batch_size=32, progress=False,
            sampled_labels=0)
    with pytest.raises(TypeError, match="sampled_labels"):
        fit(model, train, epochs=1, lr=1e-3, batch_size=32, progress=False,
            sampled_labels=2.5)
    bce = make_model(mlp(24, [48]), 48, "bce", n_labels=120)
    with pytest.raises(ValueError, match="sampled_labels needs a low-rank head"):
        fit(bce, train, epochs=1, lr=1e-3, batch_size=32, progress=False,
            sampled_labels=50)
    hybrid = make_model(mlp(24, [48]), 48, "lowrank-hybrid", embedding=emb)
    with pytest.raises(ValueError, match="softmax loss"):
        fit(hybrid, train, epochs=1, lr=1e-3, batch_size=32, progress=False,
            sampled_labels=50)


def test_a_resumed_sampled_run_draws_as_the_uninterrupted_one(tmp_path):
    full_model, full = _fit(100, epochs=3)
    _fit(100, epochs=3, checkpoint_dir=str(tmp_path),  # stopped after 2 epochs
         callbacks=[lambda history, model: len(history.epochs) == 2])
    model, resumed = _fit(100, epochs=3, checkpoint_dir=str(tmp_path), resume=True)
    assert resumed["loss"][2] == pytest.approx(full["loss"][2], rel=1e-6)
    for a, b in zip(full_model.parameters(), model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_resuming_with_another_sample_size_is_refused(tmp_path):
    _fit(40, epochs=1, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="sampled_labels: 40 in the checkpoint, 60 now"):
        _fit(60, epochs=2, checkpoint_dir=str(tmp_path), resume=True)
    saved = TrainSettings("bce", epochs=1, lr=1e-3, batch_size=8)
    assert saved.sampled_labels is None  # checkpoints from before it read as "every label"
