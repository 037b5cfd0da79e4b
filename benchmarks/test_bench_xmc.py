"""labelemb recipes against the extreme-classification tools (``xmc.py``, ``_peers.py``).

At the default small size: the synthetic sparse-text set (a few thousand rows), every peer
that imports, two labelemb recipes for one epoch, in one process; the table's schema is
checked and every trained method must beat popularity. With ``LABELEMB_BENCH=full`` the
full comparison runs on the data set named by ``LABELEMB_XMC_DATA`` (default: synthetic),
each method in its own process, and writes ``results/xmc_<data>.{json,md}``. Timing
figures are in the README's "Extreme classification" section, never asserted here.
"""

from __future__ import annotations

import os

import _peers
import numpy as np
import pytest
import scipy.sparse as sp
import xmc
from _util import RESULTS, bench_size

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def split():
    return xmc.load_split("synthetic")


# ---------------------------------------------------------------- helpers
def test_pad_ranked_orders_and_pads():
    idx, val = _peers.pad_ranked([([4, 2, 9], [0.1, 0.5, 0.5]), ([], [])], 4)
    assert idx.dtype == np.int64 and val.dtype == np.float32
    np.testing.assert_array_equal(idx, [[2, 9, 4, -1], [-1, -1, -1, -1]])  # ties: id order
    np.testing.assert_allclose(val[0, :3], [0.5, 0.5, 0.1])
    assert np.isneginf(val[0, 3]) and np.isneginf(val[1]).all()


def test_topk_of_csr_keeps_the_largest():
    S = sp.csr_matrix(np.array([[0.0, 3.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0]], np.float32))
    idx, _ = _peers.topk_of_csr(S, 2)
    np.testing.assert_array_equal(idx, [[1, 3], [-1, -1]])


def test_tail_topk_filters_in_rank_order():
    counts = np.array([50, 1, 40, 2, 3, 60])  # median 21.5: tail = labels 1, 3, 4
    tail = xmc.tail_labels(counts)
    np.testing.assert_array_equal(tail, [1, 3, 4])
    indices = np.array([[5, 4, 0, 1, -1], [0, 2, 5, -1, -1]])
    t = xmc.tail_topk(indices, tail, len(counts), k=3)
    np.testing.assert_array_equal(t, [[2, 0, -1], [-1, -1, -1]])  # 4 -> 2, 1 -> 0


def test_score_matches_hand_computed():
    Y = sp.csr_matrix(np.array([[1, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0]], np.float32))
    counts = np.array([5, 1, 3, 9, 2, 4])  # median 3.5: tail = labels 1, 2, 4
    idx = np.array([[2, 3, 0, 1, 4, 5], [0, 1, 2, 3, 4, 5]])
    s = xmc.score(idx, Y, counts, n_train=20)
    assert set(s) == set(xmc.METRICS)
    assert s["p@1"] == pytest.approx(0.5)
    assert s["p@5"] == pytest.approx((2 / 5 + 1 / 5) / 2)
    assert s["map@100"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 2) / 2)  # k clipped to 6
    assert s["tail_p@5"] == pytest.approx(1 / 5)  # one tail hit in each row's tail top 5


# ---------------------------------------------------------------- peers
def test_knn_equals_brute_force():
    rng = np.random.default_rng(0)
    X = sp.random(80, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    Y = sp.random(80, 12, density=0.2, format="csr", random_state=2, dtype=np.float32)
    Y.data[:] = 1
    Q = sp.random(7, 30, density=0.3, format="csr", random_state=3, dtype=np.float32)
    idx, val = _peers.KNN(neighbors=5, block=3).fit(X, Y).predict_topk(Q, 12)
    norm = lambda A: A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-30)  # noqa: E731
    S = norm(Q.toarray()) @ norm(X.toarray()).T
    for i in range(Q.shape[0]):
        nb = np.argsort(-S[i], kind="stable")[:5]
        nb = nb[S[i, nb] > 0]
        votes = S[i, nb] @ Y[nb].toarray()
        want = {j for j in range(12) if votes[j] > 0}
        got = idx[i][idx[i] >= 0]
        assert set(got.tolist()) == want
        np.testing.assert_allclose(val[i, :len(got)], votes[got], rtol=1e-5)
        assert (np.diff(val[i, :len(got)]) <= 1e-6).all()
    assert rng is not None


