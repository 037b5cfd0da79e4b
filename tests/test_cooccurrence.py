import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import labelemb
from labelemb import Cooccurrence, cooccurrence


def reference(Y) -> sp.csr_matrix:
    B = sp.csr_matrix(Y, dtype=np.float64)
    B.data[:] = 1.0
    B.sum_duplicates()
    B.data[:] = 1.0
    return (B.T @ B).astype(np.int64).tocsr()


def assert_matches(c: Cooccurrence, Y):
    ref = reference(Y)
    full = c.full()
    assert full.shape == ref.shape
    assert (full != ref).nnz == 0
    np.testing.assert_array_equal(c.label_counts, ref.diagonal())
    assert c.n_samples == Y.shape[0]
    assert c.label_counts.dtype == np.int64
    # the stored triangle is strict upper, with sorted columns
    coo = c.pairs.tocoo()
    assert np.all(coo.row < coo.col)
    assert c.pairs.has_sorted_indices


label_sets = st.lists(st.lists(st.integers(0, 29), max_size=8), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(sets=label_sets, threads=st.sampled_from([1, 2]))
def test_matches_scipy_on_lists(sets, threads):
    L = 30
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.fromiter((x for s in sets for x in s), dtype=np.int64, count=len(rows))
    Y = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), L))
    c = cooccurrence(sets, n_labels=L, num_threads=threads)
    assert_matches(c, Y)


def test_thread_counts_identical():
    Y = labelemb.make_topic_labels(3000, 400, seed=1).labels
    a = cooccurrence(Y, num_threads=1)
    b = cooccurrence(Y, num_threads=2)
    assert a == b
    assert_matches(b, Y)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "bsr"])
def test_any_sparse_format(fmt):
    Y = labelemb.make_topic_labels(500, 60, seed=2).labels
    c = cooccurrence(Y.asformat(fmt))
    assert_matches(c, Y)


def test_sparse_array_and_dense_and_bool():
    Y = labelemb.make_topic_labels(300, 40, seed=3).labels
    assert_matches(cooccurrence(sp.csr_array(Y)), Y)
    assert_matches(cooccurrence(Y.toarray()), Y)
    assert_matches(cooccurrence(Y.toarray().astype(bool)), Y)


def test_non_canonical_csr_and_values():
    # unsorted columns, duplicates, explicit zeros and non-unit values
    indptr = np.array([0, 4, 6, 9])
    indices = np.array([3, 1, 3, 0, 2, 2, 4, 0, 1])
    data = np.array([1, 2, 5, 1, 0, 1, 3, 1, 1], dtype=np.float32)
    Y = sp.csr_matrix((data, indices, indptr), shape=(3, 5))
    c = cooccurrence(Y)
    # row 0 = {0, 1, 3}; row 1 = {2} (one zero, one 1); row 2 = {0, 1, 4}
    expected = [[0, 1, 3], [2], [0, 1, 4]]
    assert c == cooccurrence(expected, n_labels=5)
    np.testing.assert_array_equal(c.label_counts, [2, 2, 1, 1, 1])


def test_repeated_label_counts_once():
    c = cooccurrence([[1, 1, 2], [2, 2]])
    np.testing.assert_array_equal(c.label_counts, [0, 1, 2])
    assert c.full()[1, 2] == 1


def test_names_build_sorted_vocabulary():
    sets = [["sky", "beach"], ["sea", "sky", "beach"], ["crane"], []]
    c = cooccurrence(sets)
    assert c.label_names == ["beach", "crane", "sea", "sky"]
    ids = [[c.label_names.index(x) for x in s] for s in sets]
    assert c == Cooccurrence(4, c.label_counts, c.pairs, c.label_names)
    b = cooccurrence(ids, n_labels=4)
    assert (b.full() != c.full()).nnz == 0
    assert c.n_samples == 4


def test_chunks_equal_whole():
    Y = labelemb.make_topic_labels(2000, 100, seed=4).labels
    whole = cooccurrence(Y)
    chunks = (Y[i:i + 300] for i in range(0, Y.shape[0], 300))
    assert cooccurrence(chunks) == whole
    assert cooccurrence([Y[:700], Y[700:]]) == whole


def test_streamed_id_lists_equal_whole():
    rng = np.random.default_rng(0)
    sets = [rng.choice(50, size=rng.integers(0, 6), replace=False).tolist() for _ in range(500)]
    whole = cooccurrence(sets, n_labels=50)
    stream = iter([sets[:100], sets[100:250], sets[250:]])
    assert cooccurrence(stream, n_labels=50) == whole


def test_streamed_names_equal_whole():
    rng = np.random.default_rng(1)
    vocab = [f"tag{i:02d}" for i in range(40)]
    sets = [[vocab[j] for j in rng.choice(40, size=rng.integers(1, 5), replace=False)]
            for _ in range(300)]
    whole = cooccurrence(sets)
    streamed = cooccurrence(iter([sets[:50], sets[50:51], sets[51:]]))
    assert streamed.label_names == whole.label_names
    assert streamed == whole


def test_shards_add():
    Y = labelemb.make_topic_labels(1000, 80, seed=5).labels
    a, b = cooccurrence(Y[:400]), cooccurrence(Y[400:])
    assert a + b == cooccurrence(Y)


def test_adding_different_spaces_fails():
    a = cooccurrence([[0, 1]], n_labels=3)
    b = cooccurrence([[0, 1]], n_labels=4)
    with pytest.raises(ValueError, match="labels"):
        a + b
    c = cooccurrence([["a", "b"]])
    d = cooccurrence([["a", "c"]])
    with pytest.raises(ValueError, match="label_names"):
        c + d


