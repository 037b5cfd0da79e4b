import json
import os
import sys
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import labelemb
from labelemb import EmbeddingWarning, LabelEmbedding, fit_embeddings


def grouped_sets(n_groups=6, size=8, n=3000, seed=0, names=False):
    """Label sets drawn within k disjoint groups of labels (2 to 4 labels per sample)."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(n):
        g = rng.integers(n_groups)
        k = rng.integers(2, 5)
        ids = (g * size + rng.choice(size, k, replace=False)).tolist()
        sets.append([f"g{i // size}_{i % size}" for i in ids] if names else ids)
    return sets


@pytest.fixture(scope="module")
def grouped():
    return fit_embeddings(grouped_sets(), dim=6)


# ------------------------------------------------------------------ fit


def test_planted_groups_are_neighbours(grouped):
    emb = grouped
    assert emb.vectors.shape == (48, 6) and emb.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1, rtol=1e-5)
    for i in range(48):
        near = [j for j, _ in emb.neighbors(i, k=7)]
        assert {j // 8 for j in near} == {i // 8}, (i, near)
    # cosine across groups is low, within high
    S = emb.vectors @ emb.vectors.T
    same = (np.arange(48)[:, None] // 8) == (np.arange(48)[None, :] // 8)
    assert S[same].min() > S[~same].max()


def test_attributes_and_params(grouped):
    emb = grouped
    assert emb.n_samples == 3000
    assert emb.label_names is None
    assert emb.label_counts.dtype == np.int64 and emb.label_counts.sum() == sum(
        len(s) for s in grouped_sets())
    assert emb.eigenvalues.shape == (6,) and np.all(np.diff(emb.eigenvalues) <= 0)
    assert np.all(emb.eigenvalues > 0)
    p = emb.params
    for key in ("dim", "pmi", "shift", "alpha", "min_count", "diagonal", "n_iter", "oversample",
                "seed", "labelemb_version"):
        assert key in p
    r = repr(emb)
    assert "L=48" in r and "d=6" in r and "n_samples=3000" in r


def test_reproducible_from_params(grouped):
    p = grouped.params
    again = fit_embeddings(grouped_sets(), dim=p["dim"], pmi=p["pmi"], shift=p["shift"],
                           alpha=p["alpha"], min_count=p["min_count"], diagonal=p["diagonal"],
                           n_iter=p["n_iter"], oversample=p["oversample"], seed=p["seed"])
    np.testing.assert_array_equal(again.vectors, grouped.vectors)


def test_input_forms_agree(grouped):
    sets = grouped_sets()
    c = labelemb.cooccurrence(sets)
    from_counts = fit_embeddings(c, dim=6)
    np.testing.assert_array_equal(from_counts.vectors, grouped.vectors)
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    Y = sp.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(sets))), shape=(3000, 48))
    np.testing.assert_allclose(fit_embeddings(Y, dim=6).vectors, grouped.vectors, atol=1e-6)
    named = fit_embeddings(grouped_sets(names=True), dim=6)
    assert named.label_names[:2] == ["g0_0", "g0_1"]
    assert {n.split("_")[0] for n, _ in named.neighbors("g3_2", k=7)} == {"g3"}


@pytest.mark.parametrize("num_threads", [1, 2])
def test_threads_agree(grouped, num_threads):
    emb = fit_embeddings(grouped_sets(), dim=6, num_threads=num_threads)
    np.testing.assert_allclose(emb.vectors, grouped.vectors, atol=1e-5)


def test_unseen_labels_get_zero_vectors():
    with pytest.warns(EmbeddingWarning, match="2 of the 50 labels never occur"):
        emb = fit_embeddings(grouped_sets(), dim=6, n_labels=50)
    np.testing.assert_array_equal(emb.vectors[48:], 0)
    np.testing.assert_allclose(np.linalg.norm(emb.vectors[:48], axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="no vector"):
        emb.neighbors(49)
    assert all(j < 48 for j, _ in emb.neighbors(0, k=10))


def test_dim_beyond_positive_spectrum_warns():
    # Constant within-group PPMI and no diagonal: one positive eigenvalue per group.
    with pytest.warns(EmbeddingWarning, match="only 6 positive eigenvalues"):
        emb = fit_embeddings(grouped_sets(), dim=12, diagonal="zero")
    assert emb.dim == 6 and emb.params["d"] == 6 and emb.params["dim"] == 12
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1, rtol=1e-5)


def _dense_reference(P, dim, which, power):
    """Unit rows of U |Lambda|^power from numpy's dense eigh of the PMI matrix."""
    w, U = np.linalg.eigh(P.toarray().astype(np.float64))
    order = np.argsort(-w if which == "LA" else -np.abs(w), kind="stable")[:dim]
    order = order[np.argsort(-w[order], kind="stable")]  # reported in decreasing order
    E = U[:, order] * np.abs(w[order]) ** power
    return w[order], E / np.linalg.norm(E, axis=1, keepdims=True)


