"""labelemb.torch.fit / predict / evaluate on small synthetic data (CPU, seconds)."""

import json
import os

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb import metrics  # noqa: E402
from labelemb.torch import (  # noqa: E402
    History,
    evaluate,
    fit,
    load_checkpoint,
    make_model,
    mlp,
    predict,
)

N_TRAIN, N_VALID, L, F, D = 1200, 300, 60, 24, 16


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def data():
    d = labelemb.make_topic_labels(N_TRAIN + N_VALID, L, n_features=F, feature_noise=0.5,
                                   seed=7)
    X, Y = d.features, d.labels
    train, valid = (X[:N_TRAIN], Y[:N_TRAIN]), (X[N_TRAIN:], Y[N_TRAIN:])
    emb = labelemb.fit_embeddings(train[1], dim=D)
    return train, valid, emb


def _model(head, emb, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return make_model(mlp(F, [32], dropout=dropout), 32, head, embedding=emb, n_labels=L)


def _fit(model, data, **kw):
    train, valid, emb = data
    args = dict(valid=valid, epochs=3, lr=1e-2, batch_size=64, progress=False, device="cpu")
    args.update(kw)
    return fit(model, train, emb, **args)


def test_make_model_default_is_hybrid(data):
    # The default recipe: one output per label, trained on sigmoid + softmax CE.
    from labelemb.torch import LogitHead

    model = make_model(mlp(4, [8]), 8, embedding=data[2])
    assert isinstance(model[1], LogitHead) and model[1].recipe == "hybrid"
    assert model(torch.zeros(2, 4)).shape == (2, L)


@pytest.mark.parametrize("head", ["paper", "bce", "lowrank", "softmax", "lowrank-softmax",
                                  "hybrid", "lowrank-hybrid"])
def test_loss_decreases(data, head):
    h = _fit(_model(head, data[2]), data, epochs=4)
    loss = h["loss"]
    assert loss[-1] < 0.9 * loss[0], loss
    assert h.recipe == head
    assert set(h.epochs[0]) >= {"epoch", "loss", "p@1", "p@5", "ndcg@5", "map@60",
                                "train_time", "eval_time", "elapsed"}
    assert h["epoch"] == [1, 2, 3, 4]


def test_softmax_recipes_use_the_softmax_loss(data):
    """make_model(head="softmax") trains a LogitHead with softmax cross-entropy: its first
    epoch's loss is that loss (log L at the start, not the sigmoid loss summed over L
    labels), and recipe= picks the objective for the same head."""
    from labelemb.torch import LogitHead, LowRankHead

    train, valid, emb = data
    model = _model("softmax", emb)
    assert isinstance(model[1], LogitHead) and model[1].recipe == "softmax"
    h = _fit(model, data, epochs=1, lr=1e-4)
    assert h.recipe == "softmax"
    assert h["loss"][0] < 1.5 * np.log(L)  # the BCE sum over 60 labels starts far higher
    plain = _model("bce", emb)
    hb = _fit(plain, data, epochs=1, lr=1e-4, recipe="softmax")
    assert hb.recipe == "softmax" and hb["loss"][0] == pytest.approx(h["loss"][0], rel=1e-3)
    lr_model = _model("lowrank-softmax", emb)
    assert isinstance(lr_model[1], LowRankHead)
    assert _fit(lr_model, data, epochs=1).recipe == "lowrank-softmax"
    with pytest.raises(ValueError, match="does not fit"):
        _fit(_model("lowrank", emb), data, epochs=1, recipe="paper")
    with pytest.raises(ValueError, match="does not fit"):
        _fit(_model("paper", emb), data, epochs=1, recipe="softmax")


def test_hybrid_loss_is_the_sum(data):
    """recipe "hybrid" trains on sigmoid + softmax cross-entropy: with a learning rate too
    small to move the weights, its first-epoch loss is the sum of the other two."""
    train, valid, emb = data
    assert (train[1].getnnz(axis=1) > 0).all()  # every row has labels: same averaging
    losses = {}
    for r in ("bce", "softmax", "hybrid"):
        h = _fit(_model(r, emb), data, epochs=1, lr=1e-12)
        assert h.recipe == r
        losses[r] = h["loss"][0]
    assert losses["hybrid"] == pytest.approx(losses["bce"] + losses["softmax"], rel=1e-5)


def test_embedding_model_beats_popularity(data):
    train, valid, emb = data
    model = _model("paper", emb)
    h = _fit(model, data, epochs=6)
    counts = np.asarray(train[1].sum(axis=0)).ravel()
    popular = np.argsort(-counts, kind="stable")[:L]
    pop = np.tile(popular, (N_VALID, 1))
    pop_p5 = metrics.precision_at_k(pop, valid[1], 5)
    pop_map = metrics.map_at_k(pop, valid[1], L)
    assert h["p@5"][-1] > pop_p5 + 0.1, (h["p@5"], pop_p5)
    assert h["map@60"][-1] > pop_map + 0.1, (h["map@60"], pop_map)


def test_baseline_biases_start_at_log_prior_odds(data):
    model = _model("bce", data[2])
    _fit(model, data, epochs=1, lr=1e-12)
    counts = np.asarray(data[0][1].sum(axis=0)).ravel()
    p = (counts + 0.5) / (N_TRAIN + 1)
    np.testing.assert_allclose(model[1].linear.bias.detach().numpy(), np.log(p / (1 - p)),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("head", ["paper", "bce"])
def test_resume_gives_same_next_epoch(data, tmp_path, head):
    kw = dict(epochs=3, schedule="cosine", seed=3)
    full_model = _model(head, data[2], dropout=0.2)
    full = _fit(full_model, data, checkpoint_dir=str(tmp_path / "full"), **kw)
    # interrupted after 2 epochs, then resumed in a fresh model (different init)
    _fit(_model(head, data[2], dropout=0.2), data, checkpoint_dir=str(tmp_path / "part"),
         callbacks=[lambda history, model: len(history) == 2], **kw)
    resumed_model = _model(head, data[2], dropout=0.2, seed=99)
    resumed = _fit(resumed_model, data, checkpoint_dir=str(tmp_path / "part"), resume=True,
                   **kw)
    assert len(resumed) == 3
    assert resumed["loss"][2] == pytest.approx(full["loss"][2], rel=1e-6)
    assert resumed["p@5"][2] == pytest.approx(full["p@5"][2], abs=1e-12)
    for a, b in zip(full_model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b)
    # the log holds each epoch once, and the checkpoint its format version
    lines = (tmp_path / "part" / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]
    state = load_checkpoint(str(tmp_path / "part" / "checkpoint-00003.pt"))
    assert state["format_version"] == 1 and state["epoch"] == 3
    assert sorted(os.listdir(tmp_path / "part")) == ["checkpoint-00002.pt",
                                                    "checkpoint-00003.pt", "history.jsonl"]


def test_history_log_and_json(data, tmp_path):
    log = tmp_path / "log.jsonl"
    h = _fit(_model("bce", data[2]), data, epochs=2, log_path=str(log))
    assert History.load(log).epochs == h.epochs
    back = History.from_json(h.to_json())
    assert back.epochs == h.epochs and back.recipe == "bce"
    assert h.best("p@5") == max(h["p@5"])
    assert h.epochs_to_reach("p@5", h["p@5"][0]) == 1
    assert h.epochs_to_reach("p@5", 2.0) is None


def test_callbacks_can_stop(data):
    seen = []

    def stop_after_two(history, model):
        seen.append(len(history))
        return len(history) >= 2

    h = _fit(_model("bce", data[2]), data, epochs=5, callbacks=[stop_after_two])
    assert len(h) == 2 and seen == [1, 2]


def test_predict_and_evaluate(data):
    train, valid, emb = data
    for head in ("paper", "bce"):
        model = _model(head, emb)
        h = _fit(model, data, epochs=1)
        idx, scores = predict(model, valid[0], emb, k=5)
        assert idx.shape == scores.shape == (N_VALID, 5) and idx.dtype == np.int64
        assert (np.diff(scores, axis=1) <= 0).all()
        with torch.no_grad():
            out = model(torch.as_tensor(valid[0]))
        if head == "bce":
            want = torch.topk(out, 5, dim=1).indices.numpy()
        else:
            want = labelemb.topk(out.numpy(), emb.vectors, 5)[0]
        np.testing.assert_array_equal(idx, want)
        r = evaluate(model, valid, emb)
        assert r["precision@1"] == pytest.approx(h["p@1"][-1])
        assert r["map@60"] == pytest.approx(h["map@60"][-1])
        # a Dataset or a pair gives the same predictions as the bare inputs
        assert (predict(model, valid, emb, k=5)[0] == idx).all()


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, X, Y):
        self.X = torch.as_tensor(X)
        self.sets = [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist() for i in range(len(X))]

    def __len__(self):
        return len(self.sets)

    def __getitem__(self, i):
        return self.X[i], self.sets[i]


@pytest.mark.parametrize("head", ["paper", "bce"])
def test_dataset_input(data, head):
    train, valid, emb = data
    model = _model(head, emb)
    h = fit(model, _Pairs(*train), emb, valid=_Pairs(*valid), epochs=3, lr=1e-2,
            batch_size=64, progress=False)
    assert h["loss"][-1] < h["loss"][0]
    ref = evaluate(model, valid, emb)
    assert ref["precision@5"] == pytest.approx(h["p@5"][-1])


def test_label_names_without_embedding():
    d = labelemb.make_topic_labels(300, 12, n_features=8, seed=2)
    names = np.array([f"tag{i:02d}" for i in range(12)])
    sets = [list(names[d.labels.indices[a:b]]) for a, b in zip(d.labels.indptr[:-1],
                                                               d.labels.indptr[1:])]
    torch.manual_seed(0)
    model = make_model(mlp(8, [16]), 16, "bce", n_labels=12)
    h = fit(model, (d.features[:250], sets[:250]), valid=(d.features[250:], sets[250:]),
            epochs=2, lr=1e-2, batch_size=32, progress=False)
    assert len(h) == 2
    with pytest.raises(ValueError, match="not in the vocabulary"):
        fit(model, (d.features[:250], sets[:250]),
            valid=(d.features[250:252], [["tag00"], ["nope"]]), epochs=1, lr=1e-2,
            batch_size=32, progress=False)


def test_custom_model_without_head(data):
    train, valid, emb = data
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(F, 32), torch.nn.ReLU(), torch.nn.Linear(32, D))
    h = _fit(model, data, epochs=2)
    assert h.recipe == "paper"
    wrong = torch.nn.Sequential(torch.nn.Linear(F, D + 1))
    with pytest.raises(ValueError, match=r"needs \(batch, 16\)"):
        _fit(wrong, data, epochs=1)


