import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from labelemb import metrics, topk

# Two samples, ranked predictions and true sets small enough to check by hand.
PRED = np.array([[3, 1, 0, 2],
                 [0, 2, 4, 1]])
TRUE = [[1, 2], [4]]


def test_hand_computed():
    assert metrics.precision_at_k(PRED, TRUE, 1) == 0.0
    assert metrics.precision_at_k(PRED, TRUE, 2) == pytest.approx((1 / 2 + 0) / 2)
    assert metrics.precision_at_k(PRED, TRUE, 3) == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert metrics.recall_at_k(PRED, TRUE, 3) == pytest.approx((1 / 2 + 1) / 2)
    assert metrics.recall_at_k(PRED, TRUE, 4) == pytest.approx(1.0)
    # nDCG@3: sample 0 hits at rank 2 -> (1/log2 3) / (1 + 1/log2 3); sample 1 at rank 3
    # -> (1/2) / 1.
    n0 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert metrics.ndcg_at_k(PRED, TRUE, 3) == pytest.approx((n0 + 0.5) / 2)
    # AP@4: sample 0 hits at ranks 2 and 4 -> (1/2 + 2/4) / 2; sample 1 at rank 3 -> 1/3.
    assert metrics.map_at_k(PRED, TRUE, 4) == pytest.approx(((0.5 + 0.5) / 2 + 1 / 3) / 2)
    # AP@2 divides by min(k, |Y|): sample 0 -> (1/2) / 2; sample 1 -> 0.
    assert metrics.map_at_k(PRED, TRUE, 2) == pytest.approx((0.25 + 0) / 2)
    # coverage@3: labels {1, 2, 4} occur; 1 and 4 are found.
    assert metrics.coverage_at_k(PRED, TRUE, 3) == pytest.approx(2 / 3)


def test_psp_hand_computed():
    counts = np.array([50, 5, 1, 100, 0])
    N, A, B = 200, 0.55, 1.5
    C = (np.log(N) - 1) * (B + 1) ** A
    inv_p = 1 + C * (counts + B) ** -A
    np.testing.assert_allclose(1 / metrics.propensity(counts, N), inv_p)
    # k = 2: sample 0 hits label 1 at rank 2, sample 1 no hit.
    raw = (inv_p[1] / 2 + 0) / 2
    assert metrics.psp_at_k(PRED, TRUE, 2, counts, N, normalize=False) == pytest.approx(raw)
    best = (inv_p[2] + inv_p[1]) / 2 + inv_p[4] / 2  # each sample's rarest true labels first
    assert metrics.psp_at_k(PRED, TRUE, 2, counts, N) == pytest.approx(raw * 2 / best)
    # A ranking that puts every true label first, rarest first, scores 1 when normalised.
    ideal = np.array([[2, 1, 0, 3], [4, 0, 1, 2]])
    assert metrics.psp_at_k(ideal, TRUE, 2, counts, N) == pytest.approx(1.0)
    # Other propensity parameters change the weights.
    assert metrics.psp_at_k(PRED, TRUE, 2, counts, N, A=0.6, B=2.6, normalize=False) != raw


def test_empty_samples_skip_or_zero():
    pred = np.array([[0, 1], [1, 0], [2, 1]])
    true = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0]]))
    assert metrics.precision_at_k(pred, true, 1) == pytest.approx(0.5)  # rows 0 and 2
    assert metrics.precision_at_k(pred, true, 1, empty="zero") == pytest.approx(1 / 3)
    assert metrics.recall_at_k(pred, true, 2, empty="zero") == pytest.approx(2 / 3)
    r = metrics.report(pred, true, ks=[1, 2])
    assert r["n_samples"] == 2
    assert metrics.report(pred, true, ks=1, empty="zero")["n_samples"] == 3
    none = sp.csr_matrix((3, 3))
    assert np.isnan(metrics.precision_at_k(pred, none, 1))
    assert np.isnan(metrics.coverage_at_k(pred, none, 1))


def test_input_forms_agree():
    true_csr = sp.csr_matrix((np.ones(3), ([0, 0, 1], [1, 2, 4])), shape=(2, 5))
    dense = true_csr.toarray()
    for t in (TRUE, true_csr, dense, true_csr.tocoo()):
        assert metrics.precision_at_k(PRED, t, 3) == pytest.approx(1 / 3)
    # duplicates in a true set count once; padding (-1) never hits
    assert metrics.recall_at_k(PRED, [[1, 2, 2], [4]], 3) == pytest.approx(0.75)
    padded = np.array([[1, -1, -1], [4, -1, -1]])
    assert metrics.precision_at_k(padded, TRUE, 3) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(padded, TRUE, 3) == pytest.approx(0.75)