def mixed_sets():
    """Grouped sets plus 10% random pairs across groups: those pairs are seen, but less
    often than chance predicts, so their PMI is negative."""
    rng = np.random.default_rng(5)
    return grouped_sets(n_groups=4, size=6, n=2000, seed=3) + [
        rng.choice(24, 2, replace=False).tolist() for _ in range(200)]


@pytest.mark.parametrize("which, power", [("LA", 0.0), ("LA", 0.5), ("LA", 1.0),
                                          ("LM", 0.5), ("LM", 1.0)])
def test_power_and_which_match_dense_eigh(which, power):
    # Plain PMI has negative eigenvalues: "LM" must keep the large negative ones, "LA" not.
    counts = labelemb.cooccurrence(mixed_sets())
    P = labelemb.pmi_matrix(counts, kind="pmi")
    dim = 5
    emb = fit_embeddings(counts, dim=dim, pmi="pmi", power=power, which=which, n_iter=30,
                         oversample=19)
    w, ref = _dense_reference(P, dim, which, power)
    np.testing.assert_allclose(emb.eigenvalues, w, rtol=1e-4, atol=1e-4)
    if which == "LM":
        assert (w < 0).any(), "the test needs negative eigenvalues among the largest in magnitude"
    else:
        assert (w > 0).all()
    # Equal up to the sign of each eigenvector (and rotations within ties, absent here):
    # compare the Gram matrices, which are sign-free.
    np.testing.assert_allclose(emb.vectors @ emb.vectors.T, ref @ ref.T, atol=2e-4)
    assert emb.params["power"] == power and emb.params["which"] == which


def test_power_default_is_the_factorisation(grouped):
    # power=0.5 and which="LA" are the defaults; another power changes the vectors (on
    # sets where a label's row spans several eigenvectors: in `grouped` each row has one,
    # which normalising makes power-free).
    again = fit_embeddings(grouped_sets(), dim=6, power=0.5, which="LA")
    np.testing.assert_array_equal(again.vectors, grouped.vectors)
    half = fit_embeddings(mixed_sets(), dim=5)
    np.testing.assert_array_equal(fit_embeddings(mixed_sets(), dim=5, power=0.5).vectors,
                                  half.vectors)
    flat = fit_embeddings(mixed_sets(), dim=5, power=0.0)
    assert np.abs(flat.vectors @ flat.vectors.T - half.vectors @ half.vectors.T).max() > 0.05


def test_dim_must_be_below_n_labels():
    with pytest.raises(ValueError, match="dim=48 must be smaller than the number of labels"):
        fit_embeddings(grouped_sets(), dim=48)


def test_progress_bars(capsys):
    pytest.importorskip("tqdm")
    fit_embeddings(grouped_sets(n=300), dim=6, progress=True)
    err = capsys.readouterr().err
    for stage in ("co-occurrence", "PMI", "eigendecomposition", "label vectors"):
        assert stage in err


def test_progress_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    emb = fit_embeddings(grouped_sets(n=300), dim=6, progress=True)
    assert emb.dim == 6
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kw, exc, match", [
    ({"dim": 0}, ValueError, "dim"),
    ({"dim": 2.5}, TypeError, "dim"),
    ({"pmi": "npmi"}, ValueError, "pmi"),
    ({"shift": -1.0}, ValueError, "shift"),
    ({"shift": float("nan")}, ValueError, "shift"),
    ({"alpha": 0.0}, ValueError, "alpha"),
    ({"alpha": 1.5}, ValueError, "alpha"),
    ({"min_count": 0}, ValueError, "min_count"),
    ({"diagonal": "one"}, ValueError, "diagonal"),
    ({"power": -0.5}, ValueError, "power"),
    ({"power": "half"}, TypeError, "power"),
    ({"which": "SA"}, ValueError, "which"),
    ({"n_iter": -1}, ValueError, "n_iter"),
    ({"oversample": -1}, ValueError, "oversample"),
    ({"seed": -3}, ValueError, "seed"),
    ({"num_threads": -1}, ValueError, "num_threads"),
    ({"progress": "yes"}, TypeError, "progress"),
    ({"n_labels": 10}, ValueError, "n_labels"),
])
def test_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        fit_embeddings(grouped_sets(n=200), **{"dim": 4, **kw})