def test_pickle_is_compact_and_equal():
    Y = labelemb.make_topic_labels(2000, 200, seed=6).labels
    c = cooccurrence(Y)
    blob = pickle.dumps(c, protocol=pickle.HIGHEST_PROTOCOL)
    arrays = c.pairs.data.nbytes + c.pairs.indices.nbytes + c.pairs.indptr.nbytes
    assert len(blob) < arrays + c.label_counts.nbytes + 2000
    assert pickle.loads(blob) == c


def test_labels_never_seen_are_zero():
    c = cooccurrence([[0, 2]], n_labels=5)
    np.testing.assert_array_equal(c.label_counts, [1, 0, 1, 0, 0])
    assert c.full()[4].nnz == 0


def test_empty_label_sets_allowed():
    c = cooccurrence([[], [0], []], n_labels=2)
    assert c.n_samples == 3 and c.n_pairs == 0


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "labels, kwargs, exc, match",
    [
        ([[0, -1]], {}, ValueError, "negative"),
        ([[0, 5]], {"n_labels": 3}, ValueError, "n_labels"),
        ([[0.0, 1.0]], {}, TypeError, "float"),
        ([[0, 1.5]], {}, TypeError, "float"),
        ([["a", 1]], {}, TypeError, "mixes"),
        ([[True, False]], {}, TypeError, "bool"),
        ([], {}, ValueError, "empty"),
        (np.zeros(5), {}, TypeError, "label set"),
        (np.zeros((2, 3, 4)), {}, ValueError, "3-D"),
        (np.array([[0, np.nan]]), {}, ValueError, "NaN"),
        (sp.csr_matrix(np.array([[0, np.inf]])), {}, ValueError, "NaN or Inf"),
        ([[0, 1], 3], {}, TypeError, "labels\\[1\\]"),
        ("abc", {}, TypeError, "unsupported"),
        ([[0, 1]], {"n_labels": 1.5}, TypeError, "n_labels"),
        ([[0, 1]], {"num_threads": -1}, ValueError, "num_threads"),
        ([[0, 1]], {"num_threads": 1.0}, TypeError, "num_threads"),
        (iter([]), {}, ValueError, "empty"),
    ],
)
def test_bad_input(labels, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cooccurrence(labels, **kwargs)


def test_chunks_of_different_spaces_fail():
    with pytest.raises(ValueError, match="label space"):
        cooccurrence(iter([sp.csr_matrix((2, 3)), sp.csr_matrix((2, 4))]))
    with pytest.raises(ValueError, match="label space"):
        cooccurrence(iter([[["a"]], [[1]]]))


def test_kernel_rejects_malformed_csr_without_crashing():
    core = labelemb._core
    ok_ptr = np.array([0, 2], dtype=np.int64)
    with pytest.raises(ValueError, match="indices"):
        core.cooccurrence(ok_ptr, np.array([0, 7], dtype=np.int32), 3, 1)
    with pytest.raises(ValueError, match="indptr"):
        core.cooccurrence(np.array([0, 5], dtype=np.int64), np.array([0, 1], dtype=np.int32), 3, 1)
    with pytest.raises(ValueError, match="non-decreasing"):
        core.cooccurrence(np.array([0, 2, 1, 2], dtype=np.int64),
                          np.array([0, 1], dtype=np.int32), 3, 1)
    with pytest.raises(TypeError):  # no silent dtype conversion
        core.cooccurrence(ok_ptr.astype(np.int32), np.array([0, 1], dtype=np.int32), 3, 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7), st.integers(1, 40), st.integers(0, 2**32 - 1), st.booleans(),
       st.sampled_from([np.int32, np.int64]))
def test_sum_counts_kernel_matches_scipy(k, L, seed, canonical, itype):
    """The C++ sum of k count matrices: canonical rows are merged run against run, other
    rows (unsorted, repeated columns) take the mark path; both equal scipy's sum."""
    from labelemb import _core

    rng = np.random.default_rng(seed)
    parts, want = [], sp.csr_matrix((L, L), dtype=np.int64)
    for _ in range(k):
        m = sp.random(L, L, density=rng.uniform(0, 0.5), random_state=rng,
                      data_rvs=lambda n: rng.integers(1, 1000, n)).tocsr().astype(np.int64)
        want = want + m
        indptr, indices, data = m.indptr.astype(np.int64), m.indices.astype(itype), m.data
        if not canonical and m.nnz:
            # shuffle each row and split one entry in two (a repeated column)
            rows = np.repeat(np.arange(L), np.diff(indptr))
            order = np.lexsort((rng.random(m.nnz), rows))
            indices, data = indices[order].copy(), data[order].copy()
            r = int(rows[0])
            indices = np.insert(indices, indptr[r], indices[indptr[r]])
            data = np.insert(data, indptr[r], 7)
            data[indptr[r] + 1] -= 7
            indptr = indptr.copy()
            indptr[r + 1:] += 1
        parts.append((indptr, np.ascontiguousarray(indices), np.ascontiguousarray(data)))
    ip, ix, dt = _core.sum_counts([p[0] for p in parts], [p[1] for p in parts],
                                  [p[2] for p in parts], L, 2)
    got = sp.csr_matrix((dt, ix, ip), shape=(L, L))
    want.sum_duplicates()
    want.sort_indices()
    # same sparsity (explicit zeros from cancelling values are kept as entries) and values
    np.testing.assert_array_equal(got.toarray(), want.toarray())
    for i in range(L):
        row = ix[ip[i]:ip[i + 1]]
        assert np.all(np.diff(row) > 0)