def test_amp_bf16_on_cpu(data):
    h = _fit(_model("paper", data[2]), data, epochs=1, amp="bf16")
    assert np.isfinite(h["loss"]).all()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_error(data):
    with pytest.raises(ValueError, match="CUDA is not available"):
        _fit(_model("paper", data[2]), data, device="cuda")


def test_bad_labels_fail_before_training(data, tmp_path):
    train, valid, emb = data
    model = _model("paper", emb)
    before = [p.detach().clone() for p in model.parameters()]
    bad_ids = [[0, L]] + [[1]] * (N_TRAIN - 1)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(ValueError, match=f"label id {L}, out of range"):
        fit(model, (train[0], bad_ids), emb, epochs=1, lr=1e-2, batch_size=64,
            progress=False, checkpoint_dir=str(ckpt))
    with pytest.raises(ValueError, match="label columns"):
        fit(model, train, emb, valid=(valid[0], sp.csr_matrix((N_VALID, L + 5))), epochs=1,
            lr=1e-2, batch_size=64, progress=False, checkpoint_dir=str(ckpt))
    with pytest.raises(ValueError, match="label sets for"):
        fit(model, (train[0], train[1][:10]), emb, epochs=1, lr=1e-2, batch_size=64,
            progress=False)
    with pytest.raises(ValueError, match="label id"):
        fit(model, _BadDataset(), emb, epochs=1, lr=1e-2, batch_size=64, progress=False)
    for a, b in zip(before, model.parameters()):
        torch.testing.assert_close(a, b)
    assert not ckpt.exists()


