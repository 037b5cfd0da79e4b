"""Sparse input features: SparseLinear, SparseAdamW, the CSR checks and batches, and sparse
inputs through fit / predict / evaluate and the CLI."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from labelemb.torch.sparse import (  # noqa: E402
    SparseAdamW,
    SparseLinear,
    as_csr_inputs,
    csr_batch,
    sparse_grad_parameters,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


def random_csr(n, F, nnz_per_row, seed=0, empty_rows=()):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = 0 if i in empty_rows else nnz_per_row
        rows.append(np.sort(rng.choice(F, size=k, replace=False)))
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])]
    indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    data = rng.normal(size=len(indices)).astype(np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(n, F))


# ---------------------------------------------------------------- the layer
@pytest.mark.parametrize("sparse_grad", [False, True])
def test_sparse_linear_matches_dense_product_and_gradients(sparse_grad):
    X = random_csr(9, 300, 5, empty_rows=(3,))
    layer = SparseLinear(300, 7, sparse_grad=sparse_grad)
    dense = torch.from_numpy(X.toarray())
    ref = dense @ layer.weight.detach() + layer.bias.detach()
    out = layer(csr_batch(X))
    assert out.shape == (9, 7)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[3], layer.bias.detach())  # an empty row is the bias
    g = torch.randn(9, 7)
    (out * g).sum().backward()
    grad = layer.weight.grad
    assert grad.is_sparse == sparse_grad
    torch.testing.assert_close(grad.to_dense(), dense.t() @ g, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.bias.grad, g.sum(0), rtol=1e-5, atol=1e-5)
    if sparse_grad:  # only the batch's columns: O(nnz x out) memory, never in x out
        assert grad._nnz() <= X.nnz


def test_sparse_linear_takes_coo_csr_and_dense_alike():
    X = random_csr(6, 50, 4, seed=1)
    layer = SparseLinear(50, 3)
    csr = csr_batch(X)
    coo = torch.sparse_coo_tensor(np.vstack(X.nonzero()), X.data, X.shape,
                                  dtype=torch.float32, check_invariants=True)
    dense = torch.from_numpy(X.toarray())
    torch.testing.assert_close(layer(coo), layer(csr))
    torch.testing.assert_close(layer(dense), layer(csr), rtol=1e-5, atol=1e-6)
    # duplicate entries of a COO tensor add up, as in the dense matrix they stand for
    dup = torch.sparse_coo_tensor([[0, 0], [7, 7]], [1.0, 2.0], (1, 50), check_invariants=True)
    torch.testing.assert_close(layer(dup), 3.0 * layer.weight[7:8].detach() + layer.bias,
                               rtol=1e-6, atol=1e-6)
    # float64 values and dense rows of more dimensions
    torch.testing.assert_close(layer(dense.double()), layer(dense))
    assert layer(dense.reshape(2, 3, 50)).shape == (2, 3, 3)


def test_sparse_linear_matches_nn_linear_and_its_initialisation():
    torch.manual_seed(0)
    layer = SparseLinear(400, 64)
    bound = 1 / np.sqrt(400)
    w = layer.weight.detach()
    assert w.shape == (400, 64) and float(w.abs().max()) <= bound
    assert abs(float(w.std()) - bound / np.sqrt(3)) < 0.05 * bound  # uniform(-b, b)
    assert float(layer.bias.detach().abs().max()) <= bound
    lin = nn.Linear(400, 64)
    assert float(lin.weight.detach().abs().max()) <= bound  # the same bound as nn.Linear
    no_bias = SparseLinear(400, 2, bias=False)
    assert no_bias.bias is None
    X = random_csr(3, 400, 2)
    torch.testing.assert_close(no_bias(csr_batch(X)),
                               torch.from_numpy(X.toarray()) @ no_bias.weight.detach())


def test_sparse_linear_bad_input():
    layer = SparseLinear(20, 4)
    with pytest.raises(ValueError, match="21 columns.*in_features=20"):
        layer(csr_batch(random_csr(2, 21, 2)))
    with pytest.raises(ValueError, match="21 columns"):
        layer(torch.zeros(2, 21))
    with pytest.raises(TypeError, match="torch tensor"):
        layer(np.zeros((2, 20), np.float32))
    with pytest.raises(TypeError, match="sparse CSR or COO"):
        layer(torch.zeros(2, 20).to_sparse_csc())
    for bad in (0, -1):
        with pytest.raises(ValueError, match="in_features"):
            SparseLinear(bad, 3)
    for bad in (2.0, True):  # not an int: a TypeError, as for every argument
        with pytest.raises(TypeError, match="in_features"):
            SparseLinear(bad, 3)
    with pytest.raises(ValueError, match="out_features"):
        SparseLinear(3, 0)
    with pytest.raises(TypeError, match="sparse_grad"):
        SparseLinear(3, 3, sparse_grad="yes")


def test_sparse_grad_parameters():
    model = nn.Sequential(SparseLinear(10, 4, sparse_grad=True), nn.ReLU(),
                          SparseLinear(4, 2), nn.Linear(2, 2))
    assert sparse_grad_parameters(model) == [model[0].weight]


# ---------------------------------------------------------------- the optimizer
@pytest.mark.parametrize("decoupled", [True, False])
def test_sparse_adamw_dense_params_follow_torch(decoupled):
    torch.manual_seed(0)
    a = nn.Linear(6, 5)
    b = copy.deepcopy(a)
    ref = (torch.optim.AdamW if decoupled else torch.optim.Adam)(b.parameters(), lr=0.05,
                                                                 weight_decay=0.1)
    opt = SparseAdamW(a.parameters(), lr=0.05, weight_decay=0.1, decoupled=decoupled)
    for _ in range(6):
        x = torch.randn(8, 6)
        for model, o in ((a, opt), (b, ref)):
            o.zero_grad()
            model(x).pow(2).sum().backward()
            o.step()
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a.bias, b.bias, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("decoupled", [True, False])
def test_sparse_adamw_sparse_rows_are_lazy_adamw(decoupled):
    torch.manual_seed(0)
    layer = SparseLinear(12, 4, sparse_grad=True)
    ref = SparseLinear(12, 4)
    ref.load_state_dict(layer.state_dict())
    opt = SparseAdamW(layer.parameters(), lr=0.1, weight_decay=0.2, decoupled=decoupled)
    ref_opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)(
        ref.parameters(), lr=0.1, weight_decay=0.2)
    full = sp.csr_matrix(np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32))
    # every batch touches every column: the lazy update is AdamW's
    for _ in range(4):
        for model, o in ((layer, opt), (ref, ref_opt)):
            o.zero_grad()
            model(csr_batch(full)).pow(2).sum().backward()
            o.step()
    torch.testing.assert_close(layer.weight, ref.weight, rtol=1e-5, atol=1e-6)
    # a batch that touches columns 2 and 5 moves only those rows (and the bias)
    before = layer.weight.detach().clone()
    part = sp.csr_matrix((np.ones(2, np.float32), [2, 5], [0, 1, 2]), shape=(2, 12))
    opt.zero_grad()
    layer(csr_batch(part)).pow(2).sum().backward()
    opt.step()
    moved = (layer.weight.detach() != before).any(1).nonzero().flatten().tolist()
    assert moved == [2, 5]


def test_sparse_adamw_bad_settings():
    with pytest.raises(ValueError, match="lr > 0"):
        SparseAdamW(nn.Linear(2, 2).parameters(), lr=0)
    with pytest.raises(ValueError, match="betas"):
        SparseAdamW(nn.Linear(2, 2).parameters(), betas=(1.0, 0.9))


# ---------------------------------------------------------------- inputs
def test_as_csr_inputs_converts_once_and_leaves_the_callers_matrix():
    X = random_csr(5, 30, 4, seed=2).astype(np.float64)
    for given in (X, X.tocoo(), X.tocsc(), sp.csr_array(X), X.astype(np.int64) * 0 + X):
        got = as_csr_inputs(given, "train")
        assert isinstance(got, sp.csr_matrix) and got.dtype == np.float32
        assert got.has_sorted_indices
        np.testing.assert_allclose(got.toarray(), X.toarray(), rtol=1e-6)
    # unsorted indices: sorted in a copy, never in the caller's matrix
    unsorted = sp.csr_matrix((np.array([1, 2, 3], np.float32), np.array([4, 1, 0]),
                              np.array([0, 2, 3])), shape=(2, 5))
    got = as_csr_inputs(unsorted, "train")
    assert got.indices.tolist() == [1, 4, 0]
    assert unsorted.indices.tolist() == [4, 1, 0]
    # CSR float32 with sorted indices is used as it is
    ok = as_csr_inputs(X.astype(np.float32), "train")
    assert ok.indices.tolist() == X.indices.tolist()


def test_as_csr_inputs_bad_input_names_the_argument():
    X = random_csr(4, 10, 3).astype(np.float32)
    for bad_value in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y.data[5] = bad_value
        with pytest.raises(ValueError, match="valid inputs contain NaN or Inf.*row 1"):
            as_csr_inputs(Y, "valid")
    for bad_col in (-1, 10, 99):
        Y = X.copy()
        Y.indices[2] = bad_col
        with pytest.raises(ValueError, match=f"train inputs have column index {bad_col}, "
                                             r"outside \[0, 10\)"):
            as_csr_inputs(Y, "train")
    coo = sp.coo_matrix((np.ones(1), (np.array([0]), np.array([3]))), shape=(2, 4))
    coo.col[0] = -2
    with pytest.raises(ValueError, match="column index -2"):
        as_csr_inputs(coo, "train")
    broken = sp.csr_matrix(X)
    broken.indptr = broken.indptr[::-1].copy()
    with pytest.raises(ValueError, match="malformed CSR"):
        as_csr_inputs(broken, "train")
    with pytest.raises(TypeError, match="dtype complex"):
        as_csr_inputs(X.astype(np.complex64), "train")
    with pytest.raises(TypeError, match="scipy sparse"):
        as_csr_inputs(X.toarray(), "train")


def test_csr_batch_index_widths_and_values():
    X = random_csr(7, 70_000, 3, seed=3)
    X.indptr = X.indptr.astype(np.int64)  # scipy may mix index widths
    X.indices = X.indices.astype(np.int32)
    t = csr_batch(X)
    assert t.layout == torch.sparse_csr and t.shape == (7, 70_000)
    assert t.crow_indices().dtype == t.col_indices().dtype
    np.testing.assert_array_equal(t.col_indices().numpy(), X.indices)
    np.testing.assert_array_equal(t.values().numpy(), X.data)


@cuda
@pytest.mark.parametrize("sparse_grad", [False, True])
def test_sparse_linear_on_cuda_matches_cpu(sparse_grad):
    X = random_csr(33, 5000, 7, seed=4, empty_rows=(0,))
    cpu = SparseLinear(5000, 16, sparse_grad=sparse_grad)
    gpu = copy.deepcopy(cpu).cuda()
    for pin in (False, True):
        out = gpu(csr_batch(X, "cuda", pin=pin))
        assert out.is_cuda
        torch.testing.assert_close(out.cpu(), cpu(csr_batch(X)), rtol=1e-4, atol=1e-5)
    gpu(csr_batch(X, "cuda")).sum().backward()
    cpu(csr_batch(X)).sum().backward()
    torch.testing.assert_close(gpu.weight.grad.to_dense().cpu(), cpu.weight.grad.to_dense(),
                               rtol=1e-4, atol=1e-5)


def test_clip_grad_norm_takes_sparse_gradients():
    from labelemb.torch.sparse import clip_grad_norm_

    X = random_csr(6, 40, 3, seed=5)
    a = SparseLinear(40, 3, sparse_grad=True)
    b = SparseLinear(40, 3)
    b.load_state_dict(a.state_dict())
    for layer in (a, b):
        layer(csr_batch(X)).pow(2).sum().backward()
    total = clip_grad_norm_(a.parameters(), 0.5)
    ref = nn.utils.clip_grad_norm_(b.parameters(), 0.5)
    torch.testing.assert_close(total, ref)
    torch.testing.assert_close(a.weight.grad.to_dense(), b.weight.grad)
    torch.testing.assert_close(a.bias.grad, b.bias.grad)


# ---------------------------------------------------------------- fit / predict / evaluate
N, F, L, H = 240, 60, 12, 16


@pytest.fixture(scope="module")
def problem():
    import labelemb

    X = random_csr(N, F, 4, seed=6, empty_rows=(5, 17))
    rng = np.random.default_rng(7)
    sets = [sorted(set(rng.choice(L, size=rng.integers(1, 4), replace=False).tolist()))
            for _ in range(N)]
    Y = sp.csr_matrix((np.ones(sum(map(len, sets)), np.float32),
                       np.concatenate(sets), np.r_[0, np.cumsum([len(s) for s in sets])]),
                      shape=(N, L))
    emb = labelemb.fit_embeddings(Y, dim=6, seed=0)
    return X, Y, emb


def _pair(recipe, emb, sparse_grad=False):
    """A model whose first layer is a SparseLinear and its nn.Linear twin, same weights."""
    from labelemb.torch import make_model, mlp

    torch.manual_seed(0)
    sparse = make_model(nn.Sequential(SparseLinear(F, H, sparse_grad=sparse_grad), nn.ReLU()),
                        H, recipe, embedding=emb, n_labels=L)
    dense = make_model(mlp(F, [H]), H, recipe, embedding=emb, n_labels=L)
    with torch.no_grad():
        dense[0][0].weight.copy_(sparse[0][0].weight.t())
        dense[0][0].bias.copy_(sparse[0][0].bias)
    dense[1].load_state_dict(sparse[1].state_dict())
    return sparse, dense


@pytest.mark.parametrize("recipe", ["bce", "lowrank", "paper"])
def test_sparse_and_dense_inputs_train_alike(problem, recipe):
    from labelemb.torch import evaluate, fit, predict

    X, Y, emb = problem
    sparse, dense = _pair(recipe, emb)
    Xd = X.toarray()
    # one schedule for both: left unnamed, each would take its recipe's for its input kind
    kw = dict(epochs=3, lr=1e-2, batch_size=32, device="cpu", progress=False, seed=3,
              weight_decay=0.01, schedule="constant")
    hs = fit(sparse, (X, Y), emb if recipe == "paper" else None, valid=(X[:80], Y[:80]), **kw)
    hd = fit(dense, (Xd, Y), emb if recipe == "paper" else None, valid=(Xd[:80], Y[:80]), **kw)
    np.testing.assert_allclose(hs["loss"], hd["loss"], rtol=1e-4)
    for key in ("p@1", "p@5", "ndcg@5"):
        np.testing.assert_allclose(hs[key], hd[key], atol=1e-6)
    torch.testing.assert_close(sparse[0][0].weight.t(), dense[0][0].weight, rtol=1e-4,
                               atol=1e-5)
    i_s, s_s = predict(sparse, X, k=4)
    i_d, s_d = predict(dense, Xd, k=4)
    np.testing.assert_allclose(s_s, s_d, rtol=1e-4, atol=1e-5)
    assert (i_s == i_d).mean() > 0.99  # ties may swap
    es, ed = evaluate(sparse, (X, Y)), evaluate(dense, (Xd, Y))
    assert es == pytest.approx(ed, abs=1e-6)


def test_lazy_rows_train_as_adamw_when_every_column_is_used(problem):
    """mlp(sparse=True): row-sparse gradients and SparseAdamW; when every batch uses every
    column the lazy update is AdamW's, so sparse and dense inputs train alike."""
    from labelemb.torch import fit, make_model, mlp

    _, Y, _ = problem
    full = np.random.default_rng(8).normal(size=(N, F)).astype(np.float32)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(make_model(mlp(F, [H], sparse=True), H, "bce", n_labels=L))
    kw = dict(epochs=2, lr=1e-2, batch_size=40, device="cpu", progress=False,
              weight_decay=0.1, max_grad_norm=5.0)
    hs = fit(models[0], (sp.csr_matrix(full), Y), **kw)
    hd = fit(models[1], (full, Y), **kw)
    np.testing.assert_allclose(hs["loss"], hd["loss"], rtol=1e-4)
    torch.testing.assert_close(models[0][0][0].weight, models[1][0][0].weight, rtol=1e-4,
                               atol=1e-5)


