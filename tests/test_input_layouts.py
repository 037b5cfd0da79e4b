"""Property tests: every public function gives the same answer whatever the memory layout
and dtype of its input arrays (C or Fortran order, strided views, read-only, float16 /
float32 / float64 / bool, int32 / int64 indices, non-canonical sparse matrices, 0 and 1
rows), never writes to its inputs, and agrees with a numpy / scipy reference."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import labelemb
from labelemb import metrics

LAYOUTS = ["C", "F", "strided", "reversed", "readonly"]
SETTINGS = settings(max_examples=25, deadline=None)


def relayout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values as `a` in another memory layout (a view where that is the point)."""
    a = np.array(a)
    if layout == "F":
        out = np.asfortranarray(a)
    elif layout == "strided":  # every other element of a larger buffer
        big = np.zeros(tuple(2 * s + 1 for s in a.shape), dtype=a.dtype)
        big[tuple(slice(1, None, 2) for _ in a.shape)] = a
        out = big[tuple(slice(1, None, 2) for _ in a.shape)]
    elif layout == "reversed":  # negative strides
        rev = np.ascontiguousarray(a[::-1])
        out = rev[::-1]
    else:
        out = np.ascontiguousarray(a)
    if layout == "readonly":
        out.setflags(write=False)
    np.testing.assert_array_equal(out, a)
    return out


def frozen(*arrays):
    """Copies of the inputs, to check afterwards that a call did not modify them."""
    return [np.array(a, copy=True) for a in arrays]


def dense_matrix(draw, n, m, seed_name="seed"):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label=seed_name))
    return rng.standard_normal((n, m))