def test_report_matches_functions():
    rng = np.random.default_rng(0)
    pred = np.argsort(-rng.random((50, 30)), axis=1)[:, :10]
    true = [list(rng.choice(30, size=rng.integers(0, 5), replace=False)) for _ in range(50)]
    counts = rng.integers(0, 100, 30)
    r = metrics.report(pred, true, ks=(1, 5), label_counts=counts, n_train=500, n_labels=30)
    for k in (1, 5):
        assert r[f"precision@{k}"] == metrics.precision_at_k(pred, true, k, n_labels=30)
        assert r[f"recall@{k}"] == metrics.recall_at_k(pred, true, k, n_labels=30)
        assert r[f"ndcg@{k}"] == metrics.ndcg_at_k(pred, true, k, n_labels=30)
        assert r[f"map@{k}"] == metrics.map_at_k(pred, true, k, n_labels=30)
        assert r[f"coverage@{k}"] == metrics.coverage_at_k(pred, true, k, n_labels=30)
        assert r[f"psp@{k}"] == metrics.psp_at_k(pred, true, k, counts, 500, n_labels=30)
    assert "psp@1" not in metrics.report(pred, true, ks=[1], n_labels=30)


def _scores_without_ties(rng, n, L):
    return rng.permutation(n * L).reshape(n, L).astype(np.float64) / (n * L)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 20), L=st.integers(2, 15), seed=st.integers(0, 2**16),
       kfrac=st.floats(0, 1))
def test_ndcg_matches_sklearn(n, L, seed, kfrac):
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    y = (rng.random((n, L)) < 0.3).astype(int)
    y[y.sum(1) == 0, rng.integers(0, L)] = 1  # sklearn counts empty rows as 0; we skip them
    scores = _scores_without_ties(rng, n, L)
    k = max(1, int(round(kfrac * L)))
    pred = np.argsort(-scores, axis=1)[:, :k]
    ours = metrics.ndcg_at_k(pred, sp.csr_matrix(y), k)
    assert ours == pytest.approx(skm.ndcg_score(y, scores, k=k))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 20), L=st.integers(2, 15), seed=st.integers(0, 2**16))
def test_full_map_matches_sklearn_lrap(n, L, seed):
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    y = (rng.random((n, L)) < 0.3).astype(int)
    y[y.sum(1) == 0, rng.integers(0, L)] = 1
    scores = _scores_without_ties(rng, n, L).astype(np.float32)
    # the decoder's own top-L of those scores
    idx, _ = topk(scores, np.eye(L, dtype=np.float32), L)
    ours = metrics.map_at_k(idx, sp.csr_matrix(y), L)
    assert ours == pytest.approx(skm.label_ranking_average_precision_score(y, scores))


def test_large_vectorised():
    rng = np.random.default_rng(1)
    n, L = 20000, 5000
    pred = rng.integers(0, L, size=(n, 100))
    pred = np.sort(pred, axis=1)
    pred[:, 1:][pred[:, 1:] == pred[:, :-1]] = -1  # make rows distinct (pad repeats)
    rows = rng.integers(0, n, 200_000)
    true = sp.csr_matrix((np.ones(len(rows)), (rows, rng.integers(0, L, len(rows)))), shape=(n, L))
    r = metrics.report(pred, true, ks=(1, 10, 100))
    assert 0 <= r["precision@100"] <= 1 and 0 <= r["map@100"] <= 1


# ---------------------------------------------------------------- bad input
def test_bad_indices():
    with pytest.raises(ValueError, match="2-D"):
        metrics.precision_at_k(np.array([1, 2]), TRUE, 1)
    with pytest.raises(TypeError, match="integer"):
        metrics.precision_at_k(PRED.astype(float), TRUE, 1)
    with pytest.raises(ValueError, match="negative"):
        metrics.precision_at_k(PRED - 2, TRUE, 1)
    with pytest.raises(ValueError, match="twice"):
        metrics.precision_at_k(np.array([[1, 1], [0, 2]]), TRUE, 1)
    with pytest.raises(TypeError, match="sparse"):
        metrics.precision_at_k(sp.csr_matrix(PRED), TRUE, 1)


def test_bad_true_labels():
    with pytest.raises(ValueError, match="same samples"):
        metrics.precision_at_k(PRED, [[1]], 1)
    with pytest.raises(TypeError, match="names"):
        metrics.precision_at_k(PRED, [["a"], ["b"]], 1)
    with pytest.raises(ValueError, match="negative"):
        metrics.precision_at_k(PRED, [[-1], [2]], 1)


@pytest.mark.parametrize("k", [0, 5])
def test_k_out_of_range(k):
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        metrics.precision_at_k(PRED, TRUE, k)
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        metrics.report(PRED, TRUE, ks=[1, k])


def test_bad_options():
    with pytest.raises(TypeError, match="k must be an int"):
        metrics.recall_at_k(PRED, TRUE, 1.0)
    with pytest.raises(ValueError, match="empty"):
        metrics.ndcg_at_k(PRED, TRUE, 1, empty="drop")
    with pytest.raises(ValueError, match="both"):
        metrics.report(PRED, TRUE, ks=[1], label_counts=np.ones(5))
    with pytest.raises(ValueError, match="n_train"):
        metrics.psp_at_k(PRED, TRUE, 1, np.ones(5), 2)
    with pytest.raises(ValueError, match="label_counts"):
        metrics.psp_at_k(PRED, TRUE, 1, -np.ones(5), 100)
    with pytest.raises(ValueError, match="one training count per label"):
        metrics.psp_at_k(PRED, TRUE, 1, np.ones(3), 100)
    with pytest.raises(ValueError, match="A must be"):
        metrics.psp_at_k(PRED, TRUE, 1, np.ones(5), 100, A=0)