def test_sparse_training_resumes_from_a_checkpoint(problem, tmp_path):
    from labelemb.torch import fit, make_model, mlp

    X, Y, _ = problem

    def run(resume, d, callbacks=()):
        torch.manual_seed(0)
        model = make_model(mlp(F, [H], sparse=True), H, "bce", n_labels=L)
        h = fit(model, (X, Y), epochs=3, lr=1e-2, batch_size=32, device="cpu",
                progress=False, checkpoint_dir=str(d), resume=resume, callbacks=callbacks)
        return h, model

    straight, m1 = run(False, tmp_path / "a")
    run(False, tmp_path / "b", [lambda h, m: len(h) == 2])  # stopped after epoch 2
    resumed, m2 = run(True, tmp_path / "b")
    assert len(resumed) == 3
    np.testing.assert_allclose(resumed["loss"], straight["loss"], rtol=1e-5)
    torch.testing.assert_close(m1[0][0].weight, m2[0][0].weight)


def test_sparse_inputs_bad_input(problem):
    from labelemb.torch import evaluate, fit, make_model, mlp, predict

    X, Y, _ = problem
    kw = dict(epochs=1, lr=1e-2, batch_size=32, device="cpu", progress=False)

    def model(columns=F, sparse=True):
        return make_model(mlp(columns, [H], sparse=sparse), H, "bce", n_labels=L)

    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="train inputs contain NaN or Inf"):
        fit(model(), (bad, Y), **kw)
    bad = X.copy()
    bad.indices[0] = -3
    with pytest.raises(ValueError, match="valid inputs have column index -3"):
        fit(model(), (X, Y), valid=(bad, Y), **kw)
    bad = X.copy()
    bad.indices[-1] = F
    with pytest.raises(ValueError, match=f"data inputs have column index {F}"):
        predict(model(), bad)
    with pytest.raises(ValueError, match=f"train inputs have {F} columns but the model's "
                                         f"first layer takes {F + 1}"):
        fit(model(F + 1), (X, Y), **kw)
    with pytest.raises(ValueError, match=f"data inputs have {F} columns"):
        predict(model(F + 1), X)
    with pytest.raises(ValueError, match=f"data inputs have {F} columns"):
        evaluate(model(F + 1), (X, Y))
    with pytest.raises(ValueError, match="valid inputs are dense but the train inputs are a "
                                         "scipy sparse matrix"):
        fit(model(), (X, Y), valid=(X.toarray(), Y), **kw)
    with pytest.raises(ValueError, match="valid inputs are a scipy sparse matrix but the "
                                         "train inputs are dense"):
        fit(model(), (X.toarray(), Y), valid=(X, Y), **kw)
    with pytest.raises(TypeError, match="no SparseLinear layer.*sparse=True"):
        fit(model(sparse=False), (X, Y), **kw)
    with pytest.raises(TypeError, match="no SparseLinear layer"):
        predict(model(sparse=False), X)
    with pytest.raises(ValueError, match="optimizer='sgd'.*row-sparse"):
        fit(model(), (X, Y), optimizer="sgd", **kw)
    with pytest.raises(ValueError, match="at least one hidden width"):
        mlp(F, [], sparse=True)
    with pytest.raises(TypeError, match="sparse must be True or False"):
        mlp(F, [H], sparse="yes")


