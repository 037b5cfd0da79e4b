import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import labelemb
from labelemb import TopkIndex, threshold, topk


def exact_scores(Q, V):
    """The scores topk reports: float64 dot products rounded once to float32."""
    return (np.asarray(Q, np.float64) @ np.asarray(V, np.float64).T).astype(np.float32)


def reference(Q, V, k, exclude=None):
    """Top k by (score desc, id asc) with numpy: stable argsort of the negated scores."""
    S = exact_scores(Q, V)
    if exclude is not None:
        if sp.issparse(exclude):
            S[sp.csr_matrix(exclude).toarray() != 0] = -np.inf
        else:
            for i, row in enumerate(exclude):
                S[i, list(row)] = -np.inf
    idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    s = np.take_along_axis(S, idx, axis=1)
    idx = np.where(np.isneginf(s), -1, idx)
    return idx, s


def check(Q, V, k, **kw):
    idx, s = topk(Q, V, k, **kw)
    ref_i, ref_s = reference(Q, V, k, kw.get("exclude"))
    assert idx.shape == (len(Q), k) and s.shape == (len(Q), k)
    assert idx.dtype == np.int32 and s.dtype == np.float32
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_array_equal(s, ref_s)
    return idx, s


def rand(rng, n, L, d):
    return (rng.standard_normal((n, d)).astype(np.float32),
            rng.standard_normal((L, d)).astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 40), L=st.integers(1, 90), d=st.integers(1, 20),
       kfrac=st.floats(0, 1), threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**16))
def test_matches_argsort(n, L, d, kfrac, threads, seed):
    rng = np.random.default_rng(seed)
    Q, V = rand(rng, n, L, d)
    k = max(1, int(round(kfrac * L)))
    check(Q, V, k, num_threads=threads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,L,d,k", [(300, 2500, 64, 10), (5, 5000, 32, 100), (1, 3000, 16, 1),
                                     (700, 600, 8, 600)])
def test_blocks_and_label_split(n, L, d, k, threads):
    # Several query blocks and tiles; few queries (labels split over threads); k = L.
    rng = np.random.default_rng(n + L)
    Q, V = rand(rng, n, L, d)
    check(Q, V, k, num_threads=threads)


@pytest.mark.parametrize("k", [32, 64, 100])
def test_large_k_first_tile_bar(k):
    """For k >= 32 the first bar of a row comes from a sample of its first tile (every 8th
    score). Random rows take that path; rows whose best labels are exactly the sampled
    ones (ids divisible by 8) make the sampled bar too high, and the exact bar must take
    over. Exclusions raise the count the bar must cover."""
    rng = np.random.default_rng(k)
    n, L, d = 60, 4096, 16
    Q, V = rand(rng, n, L, d)
    V[::8] += 4.0 * Q[0]  # for query 0 (and its neighbours) the sampled labels stand out
    Q[1::3] = Q[0] + 0.01 * rng.standard_normal((len(Q[1::3]), d)).astype(np.float32)
    for threads in (1, 2):
        check(Q, V, k, num_threads=threads)
    ex = sp.random(n, L, density=0.02, format="csr", random_state=1)
    ex.data[:] = 1
    check(Q, V, k, exclude=ex)


def test_planted_ties_go_to_lower_id():
    rng = np.random.default_rng(1)
    base = rng.integers(-3, 4, size=(6, 5)).astype(np.float32)
    V = base[rng.integers(0, 6, size=300)]  # many identical rows: exactly equal scores
    Q = rng.integers(-2, 3, size=(40, 5)).astype(np.float32)
    for k in (1, 7, 64, 300):
        idx, s = check(Q, V, k)
        for row_i, row_s in zip(idx, s):
            for a in range(k - 1):
                assert row_s[a] > row_s[a + 1] or row_i[a] < row_i[a + 1]


def test_all_scores_equal():
    V = np.ones((500, 4), np.float32)
    Q = np.ones((3, 4), np.float32)
    idx, s = topk(Q, V, 50)
    np.testing.assert_array_equal(idx, np.tile(np.arange(50), (3, 1)))
    assert (s == 4).all()


def test_deterministic_across_threads_and_blocks():
    rng = np.random.default_rng(2)
    Q, V = rand(rng, 257, 4099, 48)
    a = topk(Q, V, 17, num_threads=1)
    b = topk(Q, V, 17, num_threads=2)
    c = topk(Q[:3], V, 17, num_threads=2)  # a different blocking of the first rows
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0][:3], c[0])
    np.testing.assert_array_equal(a[1][:3], c[1])