def test_bad_labels():
    with pytest.raises(ValueError, match="at least 2 labels"):
        fit_embeddings([[0], [0]], dim=1)
    with pytest.raises(ValueError, match="nothing to embed"):
        fit_embeddings([[0], [1]], dim=1, diagonal="zero")
    with pytest.raises(FileNotFoundError, match="no such file 'labels.txt'"):
        fit_embeddings("labels.txt", dim=2)  # a string is a label file


# ------------------------------------------------------------------ encode


def test_encode_matches_reference(grouped):
    emb = grouped
    sets = [[0, 3], [5], [1, 9, 17], [3, 3, 0]]
    T = emb.encode(sets)
    assert T.dtype == np.float32 and T.shape == (4, 6)
    for row, s in zip(T, sets):
        v = emb.vectors[sorted(set(s))].sum(axis=0)
        np.testing.assert_allclose(row, v / np.linalg.norm(v), rtol=1e-5, atol=1e-6)
    Y = sp.csr_matrix((np.ones(6), ([0, 0, 1, 2, 2, 2], [0, 3, 5, 1, 9, 17])), shape=(3, 48))
    np.testing.assert_array_equal(emb.encode(Y), T[:3])
    np.testing.assert_array_equal(emb.encode(Y.toarray()), T[:3])
    np.testing.assert_array_equal(emb.encode(np.array([[0, 3], [5]], dtype=object)), T[:2])


def test_encode_names():
    emb = fit_embeddings(grouped_sets(names=True), dim=6)
    T = emb.encode([["g0_0", "g0_3"], ["g1_5"]])
    ids = emb.encode([[0, 3], [13]])
    np.testing.assert_array_equal(T, ids)
    with pytest.raises(ValueError, match="unknown label names"):
        emb.encode([["g0_0", "nope"]])
    with pytest.raises(TypeError, match="mixes"):
        emb.encode([["g0_0", 3]])


def test_encode_empty_sets_warn(grouped):
    with pytest.warns(EmbeddingWarning, match="2 of 3 label sets encode to zero rows"):
        T = grouped.encode([[0], [], []])
    np.testing.assert_array_equal(T[1:], 0)
    assert grouped.encode([]).shape == (0, 6)


def test_encode_bad_input(grouped):
    with pytest.raises(ValueError, match="out of range"):
        grouped.encode([[0, 48]])
    with pytest.raises(ValueError, match="negative"):
        grouped.encode([[-1]])
    with pytest.raises(ValueError, match="48 columns"):
        grouped.encode(sp.csr_matrix((2, 47)))
    with pytest.raises(ValueError, match="label ids only"):
        grouped.encode([["a"]])
    with pytest.raises(TypeError):
        grouped.encode("0 1")
    with pytest.raises(TypeError):
        grouped.encode([[0.5]])


# ------------------------------------------------------------------ neighbors, decode


def test_neighbors(grouped):
    near = grouped.neighbors(0, k=3)
    assert len(near) == 3 and all(isinstance(j, int) for j, _ in near)
    scores = [s for _, s in near]
    assert scores == sorted(scores, reverse=True)
    ref = grouped.vectors @ grouped.vectors[0]
    ref[0] = -np.inf
    assert [j for j, _ in near] == list(np.argsort(-ref, kind="stable")[:3])
    with pytest.raises(ValueError, match="out of range"):
        grouped.neighbors(48)
    with pytest.raises(ValueError, match="k=48 is more than"):
        grouped.neighbors(0, k=48)
    with pytest.raises(ValueError, match="k must"):
        grouped.neighbors(0, k=0)
    with pytest.raises(TypeError):
        grouped.neighbors(True)
    with pytest.raises(ValueError, match="label ids only"):
        grouped.neighbors("g0_0")


def test_decode(grouped):
    pytest.importorskip("labelemb.topk")
    T = grouped.encode([[0], [9]])
    idx, scores = grouped.decode(T, k=8)  # a group's labels are nearly one point
    assert idx.shape == scores.shape == (2, 8)
    assert sorted(idx[0].tolist()) == list(range(8))
    assert sorted(idx[1].tolist()) == list(range(8, 16))
    ref = T @ grouped.vectors.T
    np.testing.assert_allclose(scores, np.take_along_axis(ref, idx, 1), rtol=1e-5)
    named = fit_embeddings(grouped_sets(names=True), dim=6)
    names, _ = named.decode(named.encode([["g2_1"]]), k=8, return_names=True)
    assert sorted(names[0].tolist()) == [f"g2_{i}" for i in range(8)]
    with pytest.raises(ValueError, match="label ids only"):
        grouped.decode(T, return_names=True)