def test_plain_sgd_takes_sparse_gradients_through_fit(problem):
    from labelemb.torch import fit, make_model, mlp

    X, Y, _ = problem
    torch.manual_seed(0)
    model = make_model(mlp(F, [H], sparse=True), H, "bce", n_labels=L)
    before = model[0][0].weight.detach().clone()
    h = fit(model, (X, Y), epochs=2, lr=0.1, batch_size=32, device="cpu", progress=False,
            optimizer=lambda groups, lr: torch.optim.SGD(groups, lr=lr))
    assert np.isfinite(h["loss"]).all() and h["loss"][1] < h["loss"][0]
    unused = np.setdiff1d(np.arange(F), X.indices)
    moved = (model[0][0].weight.detach() != before).any(1).numpy()
    assert not moved[unused].any() and moved[np.unique(X.indices)].all()


@cuda
def test_sparse_inputs_train_on_cuda_as_on_cpu(problem):
    from labelemb.torch import fit, predict

    X, Y, emb = problem
    cpu, _ = _pair("bce", emb)
    gpu = copy.deepcopy(cpu)
    kw = dict(epochs=2, lr=1e-2, batch_size=32, progress=False, amp=False)
    hc = fit(cpu, (X, Y), device="cpu", **kw)
    hg = fit(gpu, (X, Y), device="cuda", valid=(X, Y), **kw)
    np.testing.assert_allclose(hg["loss"], hc["loss"], rtol=1e-3)
    assert next(gpu.parameters()).is_cuda
    i_g, _ = predict(gpu, X, k=3)
    i_c, _ = predict(cpu, X, k=3)
    assert (i_g == i_c).mean() > 0.95


