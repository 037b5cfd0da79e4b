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