@pytest.mark.parametrize("threads", [1, 2])
def test_exclude(threads):
    rng = np.random.default_rng(3)
    Q, V = rand(rng, 60, 200, 12)
    ex = sp.random(60, 200, density=0.2, format="csr", random_state=4)
    check(Q, V, 10, exclude=ex, num_threads=threads)
    # As lists, unsorted, with repeats; as COO.
    lists = [list(reversed(r.indices.tolist())) * 2 for r in ex]
    check(Q, V, 10, exclude=lists, num_threads=threads)
    check(Q, V, 10, exclude=ex.tocoo(), num_threads=threads)


def test_exclude_leaves_fewer_than_k():
    rng = np.random.default_rng(5)
    Q, V = rand(rng, 4, 10, 3)
    ex = [[0, 1, 2, 3, 4, 5, 6, 7], [], list(range(10)), [9]]
    idx, s = check(Q, V, 5, exclude=ex)
    assert (idx[0, 2:] == -1).all() and np.isneginf(s[0, 2:]).all()
    assert (idx[2] == -1).all()
    assert (idx[1] >= 0).all() and 9 not in idx[3]


def test_explicit_zeros_in_exclude_are_not_excluded():
    rng = np.random.default_rng(6)
    Q, V = rand(rng, 2, 8, 3)
    ex = sp.csr_matrix((np.array([0.0, 1.0]), np.array([1, 2]), np.array([0, 2, 2])),
                       shape=(2, 8))
    idx, _ = topk(Q, V, 8, exclude=ex)
    assert 1 in idx[0] and 2 not in idx[0]


def test_zero_rows():
    V = np.ones((5, 3), np.float32)
    idx, s = topk(np.zeros((0, 3), np.float32), V, 2)
    assert idx.shape == (0, 2) and s.shape == (0, 2)
    m = threshold(np.zeros((0, 3), np.float32), V, 0.0)
    assert m.shape == (0, 5) and m.nnz == 0


def test_float64_and_non_contiguous_inputs():
    rng = np.random.default_rng(7)
    Q, V = rand(rng, 30, 50, 6)
    a = topk(Q, V, 5)
    b = topk(Q.astype(np.float64), np.asfortranarray(V), 5)
    c = topk(np.repeat(Q, 2, axis=1)[:, ::2], V, 5)
    for other in (b, c):
        np.testing.assert_array_equal(a[0], other[0])
        np.testing.assert_array_equal(a[1], other[1])


def test_zero_query_and_zero_vectors():
    V = np.zeros((20, 4), np.float32)
    V[3] = 1
    Q = np.zeros((2, 4), np.float32)
    Q[1] = -1
    idx, s = check(Q, V, 3)
    np.testing.assert_array_equal(idx[0], [0, 1, 2])


# ---------------------------------------------------------------- bad input
@pytest.fixture
def qv():
    rng = np.random.default_rng(8)
    return rand(rng, 5, 12, 4)


def test_bad_shapes(qv):
    Q, V = qv
    with pytest.raises(ValueError, match="queries must be 2-D"):
        topk(Q[0], V, 2)
    with pytest.raises(ValueError, match="vectors must be 2-D"):
        topk(Q, V[None], 2)
    with pytest.raises(ValueError, match="columns"):
        topk(Q[:, :3], V, 2)
    with pytest.raises(ValueError, match="at least one column"):
        topk(Q[:, :0], V[:, :0], 1)


def test_bad_values(qv):
    Q, V = qv
    Qn = Q.copy()
    Qn[2, 1] = np.nan
    with pytest.raises(ValueError, match="queries contains NaN or Inf .*row 2"):
        topk(Qn, V, 2)
    Vi = V.copy()
    Vi[0, 0] = np.inf
    with pytest.raises(ValueError, match="vectors contains NaN or Inf"):
        topk(Q, Vi, 2)
    with pytest.raises(ValueError, match="overflow"):
        topk(Q * 1e20, V * 1e20, 2)


def test_bad_types(qv):
    Q, V = qv
    with pytest.raises(TypeError, match="dtype int64"):
        topk(Q.astype(np.int64), V, 2)
    with pytest.raises(TypeError, match="sparse"):
        topk(sp.csr_matrix(Q), V, 2)
    with pytest.raises(TypeError, match="k must be an int"):
        topk(Q, V, 2.0)
    with pytest.raises(TypeError, match="k must be an int"):
        topk(Q, V, True)
    with pytest.raises(TypeError, match="num_threads"):
        topk(Q, V, 2, num_threads=1.5)
    with pytest.raises(ValueError, match="num_threads"):
        topk(Q, V, 2, num_threads=-1)


