"""Neighbour votes (labelemb.torch.neighbours): the votes against a hand computation, the
fused scores, predict/evaluate with them, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb.torch import evaluate, fit, make_model, mlp, predict  # noqa: E402
from labelemb.torch.neighbours import NeighbourVotes, head_space  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    d = labelemb.make_topic_labels(800, 30, n_features=16, seed=1)
    X, Y = d.features.astype(np.float32), d.labels.tocsr()
    emb = labelemb.fit_embeddings(Y[:600], dim=8, seed=0)
    torch.manual_seed(0)
    model = make_model(mlp(16, [32]), 32, "lowrank-softmax", embedding=emb)
    fit(model, (X[:600], Y[:600]), emb, epochs=2, lr=1e-2, batch_size=64, progress=False)
    return model, emb, X[:600], Y[:600], X[600:], Y[600:]


def test_votes_by_hand():
    keys = np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32)
    labels = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1]], np.float32))
    v = NeighbourVotes(keys, labels, k=2, temperature=0.5)
    q = np.array([[1, 0]], np.float32)  # similarities 1, 0, 0.6: keys 0 and 2
    w = np.exp(np.array([1.0, 0.6]) / 0.5)
    w /= w.sum()
    np.testing.assert_allclose(v.votes(q).toarray(), [[w[0], w[1], w[1]]], rtol=1e-6)
    # the fused score mixes the softmax and the votes
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    want = 0.5 * torch.softmax(logits, 1).numpy() + 0.5 * np.array([[w[0], w[1], w[1]]])
    np.testing.assert_allclose(v.fuse(logits, torch.from_numpy(q)).numpy(), want, rtol=1e-6)
    v.weight = 0.0
    np.testing.assert_allclose(v.fuse(logits, torch.from_numpy(q)).numpy(),
                               torch.softmax(logits, 1).numpy(), rtol=1e-6)


def test_keys_are_the_head_space(trained):
    model, emb, X, Y, _, _ = trained
    votes = NeighbourVotes.from_model(model, X, Y, k=5)
    head = model[1]
    with torch.no_grad():
        want = torch.nn.functional.normalize(head.linear(model[0](torch.from_numpy(X))), dim=1)
    np.testing.assert_allclose(votes.keys, want.numpy(), rtol=1e-5, atol=1e-6)
    assert votes.labels.shape == Y.shape and (votes.labels != Y).nnz == 0
    # the hook is gone afterwards
    with head_space(model) as points:
        pass
    model(torch.from_numpy(X[:3]))
    assert points == []


def test_predict_and_evaluate_with_votes(trained):
    model, emb, X, Y, Xv, Yv = trained
    votes = NeighbourVotes.from_model(model, X, Y, k=20)
    idx, scores = predict(model, Xv, k=5, neighbours=votes)
    with torch.no_grad():
        logits = model(torch.from_numpy(Xv))
        z = torch.nn.functional.normalize(model[1].linear(model[0](torch.from_numpy(Xv))), dim=1)
    fused = votes.fuse(logits, z)
    want_s, want_i = torch.topk(fused, 5, dim=1)
    np.testing.assert_array_equal(idx, want_i.numpy())
    np.testing.assert_allclose(scores, want_s.numpy(), rtol=1e-5)
    rep = evaluate(model, (Xv, Yv), neighbours=votes, map_k=30)
    direct = labelemb.metrics.report(predict(model, Xv, k=30, neighbours=votes)[0], Yv,
                                     ks=[1, 5, 30], n_labels=30)
    assert rep["map@30"] == pytest.approx(direct["map@30"])
    # the votes carry the training labels: on the training rows themselves they help
    alone = evaluate(model, (X, Y), map_k=30)["map@30"]
    assert evaluate(model, (X, Y), neighbours=votes, map_k=30)["map@30"] > alone


def test_bad_input(trained):
    model, emb, X, Y, Xv, _ = trained
    keys = np.ones((4, 3), np.float32)
    labels = sp.csr_matrix((4, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="keys"):
        NeighbourVotes(keys[0], labels)
    with pytest.raises(ValueError, match="finite"):
        NeighbourVotes(np.full((4, 3), np.nan, np.float32), labels)
    with pytest.raises(TypeError, match="labels"):
        NeighbourVotes(keys, labels.toarray())
    with pytest.raises(ValueError, match="one label set per key"):
        NeighbourVotes(keys, labels[:3])
    with pytest.raises(ValueError, match="k"):
        NeighbourVotes(keys, labels, k=5)
    with pytest.raises(ValueError, match="temperature"):
        NeighbourVotes(keys, labels, k=2, temperature=0)
    with pytest.raises(ValueError, match="weight"):
        NeighbourVotes(keys, labels, k=2, weight=1.5)
    with pytest.raises(ValueError, match="points"):
        NeighbourVotes(keys, labels, k=2).votes(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="X has 600 samples but Y has 599"):
        NeighbourVotes.from_model(model, X, Y[:599])
    with pytest.raises(TypeError, match="NeighbourVotes"):
        predict(model, Xv, k=3, neighbours="votes")
    with pytest.raises(ValueError, match="30"):
        predict(model, Xv, k=3, neighbours=NeighbourVotes(keys, labels, k=2))
    paper = make_model(mlp(16, [32]), 32, "paper", embedding=emb)
    votes = NeighbourVotes.from_model(model, X, Y, k=3)
    with pytest.raises(ValueError, match="nearest label vectors"):
        predict(paper, Xv, emb, k=3, neighbours=votes)


def test_fit_takes_the_recipe_schedule(trained, tmp_path):
    from labelemb._recipes import RECIPES

    model, emb, X, Y, _, _ = trained
    assert RECIPES["lowrank-softmax"].schedule == "cosine"
    assert RECIPES["bce"].schedule == "constant"
    torch.manual_seed(0)
    m = make_model(mlp(16, [32]), 32, "lowrank-softmax", embedding=emb)
    h = fit(m, (X, Y), emb, epochs=1, lr=1e-2, batch_size=64, progress=False,
            checkpoint_dir=str(tmp_path / "ck"))
    from labelemb.torch.checkpoint import latest_checkpoint

    ck = latest_checkpoint(str(tmp_path / "ck"))
    assert ck["settings"]["schedule"] == "cosine" and len(h) == 1
    # the cosine schedule ends at 0 after the last step
    assert ck["scheduler"]["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)


def test_arrays_round_trip_and_damage():
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(6, 3)).astype(np.float32)
    labels = sp.csr_matrix(rng.random((6, 4)) < 0.5, dtype=np.float32)
    votes = NeighbourVotes(keys, labels, k=3, temperature=0.1, weight=0.3)
    kept, meta = votes.arrays()
    back = NeighbourVotes.from_arrays(kept, meta, "m.npz")
    assert np.array_equal(back.keys, keys) and (back.labels != votes.labels).nnz == 0
    assert (back.k, back.temperature, back.weight, back.n_labels) == (3, 0.1, 0.3, 4)
    q = rng.normal(size=(2, 3)).astype(np.float32)
    assert np.allclose(back.votes(q).toarray(), votes.votes(q).toarray())
    bad = dict(kept, indptr=kept["indptr"] + 1)  # points past the label indices
    for arrays, settings in ((bad, meta), ({"keys": keys}, meta), (kept, dict(meta, k=99)),
                             (kept, {"k": 3})):
        with pytest.raises(ValueError, match="m.npz: the neighbour votes are damaged"):
            NeighbourVotes.from_arrays(arrays, settings, "m.npz")
