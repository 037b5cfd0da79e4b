"""labelemb.Classifier: the estimator, its exact decoder, one-file round trips, bad input,
scikit-learn conventions, and the ``fit-model`` / ``predict`` commands end to end."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
import labelemb.torch.decoder as D  # noqa: E402
from labelemb import Classifier  # noqa: E402
from labelemb.torch import fit, make_model, mlp, predict  # noqa: E402
from labelemb.torch.decoder import ExactDecoder  # noqa: E402
from labelemb.torch.neighbours import NeighbourVotes  # noqa: E402

SMALL = dict(dim=8, hidden=(32,), epochs=2, lr=1e-2, batch_size=64)


@pytest.fixture(scope="module")
def data():
    d = labelemb.make_topic_labels(900, 24, n_features=16, seed=0)
    X = d.features.astype(np.float32)
    Y = d.labels.tocsr()
    assert (np.bincount(Y.indices, minlength=24) > 0).all()  # no unseen label: no warning
    return X[:700], Y[:700], X[700:], Y[700:]


@pytest.fixture(scope="module")
def fitted(data):
    X, Y, Xv, Yv = data
    return Classifier(**dict(SMALL, epochs=3)).fit(X, Y, X_valid=Xv, Y_valid=Yv)


def _names(Y):
    return [[f"t{j:02d}" for j in Y.indices[Y.indptr[i]:Y.indptr[i + 1]]]
            for i in range(Y.shape[0])]


# ---------------------------------------------------------------- fit / predict
def test_fit_predict_ids(fitted, data):
    X, Y, Xv, Yv = data
    assert fitted.n_features_in_ == 16 and len(fitted.classes_) == 24
    assert fitted.label_embedding_.vectors.shape == (24, 8)
    pred = fitted.predict(Xv, k=3)
    assert pred.shape == (200, 3) and pred.dtype == np.int64
    idx, scores = fitted.predict_topk(Xv, 3)
    np.testing.assert_array_equal(pred, idx)
    assert (np.diff(scores, axis=1) <= 0).all()
    # learned something: far better than the most frequent labels
    top = np.argsort(-np.bincount(Y.indices, minlength=24))[:1]
    rep = fitted.score(Xv, Yv)
    base = labelemb.metrics.report(np.tile(top, (200, 1)), Yv, ks=[1])
    assert rep["precision@1"] > base["precision@1"] + 0.2


def test_names_in_names_out(data):
    X, Y, Xv, Yv = data
    clf = Classifier(**SMALL).fit(X, _names(Y))
    assert clf.classes_.tolist() == sorted(f"t{j:02d}" for j in range(24))
    assert clf.label_embedding_.label_names == clf.classes_.tolist()
    pred = clf.predict(Xv, k=2)
    assert pred.shape == (200, 2) and pred.dtype.kind == "U"
    idx, _ = clf.predict_topk(Xv, 2)
    assert (pred == clf.classes_[idx]).all()
    by_names = clf.score(Xv, _names(Yv))
    by_ids = clf.score(Xv, Yv)  # ids of the same (sorted) vocabulary
    assert by_names == by_ids
    assert clf.score(Xv, Yv, metric="map@24") == by_ids["map@24"]


@pytest.mark.parametrize("recipe", ["hybrid", "bce", "lowrank", "lowrank-softmax", "paper"])
def test_decoder_gives_the_dense_top_k(data, recipe):
    X, Y, Xv, _ = data
    clf = Classifier(**SMALL, recipe=recipe, neighbours=0).fit(X, Y)
    assert clf.neighbours_ is None
    want_i, want_s = predict(clf.model_, Xv, k=5, amp=False)  # dense outputs + torch.topk
    got_i, got_s = clf.predict_topk(Xv, 5)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)


def test_decoder_residual_head_and_pruned_index(data, monkeypatch):
    X, Y, Xv, _ = data
    emb = labelemb.fit_embeddings(Y, dim=8)
    torch.manual_seed(0)
    model = make_model(mlp(16, [32]), 32, "lowrank", embedding=emb, residual=True)
    with torch.no_grad():
        model[1].residual.weight.normal_(std=0.3)
    model.eval()
    want_i, _ = predict(model, Xv, k=4, amp=False)
    monkeypatch.setattr(D, "INDEX_MIN_LABELS", 1)
    monkeypatch.setattr(D, "MAX_SCORED_FRACTION", 1.0)
    dec = ExactDecoder(model, emb, torch.device("cpu"), 0)
    assert dec.index is not None
    with torch.no_grad():
        got_i, _ = dec(torch.from_numpy(Xv), 4)
    np.testing.assert_array_equal(got_i, want_i)
    # an index that stops skipping labels is dropped, with the same results
    monkeypatch.setattr(D, "MAX_SCORED_FRACTION", -1.0)
    with torch.no_grad():
        dec(torch.from_numpy(Xv[:50]), 4)
        assert dec.index is None
        again, _ = dec(torch.from_numpy(Xv), 4)
    np.testing.assert_array_equal(again, want_i)


def test_same_as_the_hand_assembled_pipeline(data):
    X, Y, Xv, Yv = data
    clf = Classifier(**SMALL, seed=3).fit(X, Y)
    emb = labelemb.fit_embeddings(Y, dim=8, seed=3)
    torch.manual_seed(3)
    model = make_model(mlp(16, [32]), 32, "hybrid", embedding=emb)
    fit(model, (X, Y), emb, epochs=2, lr=1e-2, batch_size=64, seed=3, progress=False)
    np.testing.assert_array_equal(emb.vectors, clf.label_embedding_.vectors)
    for k, v in model.state_dict().items():
        assert torch.equal(v, clf.model_.state_dict()[k]), k
    votes = NeighbourVotes.from_model(model, X, Y)
    np.testing.assert_array_equal(clf.neighbours_.keys, votes.keys)
    np.testing.assert_array_equal(clf.predict_topk(Xv, 5)[0],
                                  predict(model, Xv, k=5, neighbours=votes)[0])


def test_best_epoch_weights_are_kept(fitted, data):
    _, _, Xv, Yv = data
    h = fitted.history_["map@24"]
    assert len(h) == 3
    assert fitted.best_epoch_ == int(np.argmax(h)) + 1
    # the kept weights score the best epoch's validation MAP (the model alone: the fit
    # evaluates each epoch without neighbour votes)
    from labelemb.torch import evaluate

    got = evaluate(fitted.model_, (Xv, Yv), ks=[1], map_k=24)["map@24"]
    assert got == pytest.approx(max(h), abs=1e-9)


def test_patience_stops_training(data):
    X, Y, Xv, Yv = data
    clf = Classifier(**dict(SMALL, epochs=8, lr=0.3), patience=1).fit(X, Y, X_valid=Xv,
                                                                     Y_valid=Yv)
    assert len(clf.history_) <= clf.best_epoch_ + 1
    maps = clf.history_["map@24"]
    if len(maps) < 8:  # it stopped: the last epoch did not improve on the best
        assert maps[-1] <= max(maps[:-1])


def test_sparse_inputs_stay_sparse(data, tmp_path):
    from labelemb.torch.sparse import SparseLinear

    X, Y, Xv, _ = data
    clf = Classifier(**SMALL).fit(sp.csr_matrix(X), Y, X_valid=sp.csr_matrix(Xv),
                                  Y_valid=Y[:200])
    assert isinstance(clf.model_[0][0], SparseLinear)
    want_i, _ = predict(clf.model_, sp.csr_matrix(Xv), k=3, amp=False,
                        neighbours=clf.neighbours_)
    np.testing.assert_array_equal(clf.predict(sp.csr_matrix(Xv), 3), want_i)
    np.testing.assert_array_equal(clf.predict(Xv, 3), want_i)  # dense rows work too
    clf.save(tmp_path / "sparse.npz")
    back = Classifier.load(tmp_path / "sparse.npz")
    assert isinstance(back.model_[0][0], SparseLinear)
    np.testing.assert_array_equal(back.predict(sp.csr_matrix(Xv), 3), want_i)


def test_neighbour_votes(data):
    X, Y, Xv, Yv = data
    alone = Classifier(**SMALL, neighbours=0).fit(X, Y)
    fused = Classifier(**SMALL, neighbours=30, neighbour_weight=0.4).fit(X, Y)
    votes = fused.neighbours_
    # the default recipe here (dense, 24 labels) is "hybrid": points are the head's input
    assert votes.keys.shape == (700, 32) and votes.k == 30 and votes.weight == 0.4
    np.testing.assert_allclose(np.linalg.norm(votes.keys, axis=1), 1.0, rtol=1e-5)
    assert (votes.labels != Y).nnz == 0
    # the same network, another ranking: the votes take part
    for k, v in alone.model_.state_dict().items():
        assert torch.equal(v, fused.model_.state_dict()[k]), k
    assert not np.array_equal(alone.predict(Xv, 5), fused.predict(Xv, 5))
    # fused scores are probabilities, best first
    _, scores = fused.predict_topk(Xv, 5)
    assert (scores >= 0).all() and (scores <= 1).all() and (np.diff(scores, axis=1) <= 0).all()
    # more neighbours than training samples: all of them
    assert Classifier(**SMALL, neighbours=5000).fit(X, Y).neighbours_.k == 700
    # the paper's recipe is decoded by nearest label vectors: no votes
    assert Classifier(**SMALL, recipe="paper").fit(X, Y).neighbours_ is None


@pytest.mark.parametrize("kwargs, error", [
    ({"neighbours": -1}, ValueError), ({"neighbours": 2.5}, TypeError),
    ({"neighbour_weight": 1.5}, ValueError), ({"neighbour_weight": "half"}, TypeError),
    ({"schedule": "linear"}, ValueError), ({"sampled_labels": -1}, ValueError),
    ({"sampled_labels": 1.5}, TypeError),
    ({"sampled_labels": 8, "recipe": "hybrid"}, ValueError)])
def test_neighbour_and_schedule_settings_are_checked(data, kwargs, error):
    X, Y, _, _ = data
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        Classifier(**SMALL, **kwargs).fit(X, Y)


def test_schedule_defaults_to_the_recipe(data, monkeypatch):
    import labelemb.classifier as C

    X, Y, _, _ = data
    seen = []

    def spy(*args, **kwargs):
        seen.append((kwargs["lr"], kwargs["schedule"]))
        return real(*args, **kwargs)

    real = C.torch_fit
    monkeypatch.setattr(C, "torch_fit", spy)
    Classifier(**SMALL, recipe="lowrank-softmax").fit(X, Y)
    Classifier(**SMALL, recipe="lowrank-softmax", schedule="constant").fit(X, Y)
    assert seen == [(1e-2, "cosine"), (1e-2, "constant")]
    # no lr: the recipe's rate and schedule for the input kind (the backbone's first layer)
    seen.clear()
    free = {k: v for k, v in SMALL.items() if k != "lr"}
    Classifier(**free, recipe="hybrid").fit(np.asarray(X.todense()) if sp.issparse(X) else X, Y)
    Classifier(**free, recipe="hybrid").fit(sp.csr_matrix(X), Y)
    Classifier(**free, recipe="hybrid", lr=3e-3, schedule="constant").fit(sp.csr_matrix(X), Y)
    Classifier(**free, recipe="lowrank-softmax").fit(sp.csr_matrix(X), Y)
    assert seen == [(1e-3, "constant"), (1e-2, "cosine"), (3e-3, "constant"),
                    (2e-3, "cosine")]


def test_sampled_labels_default_by_label_count(data, monkeypatch):
    """None: 4,096 labels a step for lowrank-softmax from WIDE_LABEL_SET labels on (here
    lowered to 10), every label below and for other recipes; 0: every label."""
    import labelemb._recipes as recipes
    import labelemb.classifier as C

    X, Y, Xv, Yv = data
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["sampled_labels"])
        return real(*args, **kwargs)

    real = C.torch_fit
    monkeypatch.setattr(C, "torch_fit", spy)
    lowrank = dict(SMALL, recipe="lowrank-softmax")
    Classifier(**lowrank).fit(X, Y)                              # 24 labels: every label
    monkeypatch.setattr(recipes, "WIDE_LABEL_SET", 10)
    clf = Classifier(**lowrank).fit(X, Y)                        # "from 10 labels on"
    Classifier(**lowrank, sampled_labels=0).fit(X, Y)
    Classifier(**lowrank, sampled_labels=12).fit(X, Y)
    Classifier(**dict(SMALL, recipe="hybrid")).fit(X, Y)
    assert seen == [None, 4096, None, 12, None]
    assert clf.model_[1].sample is None and clf.score(Xv, Yv)["precision@1"] > 0.3


# ---------------------------------------------------------------- files
def test_save_load_round_trip(fitted, data, tmp_path):
    _, _, Xv, Yv = data
    path = tmp_path / "model.npz"
    fitted.save(path)
    back = Classifier.load(path)
    a, b = fitted.predict_topk(Xv, 7), back.predict_topk(Xv, 7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert back.get_params() == {**fitted.get_params(), "hidden": (32,)}
    assert back.best_epoch_ == fitted.best_epoch_ and len(back.history_) == 3
    np.testing.assert_array_equal(back.classes_, fitted.classes_)
    assert back.score(Xv, Yv) == fitted.score(Xv, Yv)
    np.testing.assert_array_equal(back.label_embedding_.vectors,
                                  fitted.label_embedding_.vectors)


def test_names_and_custom_backbone_round_trip(data, tmp_path):
    X, Y, Xv, _ = data

    def backbone(n_features):
        return torch.nn.Sequential(torch.nn.Linear(n_features, 20), torch.nn.Tanh())

    clf = Classifier(**SMALL, backbone=backbone, recipe="lowrank").fit(X, _names(Y))
    path = tmp_path / "custom.npz"
    clf.save(path)
    with pytest.raises(ValueError, match="custom backbone"):
        Classifier.load(path)
    back = Classifier.load(path, backbone=lambda: backbone(16))
    assert (back.predict(Xv, 3) == clf.predict(Xv, 3)).all()
    assert back.predict(Xv, 3).dtype.kind == "U"


def test_image_arrays_with_a_custom_backbone(data, tmp_path):
    X, Y, Xv, _ = data
    images, valid = X.reshape(-1, 1, 4, 4), Xv.reshape(-1, 1, 4, 4)

    def backbone():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 12),
                                   torch.nn.ReLU())

    clf = Classifier(**SMALL, backbone=backbone()).fit(images, Y)
    want_i, _ = predict(clf.model_, valid, k=3, amp=False, neighbours=clf.neighbours_)
    np.testing.assert_array_equal(clf.predict(valid, 3), want_i)
    with pytest.raises(ValueError, match=r"shape \(1, 2, 8\).*\(1, 4, 4\)"):
        clf.predict(valid.reshape(-1, 1, 2, 8))
    with pytest.raises(ValueError, match="2-D"):
        Classifier(**SMALL).fit(images, Y)  # the default MLP takes feature rows
    clf.save(tmp_path / "cnn.npz")
    back = Classifier.load(tmp_path / "cnn.npz", backbone=backbone)
    np.testing.assert_array_equal(back.predict(valid, 3), want_i)


def test_module_backbone_is_not_trained_in_place(data):
    X, Y, _, _ = data
    net = torch.nn.Sequential(torch.nn.Linear(16, 12), torch.nn.ReLU())
    before = net[0].weight.detach().clone()
    clf = Classifier(**SMALL, backbone=net).fit(X, Y)
    assert torch.equal(net[0].weight, before)
    assert clf.model_[0] is not net


def test_corrupt_file_is_named(fitted, tmp_path):
    path = tmp_path / "broken.npz"
    fitted.save(path)
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(ValueError, match="broken.npz"):
        Classifier.load(path)


def test_text_model_round_trip(tmp_path):
    words = ["red", "green", "blue", "car", "tree", "sky", "road", "leaf"]
    rng = np.random.default_rng(0)
    texts, tags = [], []
    for _ in range(300):
        picked = rng.choice(8, 3, replace=False)
        texts.append(" ".join(words[i] for i in picked) + " the")
        tags.append([f"tag_{words[i]}" for i in picked[:2]])
    with warnings.catch_warnings():  # 8 labels: a few get no PMI dimension (not used here)
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        clf = Classifier(**dict(SMALL, epochs=20), text=True).fit(texts, tags)
    assert clf.n_features_in_ == 9
    pred = clf.predict(["a red car", "leaf on the tree"], k=2)
    assert set(pred[0]) == {"tag_red", "tag_car"}
    clf.save(tmp_path / "text.npz")
    back = Classifier.load(tmp_path / "text.npz")
    assert (back.predict(texts, 2) == clf.predict(texts, 2)).all()
    with pytest.raises(TypeError, match="text"):
        clf.predict(np.zeros((2, 9), np.float32))


# ---------------------------------------------------------------- bad input
def test_unfitted():
    with pytest.raises(ValueError, match="not fitted"):
        Classifier().predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="not fitted"):
        Classifier().save("never.npz")


def test_bad_inputs(fitted, data):
    X, Y, Xv, Yv = data
    with pytest.raises(ValueError, match="900|700|rows|samples"):
        Classifier(**SMALL).fit(X, Y[:500])
    with pytest.raises(ValueError, match="X has 15 features, but Classifier is expecting 16"):
        fitted.predict(Xv[:, :15])
    with pytest.raises(ValueError, match="k must be in \\[1, 24\\]"):
        fitted.predict(Xv, k=0)
    with pytest.raises(ValueError, match="k must be in \\[1, 24\\]"):
        fitted.predict(Xv, k=25)
    with pytest.raises(TypeError, match="k must be an int"):
        fitted.predict(Xv, k=2.0)
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(np.full((2, 16), np.nan, np.float32))
    with pytest.raises(ValueError, match="2-D"):
        fitted.predict(Xv[0])
    with pytest.raises(TypeError, match="numeric"):
        fitted.predict(np.array([["a"] * 16]))
    with pytest.raises(ValueError, match="X_valid and Y_valid"):
        Classifier(**SMALL).fit(X, Y, X_valid=Xv)
    with pytest.raises(ValueError, match="X_valid has 15 features, but"):
        Classifier(**SMALL).fit(X, Y, X_valid=Xv[:, :15], Y_valid=Yv)
    with pytest.raises(ValueError, match="at least 2"):
        Classifier(**SMALL).fit(X, [[0]] * len(X))
    with pytest.raises(ValueError, match="hidden=\\(\\) with sparse inputs"):
        Classifier(**dict(SMALL, hidden=())).fit(sp.csr_matrix(X), Y)


def test_unknown_label_names_at_score(data):
    X, Y, Xv, Yv = data
    clf = Classifier(**SMALL).fit(X, _names(Y))
    names = _names(Yv)
    names[3] = names[3] + ["no-such-label"]
    with pytest.raises(ValueError, match="no-such-label"):
        clf.score(Xv, names)
    with pytest.raises(ValueError, match="200|199|rows|samples"):
        clf.score(Xv, _names(Yv)[:199])


@pytest.mark.parametrize("params, error, match", [
    ({"recipe": "nope"}, ValueError, "recipe"),
    ({"dim": 0}, ValueError, "dim"),
    ({"hidden": "512"}, TypeError, "hidden"),
    ({"hidden": (0,)}, ValueError, "hidden"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"batch_size": 1.5}, TypeError, "batch_size"),
    ({"patience": 0}, ValueError, "patience"),
    ({"device": "tpu"}, ValueError, "device"),
    ({"num_threads": -1}, ValueError, "num_threads"),
    ({"backbone": 3}, TypeError, "backbone"),
    ({"text": "yes"}, TypeError, "text"),
])
def test_bad_settings_fail_before_training(data, params, error, match):
    X, Y, _, _ = data
    with pytest.raises(error, match=match):
        Classifier(**{**SMALL, **params}).fit(X, Y)


# ---------------------------------------------------------------- scikit-learn
def test_params_follow_scikit_learn():
    clf = Classifier(dim=32, hidden=(64, 32))
    p = clf.get_params()
    assert p["dim"] == 32 and p["hidden"] == (64, 32) and p["recipe"] is None
    assert clf.set_params(epochs=3, lr=0.1) is clf and clf.epochs == 3
    with pytest.raises(ValueError, match="invalid parameter 'epoch'"):
        clf.set_params(epoch=3)
    assert repr(clf) == "Classifier(dim=32, epochs=3, hidden=(64, 32), lr=0.1)"


def test_clone_and_pipeline_after_tfidf():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    assert sklearn.__version__
    clf = Classifier(**SMALL)
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == clf.get_params()
    texts = ["red apple fruit", "green apple fruit", "red car road", "blue car road"] * 40
    tags = [["fruit", "red"], ["fruit", "green"], ["vehicle", "red"], ["vehicle", "blue"]] * 40
    pipe = make_pipeline(TfidfVectorizer(), Classifier(**dict(SMALL, epochs=30)))
    pipe.fit(texts, tags)
    pred = pipe.predict(["a green apple", "a blue car"], k=2)
    assert [set(row) for row in pred] == [{"fruit", "green"}, {"vehicle", "blue"}]


# The checks of scikit-learn's suite that do not apply to a multi-label estimator whose
# predict returns the k best labels of each sample, and why; every other check runs.
EXPECTED_FAILED = {
    "check_estimator_sparse_array": "predict returns the top-k labels, shape (n, k), not one "
                                    "label per sample (sparse X itself is accepted)",
    "check_estimator_sparse_matrix": "as check_estimator_sparse_array",
    "check_pipeline_consistency": "score returns the metrics report (a dict); "
                                  "score(..., metric='map@100') returns one float",
    "check_n_features_in_after_fitting": "score's target argument is Y (label sets), not y",
    "check_estimators_nan_inf": "the check's y is float; labels are integer ids or names",
    "check_dtype_object": "y of arbitrary objects is refused by a TypeError naming Y, without "
                          "the words 'Unknown label type'",
    "check_fit2d_1sample": "one sample holds no label co-occurrence: the error names the empty "
                           "PMI matrix, not the sample count",
}


def test_check_estimator_subset():
    pytest.importorskip("sklearn")
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():  # 2-3 labels: the embedding keeps < dim dimensions
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        results = check_estimator(Classifier(**dict(SMALL, epochs=1, hidden=(8,))),
                                  expected_failed_checks=EXPECTED_FAILED, on_fail=None,
                                  on_skip=None)
    status = {r["check_name"]: r["status"] for r in results}
    failed = {name for name, st in status.items() if st == "failed"}
    assert not failed, failed
    passed = {name for name, st in status.items() if st == "passed"}
    assert len(passed) >= 30, sorted(passed)
    for name in ("check_estimators_pickle", "check_fit_idempotent", "check_dict_unchanged",
                 "check_methods_subset_invariance", "check_methods_sample_order_invariance",
                 "check_estimators_unfitted", "check_fit2d_predict1d", "check_set_params",
                 "check_estimators_empty_data_messages", "check_requires_y_none",
                 "check_readonly_memmap_input", "check_get_params_invariance"):
        assert status.get(name) == "passed", (name, status.get(name))


# ---------------------------------------------------------------- command line
CLI_SMALL = ["--dim", "8", "--hidden", "32", "--epochs", "2", "--lr", "0.01",
             "--batch-size", "64", "--no-progress", "-q"]


def test_cli_xc_fit_model_and_predict(data, tmp_path, capsys):
    from labelemb.cli import main
    from labelemb.formats import write_xc

    X, Y, Xv, Yv = data
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    write_xc(train, sp.csr_matrix(X), Y)
    write_xc(test, sp.csr_matrix(Xv), Yv)
    model = tmp_path / "model.npz"
    capsys.readouterr()
    assert main(["fit-model", str(train), "-o", str(model),
                 *[a for a in CLI_SMALL if a != "--no-progress"]]) == 0
    assert capsys.readouterr() == ("", "")  # -q: no progress bars either
    clf = Classifier.load(model)
    assert clf.n_features_in_ == 16 and len(clf.classes_) == 24
    assert len(clf.history_) == 2 and "map@24" in clf.history_.epochs[0]  # 10% held out
    assert clf.neighbours_.k == 50 and clf.neighbours_.keys.shape[0] == 630  # the default
    alone = tmp_path / "alone.npz"
    assert main(["fit-model", str(train), "-o", str(alone), "--neighbours", "0",
                 "--schedule", "constant", *CLI_SMALL]) == 0
    back = Classifier.load(alone)
    assert back.neighbours_ is None and back.get_params()["schedule"] == "constant"
    want_i, want_s = clf.predict_topk(Xv, 3)

    out = tmp_path / "top3.tsv"
    assert main(["predict", str(model), str(test), "-k", "3", "-o", str(out),
                 "--batch-size", "64", "--no-progress"]) == 0
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows == [[str(j) for j in r] for r in want_i.tolist()]

    xc = tmp_path / "scores.txt"
    assert main(["predict", str(model), str(test), "-k", "3", "-o", str(xc), "--format",
                 "xc", "--no-progress"]) == 0
    lines = xc.read_text().splitlines()
    assert lines[0] == "200 24"
    pairs = [[tok.split(":") for tok in line.split()] for line in lines[1:]]
    np.testing.assert_array_equal([[int(j) for j, _ in p] for p in pairs], want_i)
    np.testing.assert_allclose([[float(s) for _, s in p] for p in pairs], want_s, rtol=1e-5)

    capsys.readouterr()
    assert main(["predict", str(model), str(test), "-k", "25", "--no-progress"]) == 2
    assert "-k must be <= 24" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "none.npz"), str(test)]) == 2
    assert "none.npz" in capsys.readouterr().err
    model.write_bytes(model.read_bytes()[:1000])
    assert main(["predict", str(model), str(test)]) == 2
    assert "model.npz" in capsys.readouterr().err


def test_cli_text_fit_model_and_predict(tmp_path, capsys):
    from labelemb.cli import main

    words = ["red", "green", "blue", "car", "tree", "sky", "road", "leaf"]
    rng = np.random.default_rng(1)
    texts, tags = [], []
    for _ in range(300):
        picked = rng.choice(8, 3, replace=False)
        texts.append(" ".join(words[i] for i in picked))
        tags.append(",".join(f"tag_{words[i]}" for i in picked[:2]))
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "tags.txt").write_text("\n".join(tags) + "\n")
    model = tmp_path / "text.npz"
    with warnings.catch_warnings():  # 8 labels: a few get no PMI dimension (not used here)
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        assert main(["fit-model", str(tmp_path / "texts.txt"), str(tmp_path / "tags.txt"),
                     "-o", str(model), "--valid-fraction", "0", "--delimiter", ",",
                     *CLI_SMALL]) == 0
    (tmp_path / "new.txt").write_text("a red car\nleaf and tree\n")
    out = tmp_path / "out.tsv"
    assert main(["predict", str(model), str(tmp_path / "new.txt"), "-k", "2", "-o", str(out),
                 "--format", "scores", "--no-progress"]) == 0
    rows = [[tok.rsplit(":", 1)[0] for tok in line.split("\t")]
            for line in out.read_text().splitlines()]
    want = Classifier.load(model).predict(["a red car", "leaf and tree"], 2)
    assert rows == want.tolist()
    (tmp_path / "short.txt").write_text("\n".join(texts[:10]) + "\n")
    capsys.readouterr()
    assert main(["fit-model", str(tmp_path / "short.txt"), str(tmp_path / "tags.txt"),
                 "-o", str(tmp_path / "x.npz"), *CLI_SMALL]) == 2
    assert "10 lines" in capsys.readouterr().err