@pytest.mark.parametrize("name", _peers.available())
def test_peer_contract(name, split):
    peer = _peers.make_peer(name, threads=2).fit(split.X_train, split.Y_train)
    try:
        idx, val = peer.predict_topk(split.X_test[:50], 20)
        assert idx.shape == val.shape == (50, 20)
        assert idx.dtype == np.int64 and val.dtype == np.float32
        L = split.Y_train.shape[1]
        for row, v in zip(idx, val):
            ok = row >= 0
            assert not ok[np.argmin(ok):].any() or ok.all()  # -1 only at the end of a row
            assert (row[ok] < L).all() and len(set(row[ok].tolist())) == ok.sum()
            assert (np.diff(v[ok]) <= 1e-6).all()  # best first
        with pytest.raises(TypeError, match="X must be a scipy sparse"):
            peer.predict_topk(split.X_test[:5].toarray(), 5)
        with pytest.raises(ValueError, match="columns"):
            peer.predict_topk(split.X_test[:5, :-1], 5)
        with pytest.raises(ValueError, match="k must be"):
            peer.predict_topk(split.X_test[:5], 0)
    finally:
        peer.close()


def test_unknown_peer_and_bad_fit_inputs():
    with pytest.raises(ValueError, match="peer must be one of"):
        _peers.make_peer("pecos-b7")
    X = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="rows"):
        _peers.Popularity().fit(X, sp.csr_matrix(np.eye(3, dtype=np.float32)))
    with pytest.raises(TypeError, match="Y must be"):
        _peers.Popularity().fit(X, np.eye(4))


def test_missing_package_is_skipped_with_a_message(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "omikuji", None)  # any import of it raises ImportError
    said = []
    names = _peers.available(("popularity", "omikuji-parabel", "omikuji-bonsai"), said.append)
    assert names == ["popularity"]
    assert len(said) == 2 and all("omikuji" in s for s in said)


# ---------------------------------------------------------------- the table
def _sparse_training_ready() -> bool:
    """``labelemb.torch.fit`` takes scipy sparse inputs (recipes run on the TF-IDF rows)."""
    import labelemb
    from labelemb.torch import fit, make_model

    d = labelemb.make_topic_labels(64, 8, seed=0)
    X = sp.random(64, 20, density=0.2, format="csr", random_state=0, dtype=np.float32)
    model = make_model(xmc._backbone(20, 8), 8, "bce", n_labels=8)
    try:
        fit(model, (X, d.labels), epochs=1, lr=1e-3, batch_size=32, progress=False,
            device="cpu")
    except TypeError as e:
        if "sparse" in str(e):
            return False
        raise
    return True


def test_xmc_table(tmp_path, benchmark):
    pytest.importorskip("torch")
    data = os.environ.get("LABELEMB_XMC_DATA", "synthetic")
    directory = RESULTS if bench_size() == "full" else str(tmp_path)
    specs = xmc.peer_specs()
    recipes = xmc.RECIPES if bench_size() == "full" else ("bce", "lowrank")
    lrs = xmc.LRS if bench_size() == "full" else (1e-2,)
    with_recipes = _sparse_training_ready()
    if with_recipes:
        specs += xmc.recipe_specs(recipes, lrs)
    records = benchmark.pedantic(xmc.run, args=(data, specs, directory), rounds=1,
                                 iterations=1)
    assert [r for r in records if "error" in r] == []
    for r in records:
        for m in xmc.METRICS:
            assert 0.0 <= r["test_" + m] <= 1.0, (r["method"], m)
        assert r["train_time"] >= 0 and r["predict_ms_per_1000"] > 0 and r["peak_mb"] >= 0
    pop = next(r for r in records if r["method"] == "popularity")
    for r in records:
        if r["method"] != "popularity":  # every trained method beats popularity
            assert r["test_map@100"] > pop["test_map@100"], r["method"]
            assert r["test_p@1"] > pop["test_p@1"], r["method"]
    text = xmc.write_report(data, directory)
    for r in records:
        assert r["method"] in text
    if with_recipes:
        assert "Best labelemb recipe" in text
        rows = xmc.summarize(data, directory)["rows"]
        assert {r["recipe"] for r in rows if r["kind"] == "labelemb"} == set(recipes)
    else:
        pytest.skip("labelemb.torch.fit does not take sparse inputs yet: peers only")


def test_isolated_run_matches_in_process(tmp_path, split):
    spec = {"kind": "peer", "name": "popularity"}
    a = xmc.run("synthetic", [spec], str(tmp_path / "a"), isolate=False)[0]
    b = xmc.run("synthetic", [spec], str(tmp_path / "b"), isolate=True)[0]
    for m in xmc.METRICS:
        assert a["test_" + m] == pytest.approx(b["test_" + m])