@pytest.mark.parametrize("k", [0, -1, 13])
def test_k_out_of_range(qv, k):
    Q, V = qv
    with pytest.raises(ValueError, match=r"k must be in \[1, 12\]"):
        topk(Q, V, k)


def test_bad_exclude(qv):
    Q, V = qv
    with pytest.raises(ValueError, match="shape"):
        topk(Q, V, 2, exclude=sp.csr_matrix((4, 12)))
    with pytest.raises(ValueError, match="one label list per query"):
        topk(Q, V, 2, exclude=[[1]])
    with pytest.raises(ValueError, match=r"lie in \[0, 12\)"):
        topk(Q, V, 2, exclude=[[1], [], [12], [], []])
    with pytest.raises(ValueError, match=r"lie in \[0, 12\)"):
        topk(Q, V, 2, exclude=[[1], [], [-1], [], []])
    with pytest.raises(TypeError, match="integers"):
        topk(Q, V, 2, exclude=[[1.5], [], [], [], []])
    with pytest.raises(TypeError, match="exclude must be"):
        topk(Q, V, 2, exclude="abc")


def test_core_checks_bounds(qv):
    # The binding refuses inconsistent arrays even when the Python layer is bypassed.
    from labelemb import _core

    Q, V = qv
    s = np.empty((5, 2), np.float32)
    i = np.empty((5, 2), np.int32)
    with pytest.raises(ValueError, match="outputs"):
        _core.topk(Q, V, 2, None, None, s[:4], i[:4], 1)
    with pytest.raises(ValueError, match="exclude"):
        _core.topk(Q, V, 2, np.array([0, 1], np.int64), np.array([3], np.int64), s, i, 1)
    with pytest.raises(ValueError, match="column indices"):
        _core.topk(Q, V, 2, np.array([0, 1, 1, 1, 1, 1], np.int64), np.array([12], np.int64),
                   s, i, 1)
    with pytest.raises(ValueError, match="sorted"):
        _core.topk(Q, V, 2, np.array([0, 2, 2, 2, 2, 2], np.int64), np.array([3, 1], np.int64),
                   s, i, 1)
    with pytest.raises(TypeError):
        _core.topk(Q.astype(np.float64), V, 2, None, None, s, i, 1)


# ---------------------------------------------------------------- threshold
@pytest.mark.parametrize("threads", [1, 2])
def test_threshold_matches_numpy(threads):
    rng = np.random.default_rng(9)
    Q, V = rand(rng, 70, 3000, 10)
    m = threshold(Q, V, 2.5, num_threads=threads)
    S = exact_scores(Q, V)
    ref = sp.csr_matrix(np.where(S > np.float32(2.5), S, 0))
    assert m.dtype == np.float32 and m.shape == (70, 3000) and m.has_sorted_indices
    np.testing.assert_array_equal(m.indptr, ref.indptr)
    np.testing.assert_array_equal(m.indices, ref.indices)
    np.testing.assert_array_equal(m.data, ref.data)


def test_threshold_bad_input(qv):
    Q, V = qv
    with pytest.raises(ValueError, match="min_score"):
        threshold(Q, V, float("nan"))
    with pytest.raises(ValueError, match="columns"):
        threshold(Q, V[:, :2], 0.0)
    Qn = Q.copy()
    Qn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        threshold(Qn, V, 0.0)


# ---------------------------------------------------------------- pruned index
def clustered(rng, L, d, n_centres, spread):
    C = rng.standard_normal((n_centres, d))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    V = C[rng.integers(0, n_centres, L)] + spread * rng.standard_normal((L, d))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    return V.astype(np.float32), C


@pytest.mark.parametrize("threads", [1, 2])
def test_index_identical_to_exhaustive(threads):
    rng = np.random.default_rng(10)
    V, C = clustered(rng, 3000, 32, 40, 0.05)
    Q = C[rng.integers(0, 40, 500)] + 0.05 * rng.standard_normal((500, 32))
    Q = Q.astype(np.float32)
    index = TopkIndex(V, n_clusters=50, num_threads=threads)
    for k in (100, 1, 10):
        a = topk(Q, V, k, num_threads=threads)
        b = index.search(Q, k)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert index.last_scored_fraction_ < 0.5  # it did skip labels
    c = topk(Q, None, 10, index=index)
    d = topk(Q, index, 10)
    np.testing.assert_array_equal(c[0], d[0])


