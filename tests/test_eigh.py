import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import labelemb
from labelemb import _core, randomized_eigh


def planted(n, values, seed=0):
    """A dense symmetric matrix with the given leading eigenvalues and a small bulk."""
    rng = np.random.default_rng(seed)
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    lam = np.concatenate([values, rng.uniform(-1, 1, n - len(values))])
    A = (V * lam) @ V.T
    return (A + A.T) / 2


def communities(n=400, groups=8, p_in=0.5, p_out=0.02, seed=0):
    """A sparse symmetric planted-partition matrix: `groups` eigenvalues far above the bulk."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) % groups
    p = np.where(g[:, None] == g[None, :], p_in, p_out)
    upper = np.triu(rng.random((n, n)) < p, 1)
    w = upper * rng.uniform(0.5, 1.5, (n, n))
    return sp.csr_matrix(w + w.T)


def reference(A, k, which):
    w, V = np.linalg.eigh(A.toarray() if sp.issparse(A) else A)
    order = np.argsort(-w if which == "LA" else -np.abs(w), kind="stable")[:k]
    order = order[np.argsort(-w[order], kind="stable")]
    return w[order], V[:, order]


def check(A, k, which="LA", rtol=1e-4, angle=1e-2, **kw):
    w, U = randomized_eigh(A, k, which=which, **kw)
    w_ref, U_ref = reference(A, k, which)
    assert w.dtype == np.float64 and U.dtype == np.float32 and U.shape == (A.shape[0], k)
    assert np.all(np.diff(w) <= 0)
    scale = np.abs(w_ref).max()
    np.testing.assert_allclose(w, w_ref, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(U.T.astype(np.float64) @ U, np.eye(k), atol=1e-5)
    assert np.max(scipy.linalg.subspace_angles(U.astype(np.float64), U_ref)) < angle
    # sign convention: each column's largest-magnitude entry is positive
    idx = np.argmax(np.abs(U), axis=0)
    assert np.all(U[idx, np.arange(k)] > 0)
    return w, U


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("which", ["LA", "LM"])
def test_dense_planted(dtype, which):
    # two negative eigenvalues of large magnitude: LA skips them, LM keeps them
    A = planted(300, [20, 18, 16, 15, 14, 13, -30, -25]).astype(dtype)
    w, _ = check(A, 6, which=which)
    if which == "LA":
        assert np.all(w > 0)
    else:
        assert w.min() < -20


@pytest.mark.parametrize("which", ["LA", "LM"])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_sparse_communities(which, num_threads):
    A = communities()
    check(A, 8, which=which, n_iter=6, num_threads=num_threads)


@pytest.mark.parametrize("fmt", ["csc", "coo", "lil"])
def test_sparse_formats_and_dtypes(fmt):
    A = communities(n=200, groups=4)
    ref = randomized_eigh(A, 4)
    B = A.asformat(fmt)
    for M in (B, B.astype(np.float32)):
        w, U = randomized_eigh(M, 4)
        np.testing.assert_allclose(w, ref[0], rtol=1e-5)
        np.testing.assert_allclose(np.abs(U.T @ ref[1]), np.eye(4), atol=1e-4)
    Ai = (A * 2).astype(np.int64)
    np.testing.assert_allclose(randomized_eigh(Ai.asformat(fmt), 4)[0],
                               randomized_eigh(Ai.astype(np.float64), 4)[0], rtol=1e-6)
    np.testing.assert_allclose(randomized_eigh(Ai.astype(bool), 4)[0],
                               randomized_eigh((Ai != 0).astype(np.float64), 4)[0], rtol=1e-6)


def test_unsorted_and_duplicate_entries():
    A = communities(n=150, groups=3)
    indices, data = [], []
    for i in range(A.shape[0]):  # each row's entries reversed, each stored twice (halved)
        cols = A.indices[A.indptr[i]:A.indptr[i + 1]][::-1]
        vals = A.data[A.indptr[i]:A.indptr[i + 1]][::-1] / 2
        indices += [*cols, *cols]
        data += [*vals, *vals]
    B = sp.csr_matrix((np.array(data), np.array(indices), A.indptr * 2), shape=A.shape)
    assert not B.has_canonical_format
    np.testing.assert_allclose(randomized_eigh(B, 3)[0], randomized_eigh(A, 3)[0], rtol=1e-5)


def test_exact_path_small():
    # 3 (k + oversample) >= n: solved densely, exact to rounding
    A = planted(20, [5, 4, 3])
    w, U = randomized_eigh(A, 5, oversample=16)
    w_ref, _ = reference(A, 5, "LA")
    np.testing.assert_allclose(w, w_ref, rtol=1e-6)
    # larger than one chunk of identity columns (256)
    B = planted(400, [9, 8, 7])
    w_ref, _ = reference(B, 140, "LM")
    for M in (B, sp.csr_matrix(B)):
        w, U = randomized_eigh(M, 140, which="LM")
        np.testing.assert_allclose(w, w_ref, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 30), k=st.integers(1, 29), seed=st.integers(0, 2**32 - 1),
       which=st.sampled_from(["LA", "LM"]), sparse=st.booleans())
def test_small_random_matches_numpy(n, k, seed, which, sparse):
    k = min(k, n - 1)
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    A = (M + M.T) / 2
    if sparse:
        A = sp.csr_matrix(np.where(rng.random((n, n)) < 0.5, A, 0) + 0)
        A = (A + A.T) / 2
    w, U = randomized_eigh(A, k, which=which, oversample=n)  # l = n: the exact path
    w_ref, _ = reference(A, k, which)
    Ad = A.toarray() if sp.issparse(A) else A
    if which == "LA":
        np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-5)
    else:
        # +x and -x tie in magnitude (symmetric spectra are common in sparse matrices):
        # which one fills the last place is arbitrary, so compare the magnitudes, and
        # check that every value returned is an eigenvalue of A
        np.testing.assert_allclose(np.sort(np.abs(w)), np.sort(np.abs(w_ref)), rtol=1e-5,
                                   atol=1e-5)
        spectrum = np.linalg.eigvalsh(Ad)
        assert np.abs(w[:, None] - spectrum[None, :]).min(axis=1).max() < 1e-5 * max(
            1.0, np.abs(spectrum).max())
    # each pair is an eigenpair (float32 vectors)
    np.testing.assert_allclose(Ad @ U, U * w, atol=1e-4 * max(1.0, np.abs(w).max()))


def test_rank_deficient_uses_householder():
    # rank 3 < k: Cholesky QR breaks down, the Householder fallback takes over
    rng = np.random.default_rng(1)
    V = rng.standard_normal((300, 3))
    A = V @ V.T
    w, U = randomized_eigh(A, 6)
    w_ref, _ = reference(A, 6, "LA")
    np.testing.assert_allclose(w, w_ref, atol=1e-4 * w_ref[0])
    np.testing.assert_allclose(U.T.astype(np.float64) @ U, np.eye(6), atol=1e-5)
    vals = np.empty(6)
    vecs = np.empty((300, 6), dtype=np.float32)
    stats = _core.eigh_dense(np.ascontiguousarray(A), 6, 16, 4, True, 0, vals, vecs, 1)
    assert stats["householder"] >= 1 and not stats["exact"]
    assert stats["products"] == 4 + 3


def test_zero_matrix_and_empty_rows():
    A = sp.csr_matrix((100, 100), dtype=np.float32)
    w, U = randomized_eigh(A, 3)
    np.testing.assert_array_equal(w, 0)
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-5)
    B = communities(n=200, groups=4).tolil()
    B[:20, :] = 0
    B[:, :20] = 0
    w, U = randomized_eigh(B.tocsr(), 4)
    np.testing.assert_allclose(U[:20], 0, atol=1e-6)  # isolated rows: no weight


def test_deterministic_and_threads():
    A = communities(n=500, groups=6)
    w1, U1 = randomized_eigh(A, 6, num_threads=1)
    w1b, U1b = randomized_eigh(A, 6, num_threads=1)
    w2, U2 = randomized_eigh(A, 6, num_threads=2)
    np.testing.assert_array_equal(w1, w1b)
    np.testing.assert_array_equal(U1, U1b)
    # the work is split in fixed blocks: the thread count does not change a bit
    np.testing.assert_array_equal(w2, w1)
    np.testing.assert_array_equal(U2, U1)
    w3, U3 = randomized_eigh(A, 6, seed=7)
    np.testing.assert_allclose(w3, w1, rtol=1e-4)
    assert not np.array_equal(U3, U1)


def test_residual_trace_identity():
    """The benchmark's residual formula agrees with the direct one."""
    A = communities(n=300, groups=5)
    w, U = randomized_eigh(A, 5, which="LM")
    Ad = A.toarray()
    direct = np.linalg.norm(Ad - (U * w) @ U.T) / np.linalg.norm(Ad)
    U64 = U.astype(np.float64)
    U64 = np.linalg.qr(U64)[0] * np.sign(np.diag(np.linalg.qr(U64)[1]))
    t = np.einsum("ij,ij->j", U64, A @ U64)
    a2 = np.linalg.norm(Ad) ** 2
    trace = np.sqrt((a2 - 2 * (t * w).sum() + (w ** 2).sum()) / a2)
    assert abs(trace - direct) < 1e-4


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("A", [np.zeros((3, 4)), sp.csr_matrix((3, 4)), np.zeros(5),
                               np.zeros((2, 2, 2))])
