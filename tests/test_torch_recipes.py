"""One table of recipes: its heads, losses and names (API, CLI, demo), and the data sources
behind fit / predict / evaluate."""

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb import _recipes  # noqa: E402
from labelemb.torch import (  # noqa: E402
    RECIPES,
    EmbeddingTargets,
    fit,
    make_model,
    mlp,
)
from labelemb.torch.data import SparseLabels  # noqa: E402
from labelemb.torch.distributed import DistContext  # noqa: E402
from labelemb.torch.losses import (  # noqa: E402
    CosineProximityLoss,
    sparse_bce_with_logits,
    sparse_softmax_cross_entropy,
)
from labelemb.torch.recipes import get_recipe, head_class, make_loss, resolve_recipe  # noqa: E402
from labelemb.torch.sources import ArraySource, DatasetSource, as_source  # noqa: E402

L, F, D = 12, 6, 4


@pytest.fixture(scope="module")
def emb():
    return labelemb.fit_embeddings(labelemb.make_topic_labels(300, L, seed=3).labels, dim=D)


def test_one_table_for_api_cli_and_demo():
    from labelemb import cli
    from labelemb import demo_images as demo

    assert tuple(RECIPES) == _recipes.recipe_names()
    assert RECIPES is _recipes.RECIPES
    train = next(a for a in cli.build_parser()._subparsers._group_actions[0].choices.items()
                 if a[0] == "train")[1]
    objective = next(a for a in train._actions if "--objective" in a.option_strings)
    assert tuple(objective.choices) == tuple(RECIPES) + ("embedding",)
    assert objective.default is None  # chosen by the label count (default_recipe)
    assert set(demo.RECIPE_TITLES) == set(RECIPES) and set(demo.DEFAULT_LR) == set(RECIPES)
    assert demo.DEFAULT_LR["paper"] == RECIPES["paper"].lr


def test_cli_accepts_paper(tmp_path):
    from labelemb import cli

    args = cli.build_parser().parse_args(["train", "X.npy", "Y.txt", "-o", "m.pt",
                                          "--objective", "paper"])
    assert args.objective == "paper"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "X.npy", "Y.txt", "-o", "m.pt",
                                       "--objective", "cosine"])


@pytest.mark.parametrize("name", list(RECIPES))
def test_make_model_builds_the_recipe_head_and_fit_infers_it(emb, name):
    model = make_model(mlp(F, [8]), 8, name, embedding=emb)
    assert type(model[1]) is head_class(RECIPES[name])
    assert model[1].recipe == name
    assert resolve_recipe(None, model[1], emb) is RECIPES[name]


def test_former_name_warns_and_means_paper(emb):
    with pytest.warns(DeprecationWarning, match="'embedding' is deprecated.*'paper'"):
        model = make_model(mlp(F, [8]), 8, "embedding", embedding=emb)
    assert model[1].recipe == "paper"
    with pytest.warns(DeprecationWarning, match="recipe 'embedding' is deprecated"):
        assert get_recipe("embedding") is RECIPES["paper"]
    data = labelemb.make_topic_labels(64, L, n_features=F, seed=1)
    with pytest.warns(DeprecationWarning):
        h = fit(model, (data.features, data.labels), emb, epochs=1, lr=1e-2, batch_size=32,
                progress=False, recipe="embedding")
    assert h.recipe == "paper"
    with pytest.raises(ValueError, match="recipe must be one of 'paper', 'bce'"):
        get_recipe("cosine")
    with pytest.raises(TypeError, match="recipe must be a str or a Recipe"):
        get_recipe(3)


