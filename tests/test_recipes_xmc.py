"""The default recipe by the size of the label set and the input kind (default_recipe,
make_model, labelemb train, Classifier), the recipe names, and the default training and
decoding sparse inputs."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb import _recipes  # noqa: E402
from labelemb.metrics import precision_at_k  # noqa: E402
from labelemb.torch import (  # noqa: E402
    RECIPES,
    LogitHead,
    LowRankHead,
    default_recipe,
    fit,
    make_model,
    mlp,
    predict,
)

LARGE = _recipes.LARGE_LABEL_SET


def test_recipe_names_are_stable():
    assert tuple(RECIPES) == ("paper", "bce", "lowrank", "softmax", "lowrank-softmax",
                              "hybrid", "lowrank-hybrid")
    paper = RECIPES["paper"]  # the paper's recipe stays reproducible by name
    assert (paper.objective, paper.decode, paper.head) == ("cosine", "nearest", "embedding")
    large = RECIPES[_recipes.DEFAULT_RECIPE_LARGE]
    assert (large.objective, large.decode, large.head) == ("softmax", "logits", "lowrank")
    assert _recipes.DEFAULT_RECIPE == "hybrid"
    assert _recipes.DEFAULT_RECIPE_LARGE == "lowrank-softmax"


@pytest.mark.parametrize("n_labels, want", [
    (None, "hybrid"), (1, "hybrid"), (411, "hybrid"), (593, "hybrid"), (LARGE - 1, "hybrid"),
    (LARGE, "lowrank-softmax"), (4934, "lowrank-softmax"), (np.int64(5855), "lowrank-softmax"),
    (10**6, "lowrank-softmax")])
def test_default_recipe_by_label_count(n_labels, want):
    assert default_recipe(n_labels) == want
    assert default_recipe(n_labels, sparse=False) == want
    # by the label count alone; sparse rows decide only while the count is unknown
    assert default_recipe(n_labels, True) == (want if n_labels is not None
                                              else "lowrank-softmax")
    assert default_recipe is _recipes.default_recipe


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-5, ValueError), (2.0, TypeError),
                                        ("5000", TypeError), (True, TypeError)])
def test_default_recipe_bad_arguments(bad, error):
    with pytest.raises(error, match="n_labels"):
        default_recipe(bad)
    with pytest.raises(error, match="n_labels"):
        default_recipe(bad, sparse=True)


@pytest.mark.parametrize("bad", [1, "yes", None, 0.0])
def test_default_recipe_bad_sparse(bad):
    with pytest.raises(TypeError, match="sparse must be True or False"):
        default_recipe(100, sparse=bad)


def _vectors(n_labels, d=4, seed=0):
    v = np.random.default_rng(seed).normal(size=(n_labels, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_make_model_default_follows_the_label_count():
    small = make_model(mlp(5, [8]), 8, n_labels=LARGE - 1)
    assert isinstance(small[1], LogitHead) and small[1].recipe == "hybrid"
    small = make_model(mlp(5, [8]), 8, embedding=_vectors(LARGE - 1))
    assert isinstance(small[1], LogitHead) and small[1].recipe == "hybrid"
    large = make_model(mlp(5, [8]), 8, embedding=_vectors(LARGE))
    assert isinstance(large[1], LowRankHead) and large[1].recipe == "lowrank-softmax"
    assert large(torch.zeros(3, 5)).shape == (3, LARGE)
    # n_labels, when given, is the label count the choice reads
    large = make_model(mlp(5, [8]), 8, embedding=_vectors(LARGE), n_labels=LARGE)
    assert large[1].recipe == "lowrank-softmax"
    # a sparse first layer (TF-IDF rows): the same choice by label count
    sparse = make_model(mlp(5, [8], sparse=True), 8, embedding=_vectors(40))
    assert isinstance(sparse[1], LogitHead) and sparse[1].recipe == "hybrid"
    sparse = make_model(mlp(5, [8], sparse=True), 8, embedding=_vectors(LARGE))
    assert isinstance(sparse[1], LowRankHead) and sparse[1].recipe == "lowrank-softmax"
    # a named recipe is never replaced
    named = make_model(mlp(5, [8]), 8, "bce", embedding=_vectors(LARGE))
    assert isinstance(named[1], LogitHead) and named[1].recipe == "bce"


def test_make_model_default_bad_arguments():
    with pytest.raises(ValueError, match="n_labels= or embedding="):
        make_model(mlp(5, [8]), 8)
    with pytest.raises(ValueError, match="'lowrank-softmax', needs embedding="):
        make_model(mlp(5, [8]), 8, n_labels=LARGE)
    with pytest.raises(ValueError, match=f"{LARGE} labels, 'lowrank-softmax', needs "
                                         "embedding="):
        make_model(mlp(5, [8], sparse=True), 8, n_labels=LARGE)
    with pytest.raises(ValueError, match="n_labels"):
        make_model(mlp(5, [8]), 8, n_labels=0)
    with pytest.raises(TypeError, match="n_labels"):
        make_model(mlp(5, [8]), 8, n_labels=2.5)


@pytest.fixture(scope="module")
def large_sparse():
    """A topic-structured set with LARGE labels and sparse non-negative features."""
    d = labelemb.make_topic_labels(3000, LARGE, labels_per_sample=4, n_features=64,
                                   feature_noise=0.5, seed=1)
    X = sp.csr_matrix(np.maximum(d.features, 0.0).astype(np.float32))
    Y = d.labels.tocsr()
    return X[:2400], Y[:2400], X[2400:], Y[2400:]


def test_large_default_trains_and_decodes_sparse_inputs(large_sparse):
    X, Y, Xt, Yt = large_sparse
    with warnings.catch_warnings():  # rare labels absent from these rows: zero vectors
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(Y, dim=16, n_labels=LARGE, seed=0)
    torch.manual_seed(0)
    model = make_model(mlp(X.shape[1], [64], sparse=True), 64, embedding=emb)
    head = model[1]
    assert isinstance(head, LowRankHead) and head.recipe == "lowrank-softmax"
    start = head.label_vectors.detach().clone()
    h = fit(model, (X, Y), emb, valid=(Xt, Yt), epochs=5, lr=3e-3, batch_size=128,
            device="cpu", progress=False)
    assert h.recipe == "lowrank-softmax"
    assert h.epochs[-1]["loss"] < h.epochs[0]["loss"]
    assert not torch.equal(head.label_vectors.detach(), start)  # the vectors are learned
    idx, scores = predict(model, Xt, emb, k=5, device="cpu")
    assert idx.shape == (Xt.shape[0], 5) and np.all(np.diff(scores, axis=1) <= 0)
    # it must rank far better than the most frequent labels
    counts = np.asarray(Y.sum(axis=0)).ravel()
    popular = np.tile(np.argsort(-counts, kind="stable")[:5], (Xt.shape[0], 1))
    p5, p5_popular = precision_at_k(idx, Yt, 5), precision_at_k(popular, Yt, 5)
    assert p5 > 2 * p5_popular and p5 > 0.2, (p5, p5_popular)


@pytest.fixture(scope="module")
def every_label():
    """600 rows of 20 random labels, every one of LARGE labels on 6 rows; random sparse
    rows."""
    n, k = 600, 20
    rng = np.random.default_rng(0)
    cols = np.sort(np.concatenate([rng.permutation(LARGE) for _ in range(n * k // LARGE)])
                   .reshape(n, k), axis=1)
    Y = sp.csr_matrix((np.ones(k * n, np.float32), cols.ravel(), np.arange(0, k * n + 1, k)),
                      shape=(n, LARGE))
    X = sp.random(n, 40, density=0.2, format="csr", dtype=np.float32, random_state=rng)
    return X, Y


@pytest.fixture(scope="module")
def large_files(tmp_path_factory, every_label):
    X, Y = every_label
    d = tmp_path_factory.mktemp("large")
    sp.save_npz(d / "X.npz", X)
    np.save(d / "X.npy", X.toarray())
    sp.save_npz(d / "Y.npz", Y)
    sp.save_npz(d / "Y_small.npz", Y[:, :50])
    return d


@pytest.mark.parametrize("features, labels, want", [
    ("X.npz", "Y.npz", "lowrank-softmax"), ("X.npy", "Y.npz", "lowrank-softmax"),
    ("X.npz", "Y_small.npz", "hybrid"), ("X.npy", "Y_small.npz", "hybrid")])
def test_cli_train_default_follows_the_label_count(large_files, tmp_path, capsys, features,
                                                    labels, want):
    from labelemb.cli import main

    with warnings.catch_warnings():  # random label sets: a few labels get zero vectors
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        code = main(["train", str(large_files / features), str(large_files / labels), "-o",
                     str(tmp_path / "m.pt"), "--epochs", "1", "--dim", "8", "--hidden", "16",
                     "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"trained {want} model" in out


def test_classifier_default_follows_the_label_count(every_label):
    from labelemb import Classifier
    from labelemb.torch import find_head

    X, Y = every_label

    def fit(X, Y, **kw):
        with warnings.catch_warnings():  # random label sets: a few labels get zero vectors
            warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
            return Classifier(dim=8, hidden=(16,), epochs=1, progress=False, **kw).fit(X, Y)

    assert find_head(fit(X.toarray(), Y).model_).recipe == "lowrank-softmax"
    assert find_head(fit(X, Y).model_).recipe == "lowrank-softmax"
    assert find_head(fit(X, Y[:, :50]).model_).recipe == "hybrid"
    assert find_head(fit(X.toarray(), Y[:, :50]).model_).recipe == "hybrid"
    assert find_head(fit(X, Y, recipe="bce").model_).recipe == "bce"  # a named one is kept


def test_recipe_settings_by_input_kind():
    for r in RECIPES.values():
        assert r.settings() == r.settings(sparse=False) == (r.lr, r.schedule)
    # the full-rank heads over sparse rows: their own measured rate and schedule
    assert RECIPES["hybrid"].settings(sparse=True) == (1e-2, "cosine")
    assert RECIPES["bce"].settings(True) == (1e-2, "cosine")
    assert RECIPES["hybrid"].settings() == (1e-3, "constant")
    # the others: the same pair for both kinds
    assert RECIPES["lowrank-softmax"].settings(True) == (2e-3, "cosine") == \
        RECIPES["lowrank-softmax"].settings()
    with pytest.raises(TypeError, match="sparse must be True or False"):
        RECIPES["hybrid"].settings(sparse="yes")


@pytest.mark.parametrize("sparse, decays", [(True, True), (False, False)])
def test_fit_takes_the_schedule_for_the_input_kind(sparse, decays):
    d = labelemb.make_topic_labels(400, 30, n_features=12, seed=0)
    X = np.maximum(d.features, 0.0).astype(np.float32)
    X = sp.csr_matrix(X) if sparse else X
    torch.manual_seed(0)
    model = make_model(mlp(12, [16], sparse=sparse), 16, n_labels=30)
    assert model[1].recipe == "hybrid"
    h = fit(model, (X, d.labels), epochs=2, lr=1e-2, batch_size=64, device="cpu",
            progress=False)
    # cosine decay over sparse rows: the second epoch ends near 0; constant: 1e-2
    last = h.epochs[-1]["lr"]
    assert (last < 1e-3) if decays else last == pytest.approx(1e-2), last


def test_default_dim_by_label_count():
    from labelemb._recipes import WIDE_LABEL_SET, default_dim

    assert WIDE_LABEL_SET == 10_000
    assert [default_dim(n) for n in (1, 593, 5855, WIDE_LABEL_SET - 1)] == [256] * 4
    assert [default_dim(n) for n in (WIDE_LABEL_SET, 15_218, np.int64(34_536))] == [512] * 3
    for bad, error in ((0, ValueError), (2.5, TypeError), (None, TypeError)):
        with pytest.raises(error, match="n_labels"):
            default_dim(bad)


def test_default_sampled_labels_by_label_count_and_recipe():
    from labelemb._recipes import SAMPLED_LABELS, WIDE_LABEL_SET, default_sampled_labels

    assert SAMPLED_LABELS == 4096
    for n in (1, 5855, WIDE_LABEL_SET - 1):
        assert default_sampled_labels(n, "lowrank-softmax") is None
    for n in (WIDE_LABEL_SET, np.int64(34_536), 10**6):
        assert default_sampled_labels(n, "lowrank-softmax") == 4096
    for recipe in ("bce", "hybrid", "lowrank", "lowrank-hybrid", "softmax", "paper"):
        assert default_sampled_labels(10**6, recipe) is None  # they score every label
    for bad, error in ((0, ValueError), (2.5, TypeError), (None, TypeError)):
        with pytest.raises(error, match="n_labels"):
            default_sampled_labels(bad, "lowrank-softmax")


@pytest.mark.parametrize("n_labels, dim, want", [
    (40, None, 39), (3000, None, 256), (LARGE * 5, None, 512), (LARGE * 5, 64, 64)])
def test_classifier_dim_follows_the_label_count(monkeypatch, n_labels, dim, want):
    import labelemb.classifier as C

    seen = []

    class Stop(Exception):
        pass

    def spy(Y, dim, **kwargs):
        seen.append(dim)
        raise Stop

    monkeypatch.setattr(C, "fit_embeddings", spy)
    rows = np.arange(60)
    Y = sp.csr_matrix((np.ones(120, np.float32), np.r_[rows % n_labels, (rows + 1) % n_labels],
                       np.r_[rows * 2, 120]), shape=(60, n_labels))
    with pytest.raises(Stop):
        labelemb.Classifier(dim=dim, hidden=(8,), progress=False).fit(
            np.ones((60, 3), np.float32), Y)
    assert seen == [want]


def test_cli_train_dim_follows_the_label_count(large_files, tmp_path, capsys):
    from labelemb.cli import main

    with warnings.catch_warnings():  # random label sets: a few labels get zero vectors
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        code = main(["train", str(large_files / "X.npz"), str(large_files / "Y_small.npz"),
                     "-o", str(tmp_path / "m.pt"), "--objective", "lowrank-softmax",
                     "--epochs", "1", "--hidden", "16", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "fitting a 49-dimensional label embedding" in out  # 256, clipped to L - 1
    code = main(["train", str(large_files / "X.npz"), str(large_files / "Y_small.npz"),
                 "-o", str(tmp_path / "m.pt"), "--dim", "0"])
    assert code == 2 and "--dim" in capsys.readouterr().err