def test_not_square(A):
    with pytest.raises(ValueError, match="square"):
        randomized_eigh(A, 1)


@pytest.mark.parametrize("sparse", [False, True])
def test_not_symmetric(sparse):
    A = planted(50, [3, 2])
    A[0, 1] += 0.1
    with pytest.raises(ValueError, match="not symmetric"):
        randomized_eigh(sp.csr_matrix(A) if sparse else A, 2)
    # within tolerance is accepted
    B = planted(50, [3, 2])
    B[0, 1] += 1e-9
    randomized_eigh(sp.csr_matrix(B) if sparse else B, 2)


def test_not_symmetric_structure():
    A = sp.csr_matrix(([1.0], ([0], [3])), shape=(5, 5))  # a_03 stored, a_30 missing
    with pytest.raises(ValueError, match="not symmetric"):
        randomized_eigh(A, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sparse", [False, True])
def test_nan_inf(bad, sparse):
    A = planted(30, [3])
    A[2, 2] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        randomized_eigh(sp.csr_matrix(A) if sparse else A, 2)


def test_too_large_for_float32():
    A = sp.csr_matrix(np.diag([1e300, 1.0, 1.0]))
    with pytest.raises(ValueError, match="float32"):
        randomized_eigh(A, 1)


@pytest.mark.parametrize("k", [0, -1, 30, 31])
def test_k_out_of_range(k):
    A = planted(30, [3])
    with pytest.raises(ValueError, match="k must"):
        randomized_eigh(A, k)
    with pytest.raises(ValueError, match="k must"):
        randomized_eigh(sp.csr_matrix(A), k)


@pytest.mark.parametrize("kw, exc, match", [
    ({"k": 2.0}, TypeError, "k must be an int"),
    ({"k": True}, TypeError, "k must be an int"),
    ({"which": "SA"}, ValueError, "which"),
    ({"n_iter": -1}, ValueError, "n_iter"),
    ({"oversample": -2}, ValueError, "oversample"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 2**64}, ValueError, "seed"),
    ({"num_threads": -1}, ValueError, "num_threads"),
    ({"num_threads": 1.5}, TypeError, "num_threads"),
])
def test_bad_arguments(kw, exc, match):
    A = planted(30, [3])
    args = {"k": 2, **kw}
    with pytest.raises(exc, match=match):
        randomized_eigh(A, **args)