# ---------------------------------------------------------------- the CLI
def test_cli_trains_and_evaluates_sparse_features(problem, tmp_path, capsys):
    from labelemb.cli import main
    from labelemb.formats import write_label_list, write_xc
    from labelemb.torch._cli import load_model

    X, Y, _ = problem
    sp.save_npz(tmp_path / "X.npz", X)
    write_label_list(tmp_path / "Y.txt", Y)
    write_xc(tmp_path / "data.txt", X, Y)

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    common = ["--epochs", "2", "--hidden", "16", "--batch-size", "32", "--no-progress",
              "--objective", "bce", "--seed", "1"]
    run("train", tmp_path / "X.npz", tmp_path / "Y.txt", "-o", tmp_path / "a.pt", *common)
    run("train", tmp_path / "data.txt", tmp_path / "data.txt", "-o", tmp_path / "b.pt",
        *common)
    model, config, _, _ = load_model(str(tmp_path / "a.pt"))
    assert config["sparse"] is True and isinstance(model[0][0], SparseLinear)
    assert model[0][0].in_features == F
    # the same data from either file: the same model
    other, _, _, _ = load_model(str(tmp_path / "b.pt"))
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)
    a = run("evaluate", tmp_path / "a.pt", tmp_path / "X.npz", tmp_path / "Y.txt", "--json")
    b = run("evaluate", tmp_path / "b.pt", tmp_path / "data.txt", tmp_path / "data.txt",
            "--json")
    assert a == b and '"precision@1"' in a


