"""The extreme-classification peers' registry: a peer that imports but fails at run time
is left out with its reason, not a crash of the demo or the benchmark."""

from __future__ import annotations

from labelemb import peers


def test_available_skips_a_peer_that_fails_at_run_time(monkeypatch):
    # popularity needs no package; pretend it does (numpy) so its run is checked too
    monkeypatch.setitem(peers._NEEDS, "popularity", "numpy")

    def broken(self, X, Y):
        raise AttributeError("module 'scipy.sparse.sputils' has no attribute 'x'")

    monkeypatch.setattr(peers.Popularity, "_fit", broken)
    said = []
    assert peers.available(("popularity", "knn"), echo=said.append) == ["knn"]
    assert len(said) == 1 and said[0].startswith("skipping popularity:")
    assert "AttributeError" in said[0]


def test_available_keeps_a_working_peer(monkeypatch):
    monkeypatch.setitem(peers._NEEDS, "popularity", "numpy")
    said = []
    assert peers.available(("popularity",), echo=said.append) == ["popularity"]
    assert said == []


def test_omikuji_trains_with_a_row_without_features():
    import numpy as np
    import pytest
    import scipy.sparse as sp

    pytest.importorskip("omikuji")
    rng = np.random.default_rng(0)
    X = sp.random(200, 30, density=0.2, format="lil", random_state=0, dtype=np.float32)
    X[5] = 0  # one sample without any feature
    X = sp.csr_matrix(X)
    X.eliminate_zeros()
    assert np.diff(X.indptr)[5] == 0
    Y = sp.csr_matrix((np.ones(400, np.float32), rng.integers(0, 8, 400),
                       np.arange(0, 401, 2)), shape=(200, 8))
    Y.sum_duplicates()
    peer = peers.make_peer("omikuji-parabel", threads=1).fit(X, Y)
    idx, scores = peer.predict_topk(X[:10], 3)
    assert idx.shape == (10, 3) and (np.diff(scores, axis=1) <= 0).all()
    peer.close()