# ------------------------------------------------------------------ save / load


def test_save_load_round_trip_is_exact(grouped, tmp_path):
    for emb in (grouped, fit_embeddings(grouped_sets(names=True), dim=6)):
        path = tmp_path / "emb.npz"
        emb.save(path)
        back = LabelEmbedding.load(path)
        assert back.vectors.dtype == np.float32
        assert back.vectors.tobytes() == emb.vectors.tobytes()
        assert back.eigenvalues.tobytes() == emb.eigenvalues.tobytes()
        np.testing.assert_array_equal(back.label_counts, emb.label_counts)
        assert back.label_names == emb.label_names
        assert back.n_samples == emb.n_samples
        assert back.params == emb.params
        assert os.listdir(tmp_path) == ["emb.npz"]  # no temporary file left
        with np.load(path, allow_pickle=False) as z:
            assert int(z["format_version"]) == 1


def test_save_replaces_atomically(grouped, tmp_path):
    path = tmp_path / "emb.npz"
    path.write_text("old")
    grouped.save(str(path))
    assert LabelEmbedding.load(str(path)).dim == 6


def test_load_truncated(grouped, tmp_path):
    path = tmp_path / "emb.npz"
    grouped.save(path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated, corrupt"):
            LabelEmbedding.load(bad)


def test_load_corrupt(grouped, tmp_path):
    path = tmp_path / "emb.npz"
    grouped.save(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("vectors.npy")
    pos = info.header_offset + 30 + len(info.filename) + 200  # inside the vector data
    data[pos] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="truncated, corrupt"):
        LabelEmbedding.load(bad)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="cannot read"):
        LabelEmbedding.load(text)
    npy = tmp_path / "plain.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz"):
        LabelEmbedding.load(npy)


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del arrays[k]
    np.savez(out, **arrays)


def test_load_newer_version(grouped, tmp_path):
    path = tmp_path / "emb.npz"
    grouped.save(path)
    _rewrite(path, tmp_path / "new.npz", format_version=np.array(2, dtype=np.int64))
    with pytest.raises(ValueError, match="newer labelemb .format_version 2"):
        LabelEmbedding.load(tmp_path / "new.npz")


def test_load_not_an_embedding(grouped, tmp_path):
    path = tmp_path / "emb.npz"
    grouped.save(path)
    _rewrite(path, tmp_path / "a.npz", format=np.array("something.else"))
    with pytest.raises(ValueError, match="not a LabelEmbedding"):
        LabelEmbedding.load(tmp_path / "a.npz")
    _rewrite(path, tmp_path / "b.npz", eigenvalues=None)
    with pytest.raises(ValueError, match="missing"):
        LabelEmbedding.load(tmp_path / "b.npz")
    _rewrite(path, tmp_path / "c.npz", vectors=np.zeros((48, 6), dtype=np.int32))
    with pytest.raises(ValueError, match="invalid"):
        LabelEmbedding.load(tmp_path / "c.npz")
    _rewrite(path, tmp_path / "d.npz", params=np.array(json.dumps([1, 2])))
    with pytest.raises(ValueError, match="invalid"):
        LabelEmbedding.load(tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a LabelEmbedding"):
        LabelEmbedding.load(tmp_path / "e.npz")


def test_load_never_unpickles(grouped, tmp_path):
    path = tmp_path / "emb.npz"
    grouped.save(path)
    evil = np.array([{"x": 1}], dtype=object)  # an object array is stored as a pickle
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["params"] = evil
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(ValueError, match="truncated, corrupt"):
        LabelEmbedding.load(tmp_path / "evil.npz")


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        LabelEmbedding.load(tmp_path / "none.npz")


def test_constructor_checks():
    with pytest.raises(ValueError, match="2-D"):
        LabelEmbedding(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="names for"):
        LabelEmbedding(np.eye(2, dtype=np.float32), ["a"])
    with pytest.raises(ValueError, match="repeated"):
        LabelEmbedding(np.eye(2, dtype=np.float32), ["a", "a"])
    with pytest.raises(ValueError, match="NaN"):
        LabelEmbedding(np.full((2, 2), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="eigenvalues"):
        LabelEmbedding(np.eye(2, dtype=np.float32), eigenvalues=np.ones(3))


def test_exported():
    for name in ("fit_embeddings", "LabelEmbedding", "EmbeddingWarning", "randomized_eigh"):
        assert name in labelemb.__all__ and hasattr(labelemb, name)
