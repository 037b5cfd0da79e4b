"""labelemb.torch building blocks: sparse batches, targets, losses, heads."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
F = torch.nn.functional

import labelemb  # noqa: E402
from labelemb.torch import (  # noqa: E402
    CosineProximityLoss,
    EmbeddingHead,
    EmbeddingTargets,
    LabelCollate,
    LogitHead,
    LowRankHead,
    SparseLabels,
    make_model,
    mlp,
    sparse_bce_with_logits,
)
from labelemb.torch.data import as_label_csr  # noqa: E402


def _random_csr(rng, n, L, density=0.2):
    Y = sp.random(n, L, density=density, format="csr", random_state=rng, dtype=np.float32)
    Y.data[:] = 1
    return Y


@pytest.fixture(scope="module")
def emb():
    Y = labelemb.make_topic_labels(400, 30, seed=1).labels
    return labelemb.fit_embeddings(Y, dim=8)


def test_import_labelemb_does_not_import_torch():
    code = "import sys, labelemb; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- SparseLabels
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 20), st.integers(1, 12), st.integers(0, 30), st.integers(0, 2**31))
def test_rows_equal_scipy(n, L, b, seed):
    rng = np.random.default_rng(seed)
    Y = _random_csr(rng, n, L, density=rng.random())
    idx = rng.integers(0, n, size=b)
    got = SparseLabels.from_scipy(Y).rows(torch.as_tensor(idx))
    want = Y[idx]
    assert (got.to_scipy() != want).nnz == 0
    np.testing.assert_array_equal(got.multi_hot().numpy(), want.toarray())
    np.testing.assert_array_equal(got.lengths.numpy(), np.diff(want.indptr))


def test_slice_and_row_ids():
    Y = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 1]], np.float32))
    s = SparseLabels.from_scipy(Y)
    assert (s.slice(1, 3).to_scipy() != Y[1:3]).nnz == 0
    assert s.row_ids().tolist() == [0, 0, 2, 2]


# ---------------------------------------------------------------- validation
def test_label_validation_errors(emb):
    L = emb.vectors.shape[0]
    with pytest.raises(ValueError, match="out of range"):
        as_label_csr([[0, L]], "train labels", n_labels=L)
    with pytest.raises(ValueError, match="negative"):
        as_label_csr([[0, -1]], "train labels", n_labels=L)
    with pytest.raises(ValueError, match="label columns"):
        as_label_csr(sp.csr_matrix((2, L + 1)), "train labels", n_labels=L)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        as_label_csr([["a", "zzz"]], "train labels", n_labels=2, label_names=["a", "b"])
    with pytest.raises(ValueError, match="one label set per input"):
        as_label_csr([[0], [1]], "train labels", n_labels=L, n_samples=3)
    with pytest.raises(TypeError, match="train labels"):
        as_label_csr([[0.5]], "train labels", n_labels=L)


def test_names_map_through_vocabulary():
    csr, names = as_label_csr([["b"], ["c", "a", "c"], []], "y", label_names=["c", "b", "a"])
    assert names == ["c", "b", "a"]
    assert csr.toarray().tolist() == [[0, 1, 0], [1, 0, 1], [0, 0, 0]]
    csr, names = as_label_csr([["b"], ["c", "a"]], "y")
    assert names == ["a", "b", "c"] and csr.shape == (2, 3)
    sets = np.empty(2, dtype=object)
    sets[0], sets[1] = ["b"], ["c", "a"]
    csr, names = as_label_csr(sets, "y", label_names=["c", "b", "a"])
    assert csr.toarray().tolist() == [[0, 1, 0], [1, 0, 1]]


def test_collate():
    collate = LabelCollate(n_labels=5)
    x, y = collate([(torch.ones(3), [1, 4]), (torch.zeros(3), np.array([2])),
                    (torch.ones(3), [])])
    assert x.shape == (3, 3)
    assert y.to_scipy().toarray().tolist() == [[0, 1, 0, 0, 1], [0, 0, 1, 0, 0], [0] * 5]
    with pytest.raises(ValueError, match="out of range"):
        collate([(torch.ones(3), [5])])
    with pytest.raises(ValueError, match="vocabulary"):
        collate([(torch.ones(3), ["a"])])
    named = LabelCollate(label_names=["a", "b"])
    assert named([(torch.ones(1), ["b"])])[1].indices.tolist() == [1]


# ---------------------------------------------------------------- targets
def test_targets_equal_encode(emb):
    rng = np.random.default_rng(0)
    L = emb.vectors.shape[0]
    Y = _random_csr(rng, 50, L, density=0.1)
    Y = sp.csr_matrix(Y.multiply(np.arange(50)[:, None] != 3))  # row 3: an empty set
    Y.eliminate_zeros()
    with pytest.warns(labelemb.EmbeddingWarning, match="1 empty"):
        want = emb.encode(Y)
    t = EmbeddingTargets(emb)
    np.testing.assert_allclose(t(Y).numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t(SparseLabels.from_scipy(Y)).numpy(), want, rtol=1e-5,
                               atol=1e-6)
    lists = [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist() for i in range(50)]
    with pytest.warns(labelemb.EmbeddingWarning):
        np.testing.assert_allclose(t(lists).numpy(), emb.encode(lists), rtol=1e-5, atol=1e-6)
    assert not t(Y)[3].any()
    norms = t(Y).norm(dim=1).numpy()
    np.testing.assert_allclose(norms[np.diff(Y.indptr) > 0], 1, rtol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        t([[L]])


# ---------------------------------------------------------------- losses
def test_cosine_loss_reference():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(20, 6, generator=g)
    t = F.normalize(torch.randn(20, 6, generator=g), dim=1)
    want = (1 - F.cosine_similarity(p, t, dim=1)).mean()
    torch.testing.assert_close(CosineProximityLoss()(p, t), want)
    torch.testing.assert_close(CosineProximityLoss("sum")(p, t), want * 20)


def test_cosine_loss_zero_vectors():
    p = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], requires_grad=True)
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # row 2: empty label set
    loss = CosineProximityLoss()(p, t)
    want = ((1 - 1 / np.sqrt(5)) + 1.0) / 2  # row 2 left out; zero prediction: cos = 0
    assert loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert torch.isfinite(p.grad).all()
    assert not p.grad[2].any()
    q = torch.ones(2, 2, requires_grad=True)
    zero = CosineProximityLoss()(q, torch.zeros(2, 2))
    zero.backward()
    assert zero.item() == 0 and not q.grad.any()
    with pytest.raises(ValueError, match="batch, d"):
        CosineProximityLoss()(torch.ones(2, 3), torch.ones(2, 2))


def test_sparse_bce_equals_dense():
    rng = np.random.default_rng(1)
    Y = _random_csr(rng, 16, 40, density=0.1)
    z = torch.randn(16, 40, generator=torch.Generator().manual_seed(1), requires_grad=True)
    got = sparse_bce_with_logits(z, SparseLabels.from_scipy(Y))
    want = F.binary_cross_entropy_with_logits(z, torch.as_tensor(Y.toarray()),
                                              reduction="sum") / 16
    torch.testing.assert_close(got, want)
    (ga,) = torch.autograd.grad(got, z)
    (gb,) = torch.autograd.grad(want, z)
    torch.testing.assert_close(ga, gb)


def test_sparse_softmax_cross_entropy_equals_dense():
    from labelemb.torch.losses import sparse_softmax_cross_entropy

    rng = np.random.default_rng(2)
    Y = _random_csr(rng, 16, 40, density=0.1).tolil()
    Y[3, :] = 0  # a row without labels: left out of the mean
    Y = Y.tocsr()
    Y.eliminate_zeros()
    z = torch.randn(16, 40, generator=torch.Generator().manual_seed(2), requires_grad=True)
    got = sparse_softmax_cross_entropy(z, SparseLabels.from_scipy(Y))
    T = torch.as_tensor(Y.toarray())
    n = T.sum(1)
    keep = n > 0
    # cross-entropy of softmax(z) against the uniform distribution on each row's labels
    want = -(T[keep] / n[keep, None] * torch.log_softmax(z[keep], 1)).sum() / keep.sum()
    torch.testing.assert_close(got, want)
    (ga,) = torch.autograd.grad(got, z)
    (gb,) = torch.autograd.grad(want, z)
    torch.testing.assert_close(ga, gb)
    assert not ga[3].any()
    empty = SparseLabels.from_scipy(sp.csr_matrix((2, 40), dtype=np.float32))
    zero = sparse_softmax_cross_entropy(z[:2], empty)
    assert zero.item() == 0.0
    with pytest.raises(ValueError, match="n_labels"):
        sparse_softmax_cross_entropy(z[:, :39], SparseLabels.from_scipy(Y))


# ---------------------------------------------------------------- heads
@pytest.mark.parametrize("head", ["paper", "bce", "lowrank"])
def test_gradients_flow(emb, head):
    torch.manual_seed(0)
    L = emb.vectors.shape[0]
    model = make_model(mlp(10, [16]), 16, head, embedding=emb)
    x = torch.randn(8, 10)
    y = SparseLabels.from_scipy(_random_csr(np.random.default_rng(0), 8, L, 0.2))
    out = model(x)
    if head == "paper":
        assert out.shape == (8, emb.vectors.shape[1])
        loss = CosineProximityLoss()(out, EmbeddingTargets(emb)(y))
    else:
        assert out.shape == (8, L)
        loss = sparse_bce_with_logits(out, y)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_logit_head_prior():
    head = LogitHead(4, 3)
    head.init_prior(np.array([0, 5, 10]), 10)
    p = (np.array([0, 5, 10]) + 0.5) / 11
    np.testing.assert_allclose(head.linear.bias.detach().numpy(), np.log(p / (1 - p)),
                               rtol=1e-6)
    assert head.prior_initialized
    with pytest.raises(ValueError, match="one count per label"):
        head.init_prior(np.ones(4), 10)


def test_lowrank_head_formula(emb):
    E = torch.as_tensor(emb.vectors)
    head = LowRankHead(5, emb, scale_init=7.0)
    x = torch.randn(3, 5)
    want = 7.0 * F.normalize(head.linear(x), dim=1) @ E.T + head.bias
    torch.testing.assert_close(head(x), want)
    assert isinstance(head.label_vectors, torch.nn.Parameter)
    fixed = LowRankHead(5, emb, learn_vectors=False)
    assert "label_vectors" not in dict(fixed.named_parameters())
    assert "label_vectors" in dict(fixed.named_buffers())


def test_lowrank_head_residual_starts_at_zero_and_learns(emb):
    torch.manual_seed(0)
    head = LowRankHead(5, emb, residual=True)
    x = torch.randn(3, 5)
    base = head.scale * F.normalize(head.linear(x), dim=1) @ head.label_vectors.T + head.bias
    torch.testing.assert_close(head(x), base)  # R = 0 at the start
    head(x).sum().backward()
    assert head.residual.weight.grad.abs().sum() > 0
    with torch.no_grad():
        head.residual.weight.fill_(0.5)
    torch.testing.assert_close(head(x), base + 0.5 * x.sum(dim=1, keepdim=True))
    with pytest.raises(TypeError, match="residual"):
        LowRankHead(5, emb, residual="yes")


def test_head_errors(emb):
    with pytest.raises(ValueError, match="in_features"):
        EmbeddingHead(0, emb)
    with pytest.raises(ValueError, match="n_labels"):
        LogitHead(3, 0)
    with pytest.raises(ValueError, match="scale_init"):
        LowRankHead(3, emb, scale_init=0.0)
    with pytest.raises(ValueError, match="needs embedding"):
        make_model(mlp(3, [4]), 4, "paper")
    with pytest.raises(ValueError, match="head must be"):
        make_model(mlp(3, [4]), 4, "sigmoid", embedding=emb)
    with pytest.raises(TypeError, match="backbone"):
        make_model("mlp", 4, "bce", n_labels=3)
    with pytest.raises(TypeError, match="LabelEmbedding"):
        EmbeddingHead(3, "not an embedding")


def test_targets_from_names_equal_encode():
    sets = [["cat", "pet"], ["dog", "pet"], ["car"], ["dog"], ["cat", "dog", "pet"]] * 10
    emb = labelemb.fit_embeddings(sets, dim=2)
    t = EmbeddingTargets(emb)
    np.testing.assert_allclose(t(sets[:5]).numpy(), emb.encode(sets[:5]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        t([["cat", "unicorn"]])