# ---------------------------------------------------------------- topk and threshold
@st.composite
def search_case(draw):
    n = draw(st.integers(0, 9))
    L = draw(st.integers(1, 40))
    d = draw(st.integers(1, 8))
    Q = dense_matrix(draw, n, d, "q")
    V = dense_matrix(draw, L, d, "v")
    if draw(st.booleans()):  # ties: repeated label vectors
        V[L // 2:] = V[: L - L // 2]
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    return (Q.astype(dtype), V.astype(dtype), draw(st.sampled_from(LAYOUTS)),
            draw(st.sampled_from(LAYOUTS)))


def float64_scores(Q, V):
    return np.asarray(Q, np.float64) @ np.asarray(V, np.float64).T


@SETTINGS
@given(case=search_case(), k=st.integers(1, 40), threads=st.sampled_from([1, 2]))
def test_topk_any_layout(case, k, threads):
    Q, V, lq, lv = case
    k = min(k, V.shape[0])
    q, v = relayout(Q, lq), relayout(V, lv)
    before = frozen(q, v)
    idx, s = labelemb.topk(q, v, k, num_threads=threads)
    ref_idx, ref_s = labelemb.topk(np.ascontiguousarray(Q, np.float32),
                                   np.ascontiguousarray(V, np.float32), k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(s, ref_s)
    for a, b in zip(before, (q, v)):
        np.testing.assert_array_equal(a, b)
    assert idx.shape == s.shape == (Q.shape[0], k)
    # reference: the reported scores are the exact ones (float64 rounded once), ranked,
    # and no label left out scores above the k-th
    exact = float64_scores(Q.astype(np.float32), V.astype(np.float32))
    for r in range(Q.shape[0]):
        np.testing.assert_array_equal(s[r], exact[r, idx[r]].astype(np.float32))
        assert np.all(np.diff(s[r]) <= 0)
        rest = np.setdiff1d(np.arange(V.shape[0]), idx[r])
        if len(rest):
            assert exact[r, rest].max().astype(np.float32) <= s[r, -1]


@SETTINGS
@given(case=search_case(), level=st.floats(-2, 2), threads=st.sampled_from([1, 2]))
def test_threshold_any_layout(case, level, threads):
    Q, V, lq, lv = case
    q, v = relayout(Q, lq), relayout(V, lv)
    got = labelemb.threshold(q, v, level, num_threads=threads)
    ref = labelemb.threshold(np.ascontiguousarray(Q, np.float32),
                             np.ascontiguousarray(V, np.float32), level)
    assert got.shape == ref.shape == (Q.shape[0], V.shape[0])
    np.testing.assert_array_equal(got.indptr, ref.indptr)
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_array_equal(got.data, ref.data)
    exact = float64_scores(Q.astype(np.float32), V.astype(np.float32)).astype(np.float32)
    np.testing.assert_array_equal(got.toarray() != 0, exact > np.float32(level))


@pytest.mark.parametrize("dtype", [bool, np.int32, np.complex64])
def test_search_refuses_non_float(dtype):
    a = np.ones((2, 3), dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        labelemb.topk(a, np.ones((4, 3), np.float32), 1)
    with pytest.raises(TypeError, match="dtype"):
        labelemb.threshold(np.ones((2, 3), np.float32), a, 0.5)


# ---------------------------------------------------------------- counts and PMI
@st.composite
def label_matrix(draw):
    """(dense 0/1 reference, the same labels in some input form)."""
    n = draw(st.integers(0, 12))
    L = draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    Y = (rng.random((n, L)) < draw(st.floats(0, 0.7))).astype(np.int8)
    form = draw(st.sampled_from(["dense", "csr", "csr-noncanonical", "csc", "coo"]))
    if form == "dense":
        dtype = draw(st.sampled_from([bool, np.int8, np.int64, np.float16, np.float32,
                                      np.float64]))
        return Y, relayout(Y.astype(dtype), draw(st.sampled_from(LAYOUTS)))
    rows, cols = np.nonzero(Y)
    if form == "csr-noncanonical":  # repeated and unsorted entries
        extra = rng.random(len(rows)) < 0.5
        rows = np.concatenate([rows, rows[extra]])
        cols = np.concatenate([cols, cols[extra]])
        perm = rng.permutation(len(rows))
        rows, cols = rows[perm], cols[perm]
    itype = draw(st.sampled_from([np.int32, np.int64]))
    data = np.ones(len(rows), dtype=draw(st.sampled_from([np.float32, np.float64, bool])))
    coo = sp.coo_matrix((data, (rows.astype(itype), cols.astype(itype))), shape=Y.shape)
    if form == "coo":
        m = coo
    elif form == "csc":
        m = coo.tocsc()
    else:
        order = np.argsort(rows, kind="stable")  # rows grouped, columns as they came
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
        m = sp.csr_matrix((data[order], cols[order].astype(itype), indptr.astype(itype)),
                          shape=Y.shape)
        if form == "csr":
            m.sum_duplicates()
    if draw(st.booleans()):
        for arr in ("data", "indices", "indptr", "row", "col"):
            if hasattr(m, arr):
                getattr(m, arr).setflags(write=False)
    return Y, m


def reference_counts(Y):
    B = Y.astype(np.int64)
    return B.T @ B


@SETTINGS
@given(case=label_matrix(), threads=st.sampled_from([1, 2]))
def test_cooccurrence_any_form(case, threads):
    Y, labels = case
    if Y.shape[0] == 0:
        with pytest.raises(ValueError, match="empty"):
            labelemb.cooccurrence(labels, num_threads=threads)
        return
    c = labelemb.cooccurrence(labels, num_threads=threads)
    C = reference_counts(Y)
    np.testing.assert_array_equal(c.full().toarray(), C)
    np.testing.assert_array_equal(c.label_counts, np.diag(C))
    assert c.n_samples == Y.shape[0]


@SETTINGS
@given(case=label_matrix(), kind=st.sampled_from(["ppmi", "pmi"]))
def test_pmi_matrix_any_form(case, kind):
    Y, labels = case
    if Y.shape[0] == 0:
        with pytest.raises(ValueError, match="empty"):
            labelemb.pmi_matrix(labels, kind=kind)
        return
    P = labelemb.pmi_matrix(labels, kind=kind)
    ref = labelemb.pmi_matrix(Y.astype(bool), kind=kind)
    assert (P != ref).nnz == 0
    # numpy reference on the co-occurring pairs (the diagonal is the self-information)
    C = reference_counts(Y).astype(np.float64)
    n, c = Y.shape[0], np.diag(C)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.log(C * n / np.outer(c, c))
    np.fill_diagonal(want, np.where(c > 0, np.log(n / np.maximum(c, 1)), np.nan))
    seen = C > 0
    off = seen & ~np.eye(len(c), dtype=bool)
    if kind == "ppmi":
        off &= want > 0
    dense = P.toarray()
    np.testing.assert_allclose(dense[off], want[off], rtol=1e-5, atol=1e-6)
    assert np.all(dense[~seen] == 0)


# ---------------------------------------------------------------- eigendecomposition
@st.composite
def symmetric_case(draw):
    n = draw(st.integers(2, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    A = rng.standard_normal((n, n))
    A = (A + A.T) / 2
    if draw(st.booleans()):
        A[rng.random((n, n)) < 0.6] = 0
        A = np.triu(A) + np.triu(A, 1).T
    k = draw(st.integers(1, n - 1))
    return A, k


@SETTINGS
@given(case=symmetric_case(), dtype=st.sampled_from([np.float16, np.float32, np.float64]),
       layout=st.sampled_from(LAYOUTS))
def test_randomized_eigh_dense_any_layout(case, dtype, layout):
    A, k = case
    A = A.astype(dtype)
    a = relayout(A, layout)
    before = frozen(a)
    w, U = labelemb.randomized_eigh(a, k)
    # float16 is computed in float64, float32 in float32: the same call on C order
    same = A.astype(np.float32 if dtype == np.float32 else np.float64)
    w_ref, U_ref = labelemb.randomized_eigh(same, k)
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(U, U_ref)
    np.testing.assert_array_equal(before[0], a)
    # numpy reference: the k largest eigenvalues (3 l >= n here: solved exactly)
    ref = np.linalg.eigvalsh(A.astype(np.float64))[::-1][:k]
    tol = 1e-2 if dtype == np.float16 else 1e-4
    np.testing.assert_allclose(w, ref, rtol=tol, atol=tol * max(1.0, abs(ref).max()))


@SETTINGS
@given(case=symmetric_case(), itype=st.sampled_from([np.int32, np.int64]),
       fmt=st.sampled_from(["csr", "csr-noncanonical", "csc", "coo"]), readonly=st.booleans())
def test_randomized_eigh_sparse_any_form(case, itype, fmt, readonly):
    A, k = case
    A = A.astype(np.float32)
    coo = sp.coo_matrix(A)
    if fmt == "csr-noncanonical":  # each entry split in two halves, rows reversed
        rows = np.concatenate([coo.row, coo.row])[::-1]
        cols = np.concatenate([coo.col, coo.col])[::-1]
        vals = np.concatenate([coo.data / 2, coo.data / 2])[::-1]
        order = np.argsort(rows, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=A.shape[0]))])
        m = sp.csr_matrix((vals[order], cols[order].astype(itype), indptr.astype(itype)),
                          shape=A.shape)
    elif fmt == "coo":
        m = sp.coo_matrix((coo.data, (coo.row.astype(itype), coo.col.astype(itype))),
                          shape=A.shape)
    else:
        m = sp.csr_matrix(A) if fmt == "csr" else sp.csc_matrix(A)
        m.indices = m.indices.astype(itype)
        m.indptr = m.indptr.astype(itype)
    if readonly:
        for arr in ("data", "indices", "indptr", "row", "col"):
            if hasattr(m, arr):
                getattr(m, arr).setflags(write=False)
    w, U = labelemb.randomized_eigh(m, k)
    w_ref, U_ref = labelemb.randomized_eigh(sp.csr_matrix(A), k)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-5)
    ref = np.linalg.eigvalsh(A.astype(np.float64))[::-1][:k]
    np.testing.assert_allclose(w, ref, rtol=1e-4, atol=1e-4 * max(1.0, abs(ref).max()))


# ---------------------------------------------------------------- metrics
@st.composite
def ranking_case(draw):
    n = draw(st.integers(0, 10))
    L = draw(st.integers(2, 12))
    K = draw(st.integers(1, L))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    idx = np.array([rng.permutation(L)[:K] for _ in range(n)], dtype=np.int64).reshape(n, K)
    if n and draw(st.booleans()):
        idx[0, -1] = -1  # an empty slot
    Y = (rng.random((n, L)) < 0.3).astype(np.int8)
    return idx, Y, K


@SETTINGS
@given(case=ranking_case(), itype=st.sampled_from([np.int32, np.int64, np.uint16]),
       layout=st.sampled_from(LAYOUTS),
       truth=st.sampled_from(["list", "bool", "float16", "float64-F", "csr-readonly",
                              "csr-counts"]))
def test_metrics_any_layout(case, itype, layout, truth):
    idx, Y, K = case
    if itype == np.uint16 and (idx < 0).any():
        itype = np.int32  # -1 (an empty slot) needs a signed type
    ind = relayout(idx.astype(itype), layout)
    if truth == "list":
        t = [np.flatnonzero(r).tolist() for r in Y]
    elif truth == "bool":
        t = Y.astype(bool)
    elif truth == "float16":
        t = relayout(Y.astype(np.float16), layout)
    elif truth == "float64-F":
        t = np.asfortranarray(Y.astype(np.float64))
    else:
        t = sp.csr_matrix(Y * (3 if truth == "csr-counts" else 1))
        for arr in (t.data, t.indices, t.indptr):
            arr.setflags(write=False)
    before = t.data.copy() if sp.issparse(t) else None
    L = Y.shape[1]
    for name in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"):
        f = getattr(metrics, name)
        got = f(ind, t, K, n_labels=L)
        ref = f(idx, Y.astype(bool), K, n_labels=L)
        np.testing.assert_array_equal(got, ref)
    if before is not None:
        np.testing.assert_array_equal(t.data, before)  # the caller's matrix is untouched
    # numpy reference for precision@K (samples without a true label are skipped)
    keep = Y.sum(axis=1) > 0
    if keep.any():
        hits = np.array([[j >= 0 and Y[r, j] for j in idx[r]] for r in range(len(idx))])
        np.testing.assert_allclose(metrics.precision_at_k(ind, t, K, n_labels=L),
                                   hits[keep].sum(axis=1).mean() / K)