def test_cli_former_objective_says_so(tmp_path, capsys):
    from labelemb.cli import main

    d = labelemb.make_topic_labels(80, L, n_features=F, seed=2)
    np.save(tmp_path / "X.npy", d.features)
    sp.save_npz(tmp_path / "Y.npz", d.labels)
    code = main(["train", str(tmp_path / "X.npy"), str(tmp_path / "Y.npz"), "-o",
                 str(tmp_path / "m.pt"), "--objective", "embedding", "--epochs", "1",
                 "--dim", "3", "--hidden", "4", "--valid-fraction", "0", "--no-progress",
                 "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "--objective 'embedding' is deprecated" in err and "'paper'" in err


def _batch():
    sets = [[0, 3], [5], [], [1, 2, 7]]
    rows = [i for i, s in enumerate(sets) for _ in s]
    csr = sp.csr_matrix((np.ones(len(rows)), (rows, [x for s in sets for x in s])),
                        shape=(len(sets), L))
    return sets, SparseLabels.from_scipy(csr)


@pytest.mark.parametrize("name", list(RECIPES))
def test_make_loss_is_the_recipe_objective(emb, name):
    sets, y = _batch()
    recipe = RECIPES[name]
    torch.manual_seed(0)
    if recipe.objective == "cosine":
        targets = EmbeddingTargets(emb)
        out = torch.randn(len(sets), D)
        loss, rows = make_loss(recipe, targets)(out, y)
        keep = torch.tensor([len(s) > 0 for s in sets])
        t = targets(y)
        want = CosineProximityLoss(reduction="none")(out, t)[keep].mean()
        assert int(rows) == 3
    else:
        out = torch.randn(len(sets), L)
        loss, rows = make_loss(recipe)(out, y)
        bce, soft = sparse_bce_with_logits(out, y), sparse_softmax_cross_entropy(out, y)
        want = {"bce": bce, "softmax": soft, "hybrid": bce + soft}[recipe.objective]
        assert int(rows) == (3 if recipe.objective == "softmax" else 4)
    torch.testing.assert_close(loss, want)


def test_cosine_loss_needs_targets():
    with pytest.raises(ValueError, match="targets"):
        make_loss(RECIPES["paper"])


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, X, sets):
        self.X, self.sets = torch.as_tensor(X), sets

    def __len__(self):
        return len(self.sets)

    def __getitem__(self, i):
        return self.X[i], self.sets[i]


class _Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter([])


def test_as_source_picks_the_class_by_input(emb):
    d = labelemb.make_topic_labels(50, L, n_features=F, seed=4)
    sets = [d.labels.indices[a:b].tolist() for a, b in zip(d.labels.indptr[:-1],
                                                            d.labels.indptr[1:])]
    arrays, _ = as_source((d.features, d.labels), "train")
    dataset, _ = as_source(_Pairs(d.features, sets), "train", n_labels=L)
    assert isinstance(arrays, ArraySource) and isinstance(dataset, DatasetSource)
    assert arrays.n_labels == L and dataset.n_labels is None
    for source in (arrays, dataset):
        assert len(source) == 50 and source.steps(16, DistContext()) == 4
        counts, n = source.label_counts()
        np.testing.assert_array_equal(counts, np.asarray(d.labels.sum(axis=0)).ravel())
        assert n == 50
        assert (source.truth() != d.labels).nnz == 0
        seen = []
        for x, y in source.train_batches(0, 16, 0, DistContext(), torch.device("cpu")):
            assert x.shape[1] == F and len(y) == len(x)
            seen.append(x)
        # one epoch visits every sample once
        got = torch.cat(seen).numpy()
        order = np.lexsort(got.T)
        np.testing.assert_array_equal(got[order], d.features[np.lexsort(d.features.T)])
        x0, y0 = next(iter(source.eval_batches(50, DistContext(), torch.device("cpu"))))
        np.testing.assert_array_equal(x0.numpy(), d.features)
    with pytest.raises(TypeError, match="IterableDataset"):
        as_source(_Stream(), "train")
    with pytest.raises(TypeError, match="pair"):
        as_source(d.features, "train")
    with pytest.raises(ValueError, match="NaN"):
        bad = d.features.copy()
        bad[0, 0] = np.inf
        as_source((bad, d.labels), "valid")


def test_former_name_is_listed_once():
    assert set(_recipes.ALIASES) <= set(_recipes.recipe_names(aliases=True))
    assert not set(_recipes.ALIASES) & set(RECIPES)
    assert all(a.head in _recipes.HEAD_KINDS for a in RECIPES.values())