def test_index_on_random_data_ties_and_exclude():
    rng = np.random.default_rng(11)
    Q, V = rand(rng, 80, 700, 8)
    V[100:200] = V[5]  # planted ties
    ex = sp.random(80, 700, density=0.05, format="csr", random_state=12)
    index = TopkIndex(V, n_clusters=12)
    for k in (1, 13, 700):
        a = check(Q, V, k, exclude=ex)
        b = index.search(Q, k, exclude=ex)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert index.search(Q[:0], 3)[0].shape == (0, 3)


def test_index_bad_input():
    rng = np.random.default_rng(13)
    Q, V = rand(rng, 3, 30, 4)
    with pytest.raises(ValueError, match="n_clusters"):
        TopkIndex(V, n_clusters=0)
    with pytest.raises(ValueError, match="n_clusters"):
        TopkIndex(V, n_clusters=31)
    with pytest.raises(ValueError, match="n_iter"):
        TopkIndex(V, n_iter=-1)
    with pytest.raises(ValueError, match="at least one row"):
        TopkIndex(V[:0])
    index = TopkIndex(V, n_clusters=3)
    with pytest.raises(ValueError, match="columns"):
        index.search(Q[:, :2], 2)
    with pytest.raises(ValueError, match=r"k must be in \[1, 30\]"):
        index.search(Q, 31)
    with pytest.raises(ValueError, match="shape"):
        topk(Q, V[:10], 2, index=index)
    with pytest.raises(TypeError, match="TopkIndex"):
        topk(Q, V, 2, index="index")


# ---------------------------------------------------------------- torch path (CPU tensors)
def test_torch_matches_cpp():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    for n, L, d, k in [(50, 300, 8, 5), (40, 3000, 64, 100), (7, 40, 4, 40), (0, 10, 3, 2)]:
        Q, V = rand(rng, n, L, d)
        ex = sp.random(n, L, density=0.3, format="csr", random_state=1)
        a = topk(Q, V, k, exclude=ex)
        b = topk(torch.from_numpy(Q), torch.from_numpy(V), k, exclude=ex)
        assert isinstance(b[0], torch.Tensor) and b[0].dtype == torch.int32
        np.testing.assert_array_equal(a[0], b[0].numpy())
        np.testing.assert_array_equal(a[1], b[1].numpy())
    # small label blocks: the cross-block merge and planted ties
    Q, V = rand(rng, 30, 500, 6)
    V[200:300] = V[0]
    a = topk(Q, V, 50)
    from labelemb.topk import _torch_topk

    b = _torch_topk(torch.from_numpy(Q).double(), V, 50, query_block=7, label_block=64)
    np.testing.assert_array_equal(a[0], b[0].numpy())
    np.testing.assert_array_equal(a[1], b[1].numpy())
    m1 = threshold(Q, V, 1.0)
    m2 = threshold(torch.from_numpy(Q), torch.from_numpy(V), 1.0)
    assert (m1 != m2).nnz == 0 and m1.nnz == m2.nnz


def test_torch_bad_input():
    torch = pytest.importorskip("torch")
    Q = torch.zeros((3, 4))
    V = torch.ones((5, 4))
    with pytest.raises(ValueError, match="columns"):
        topk(Q, V[:, :3], 2)
    with pytest.raises(ValueError, match="k must be"):
        topk(Q, V, 6)
    with pytest.raises(ValueError, match="NaN"):
        topk(torch.full((2, 4), float("nan")), V, 2)
    with pytest.raises(TypeError, match="dtype"):
        topk(Q.long(), V, 2)
    with pytest.raises(ValueError, match="2-D"):
        topk(Q[0], V, 2)


def test_import_does_not_import_torch():
    code = "import sys, labelemb; labelemb.topk; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_exports():
    for name in ("topk", "threshold", "TopkIndex", "metrics"):
        assert name in labelemb.__all__


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 300), seed=st.integers(0, 2**16), spread=st.integers(0, 12))
def test_exact_dot_versions_agree(d, seed, spread):
    # The reported score must not depend on the CPU: scalar, SSE2 and AVX2 versions of the
    # fixed-order float64 dot product give the same float, the float64 product rounded.
    from labelemb import _core

    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(d) * 10.0 ** rng.integers(-spread, spread + 1, d)).astype(np.float32)
    b = rng.standard_normal(d).astype(np.float32)
    values = []
    for version in (0, 1, 2):
        try:
            values.append(_core._exact_dot(a, b, version))
        except ValueError:  # not built or not supported on this CPU
            pass
    assert len(values) >= 1 and all(v == values[0] for v in values)
    ref = np.dot(a.astype(np.float64), b.astype(np.float64))
    assert values[0] == pytest.approx(ref, rel=1e-6, abs=1e-30)