def test_cli_sparse_features_bad_input(problem, tmp_path, capsys):
    from labelemb.cli import main
    from labelemb.formats import write_label_list

    X, Y, _ = problem
    bad = X.copy()
    bad.data[0] = np.inf
    sp.save_npz(tmp_path / "bad.npz", bad)
    sp.save_npz(tmp_path / "wide.npz", sp.hstack([X, X]).tocsr())
    sp.save_npz(tmp_path / "X.npz", X)
    write_label_list(tmp_path / "Y.txt", Y)
    common = ["--epochs", "1", "--hidden", "16", "--no-progress", "--objective", "bce"]
    assert main([str(a) for a in ("train", tmp_path / "bad.npz", tmp_path / "Y.txt", "-o",
                                  tmp_path / "m.pt", *common)]) == 2
    assert "NaN or Inf" in capsys.readouterr().err
    assert main([str(a) for a in ("train", tmp_path / "X.npz", tmp_path / "Y.txt", "-o",
                                  tmp_path / "m.pt", *common)]) == 0
    capsys.readouterr()
    assert main([str(a) for a in ("evaluate", tmp_path / "m.pt", tmp_path / "wide.npz",
                                  tmp_path / "Y.txt")]) == 2
    assert f"the model takes {F} features" in capsys.readouterr().err


