import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import labelemb
from labelemb import cooccurrence, pmi_matrix


def reference_pmi(Y, kind="ppmi", shift=0.0, alpha=1.0, min_count=1, diagonal="self"):
    B = (sp.csr_matrix(Y) != 0).astype(np.float64)
    n = B.shape[0]
    C = (B.T @ B).toarray()
    c = np.diag(C).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = c / n
        ca = np.where(c > 0, c ** alpha, 0.0)
        q = ca / ca.sum() * (c.sum() / n)
        h = 0.5 * (np.log(p) + np.log(q))
        P = np.log(C / n) - h[:, None] - h[None, :] - shift
    keep = (C >= min_count) & (C > 0)
    if kind == "ppmi":
        keep &= P > 0
    np.fill_diagonal(keep, False)
    if diagonal == "self":
        d = np.diag(P).copy()
        dk = (c >= min_count) & (c > 0) & (~np.isnan(d))
        if kind == "ppmi":
            dk &= d > 0
        keep[np.diag_indices_from(keep)] = dk
    return np.where(keep, P, 0.0), keep, P


def check(Y, **kw):
    P = pmi_matrix(cooccurrence(Y), **kw)
    ref, keep, raw = reference_pmi(Y, **kw)
    assert P.dtype == np.float32
    assert P.has_sorted_indices
    # Values within rounding of 0 may fall either side of the PPMI cut.
    clear = ~(np.abs(raw) < 1e-9)
    np.testing.assert_array_equal((P.toarray() != 0)[clear], (keep & (ref != 0))[clear])
    np.testing.assert_allclose(P.toarray(), ref, rtol=1e-5, atol=1e-5)
    assert (P != P.T).nnz == 0


@settings(max_examples=40, deadline=None)
@given(
    sets=st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=5), min_size=2, max_size=40),
    kind=st.sampled_from(["ppmi", "pmi"]),
    shift=st.sampled_from([0.0, np.log(2.0)]),
    alpha=st.sampled_from([1.0, 0.75]),
    min_count=st.sampled_from([1, 2]),
    diagonal=st.sampled_from(["self", "zero"]),
)
def test_matches_numpy(sets, kind, shift, alpha, min_count, diagonal):
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = [x for s in sets for x in s]
    Y = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), 12))
    check(Y, kind=kind, shift=shift, alpha=alpha, min_count=min_count, diagonal=diagonal)


def test_textbook_formula_and_self_information():
    sets = [[0, 1], [0, 1], [0], [2]]
    P = pmi_matrix(sets, kind="pmi").toarray()
    n = 4
    assert P[0, 1] == pytest.approx(np.log(2 * n / (3 * 2)))
    assert P[0, 0] == pytest.approx(np.log(n / 3))
    assert P[0, 2] == 0  # never seen together


def test_threads_identical_and_topic_data():
    Y = labelemb.make_topic_labels(2000, 150, seed=7).labels
    c = cooccurrence(Y)
    a = pmi_matrix(c, num_threads=1)
    b = pmi_matrix(c, num_threads=2)
    assert (a != b).nnz == 0
    check(Y)


def test_unseen_labels_give_empty_rows():
    P = pmi_matrix(cooccurrence([[0, 1], [1]], n_labels=4))
    assert P[2].nnz == 0 and P[3].nnz == 0
    assert np.all(np.isfinite(P.data))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "svd"}, "kind"),
        ({"diagonal": "one"}, "diagonal"),
        ({"shift": -1.0}, "shift"),
        ({"shift": float("nan")}, "shift"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"min_count": 0}, "min_count"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pmi_matrix([[0, 1]], **kwargs)