@pytest.mark.parametrize("A", [[[1.0, 0.0], [0.0, 1.0]], "matrix", np.eye(3, dtype=complex),
                               sp.csr_matrix(np.eye(3, dtype=complex))])
def test_bad_type(A):
    with pytest.raises(TypeError):
        randomized_eigh(A, 1)


def test_too_small():
    with pytest.raises(ValueError, match="at least 2"):
        randomized_eigh(np.ones((1, 1)), 1)


# ------------------------------------------------------------------ the kernels alone


@pytest.mark.parametrize("w", [1, 7, 64, 65, 130])
@pytest.mark.parametrize("itype", [np.int32, np.int64])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_spmm_matches_scipy(w, itype, num_threads):
    rng = np.random.default_rng(w)
    A = sp.random(301, 257, density=0.05, random_state=3, format="lil", dtype=np.float32)
    A[5:9] = 0  # empty rows
    A = sp.csr_matrix(A)
    X = rng.standard_normal((257, w))
    YT = np.zeros((w, 301))
    _core.csr_spmm(A.indptr.astype(np.int64), A.indices.astype(itype), A.data, 257,
                   np.ascontiguousarray(X.T), YT, num_threads)
    ref = A.astype(np.float64) @ X.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(YT.T, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_spmm_checks_its_arguments():
    A = sp.random(10, 8, density=0.3, random_state=0, format="csr", dtype=np.float32)
    ip, ix = A.indptr.astype(np.int64), A.indices.astype(np.int32)
    X, Y = np.zeros((3, 8)), np.zeros((3, 10))
    with pytest.raises(ValueError, match="xt must"):
        _core.csr_spmm(ip, ix, A.data, 8, np.zeros((3, 7)), Y, 1)
    with pytest.raises(ValueError, match="yt must"):
        _core.csr_spmm(ip, ix, A.data, 8, X, np.zeros((3, 9)), 1)
    with pytest.raises(ValueError, match="column indices"):
        _core.csr_spmm(ip, ix, A.data, 4, np.zeros((3, 4)), Y, 1)
    bad = ip.copy()
    bad[-1] += 1
    with pytest.raises(ValueError, match="indptr"):
        _core.csr_spmm(bad, ix, A.data, 8, X, Y, 1)
    with pytest.raises(ValueError, match="differ in length"):
        _core.csr_spmm(ip, ix, A.data[:-1], 8, X, Y, 1)


def test_eigh_bindings_check_outputs():
    A = np.ascontiguousarray(planted(30, [3]))
    with pytest.raises(ValueError, match="out_vectors"):
        _core.eigh_dense(A, 2, 4, 2, True, 0, np.empty(2), np.empty((30, 3), np.float32), 1)
    with pytest.raises(ValueError, match="out_values"):
        _core.eigh_dense(A, 2, 4, 2, True, 0, np.empty(3), np.empty((30, 2), np.float32), 1)
    S = sp.csr_matrix(A.astype(np.float32))
    ip, ix = S.indptr.astype(np.int64), S.indices
    bad = ix.copy()
    bad[0] = 30
    with pytest.raises(ValueError, match="column indices"):
        _core.eigh_csr(ip, bad, S.data, 2, 4, 2, True, 0, np.empty(2),
                       np.empty((30, 2), np.float32), 1)


def test_asymmetry_needs_sorted_rows():
    A = sp.csr_matrix(np.array([[0, 1, 2], [1, 0, 0], [2, 0, 0]], dtype=np.float32))
    ix = A.indices.copy()
    ix[:2] = ix[:2][::-1]
    with pytest.raises(ValueError, match="sorted"):
        _core.csr_asymmetry(A.indptr.astype(np.int64), ix, A.data, 1)


def test_exported():
    assert labelemb.randomized_eigh is randomized_eigh
    assert "randomized_eigh" in labelemb.__all__