# ---------------------------------------------------------------- torchrun
def _ddp_train(X, Y, batch_size, checkpoint_dir=None):
    from labelemb.torch import fit, make_model, mlp

    torch.manual_seed(0)
    model = make_model(mlp(F, [H], sparse=True), H, "bce", n_labels=L)
    h = fit(model, (X, Y), valid=(X[:64], Y[:64]), epochs=2, lr=1e-2, batch_size=batch_size,
            weight_decay=0.01, device="cpu", progress=False, checkpoint_dir=checkpoint_dir)
    return [p.detach().numpy().copy() for p in model.parameters()], h.epochs


def _ddp_worker(rank, world, port, out_dir, X, Y):
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    try:
        params, epochs = _ddp_train(X, Y, 32 // world, checkpoint_dir=out_dir)
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"), *params)
        with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
            f.write(repr(epochs))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available() or
                    not torch.distributed.is_gloo_available(), reason="needs gloo")
def test_two_processes_train_sparse_inputs_as_one(problem, tmp_path):
    """Sparse batches and row-sparse gradients under DistributedDataParallel (gloo): each
    rank's share of the global batch, the gradients all-reduced, as one process."""
    import socket

    import torch.multiprocessing as mp

    X, Y, _ = problem
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mp.spawn(_ddp_worker, args=(2, port, str(tmp_path), X, Y), nprocs=2, join=True)
        ref, ref_epochs = _ddp_train(X, Y, 32)
    finally:
        torch.set_num_threads(n)
    for rank in range(2):
        got = np.load(tmp_path / f"rank{rank}.npz")
        for i, p in enumerate(ref):
            np.testing.assert_allclose(got[f"arr_{i}"], p, rtol=1e-4, atol=1e-5)
    epochs = eval((tmp_path / "rank0.txt").read_text())
    for a, b in zip(epochs, ref_epochs):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["p@5"] == pytest.approx(b["p@5"], abs=1e-9)


def test_nccl_runs_get_dense_gradients():
    from labelemb.torch.distributed import DistContext
    from labelemb.torch.sparse import dense_gradients_under_nccl

    model = nn.Sequential(SparseLinear(10, 4, sparse_grad=True), nn.ReLU())
    dense_gradients_under_nccl(model, DistContext(), torch.device("cuda"))  # one process
    dense_gradients_under_nccl(model, DistContext(0, 2), torch.device("cpu"))  # gloo
    assert model[0].sparse_grad
    with pytest.warns(RuntimeWarning, match="NCCL cannot all-reduce"):
        dense_gradients_under_nccl(model, DistContext(0, 2), torch.device("cuda"))
    assert not model[0].sparse_grad
    model[0](csr_batch(random_csr(3, 10, 2))).sum().backward()
    assert not model[0].weight.grad.is_sparse