class _BadDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.zeros(F), [i * 100]


def test_bad_arguments(data):
    train, valid, emb = data
    model = _model("paper", emb)
    for kw, match in [(dict(epochs=0), "epochs"), (dict(lr=-1.0), "lr"),
                      (dict(batch_size=0), "batch_size"), (dict(optimizer="lbfgs"), "optimizer"),
                      (dict(schedule="step"), "schedule"), (dict(amp="fp8"), "amp"),
                      (dict(device="tpu"), "device"), (dict(resume=True), "checkpoint_dir"),
                      (dict(recipe="bce"), "does not fit"), (dict(recipe="nope"), "recipe")]:
        args = dict(epochs=1, lr=1e-2, batch_size=8, progress=False)
        args.update(kw)
        with pytest.raises(ValueError, match=match):
            fit(model, train, emb, **args)
    with pytest.raises(TypeError, match="pair"):
        fit(model, train[0], emb, epochs=1, lr=1e-2, batch_size=8)
    with pytest.raises(ValueError, match="NaN"):
        bad = train[0].copy()
        bad[3, 1] = np.nan
        fit(model, (bad, train[1]), emb, epochs=1, lr=1e-2, batch_size=8)
    with pytest.raises(ValueError, match="needs embedding"):
        fit(torch.nn.Linear(F, D), train, None, recipe="paper", epochs=1, lr=1e-2,
            batch_size=8)


def test_plot_history(data, tmp_path):
    pytest.importorskip("matplotlib")
    from labelemb import plot

    a = _fit(_model("paper", data[2]), data, epochs=2)
    b = _fit(_model("bce", data[2]), data, epochs=2)
    out = plot.history({"embedding": a, "sigmoid BCE": b}, tmp_path / "curves.png",
                       metrics=("p@5", "map@60"))
    assert out == str(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="metric"):
        plot.history({"a": a}, tmp_path / "x.png", metrics=("nope",))


def test_names_vocabulary_is_kept_for_evaluation():
    sets = [["b", "c"], ["a"], ["c"], ["b"]] * 20
    X = np.random.default_rng(0).standard_normal((80, 4)).astype(np.float32)
    torch.manual_seed(0)
    model = make_model(mlp(4, [8]), 8, "bce", n_labels=3)
    fit(model, (X, sets), epochs=1, lr=1e-2, batch_size=16, progress=False)
    assert model[1].label_names == ["a", "b", "c"]
    # names only present in part of the label space still map through the vocabulary
    r = evaluate(model, (X[:4], [["c"], ["c"], ["c"], ["c"]]), ks=[1], map_k=3)
    assert 0 <= r["precision@1"] <= 1
    with pytest.raises(ValueError, match="not in the vocabulary"):
        evaluate(model, (X[:1], [["zzz"]]))
    bare = make_model(mlp(4, [8]), 8, "bce", n_labels=3)
    with pytest.raises(ValueError, match="no vocabulary"):
        evaluate(bare, (X[:1], [["a"]]))
