"""Regression tests for inputs that once crashed the process or gave a silent wrong answer.

Where the failure was a crash (SIGSEGV, abort), the call runs in a subprocess, so that a
regression fails this test instead of killing the test run.
"""

import os
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import labelemb
from labelemb import _core, metrics
from labelemb.embedding import EmbeddingWarning, LabelEmbedding
from labelemb.formats import read_xc, write_label_list, write_xc

posix_only = pytest.mark.skipif(os.name != "posix", reason="needs ulimit (POSIX)")
# ASan reserves terabytes of address space for its shadow memory: no ulimit -v under it.
no_asan = pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                             reason="ulimit -v and AddressSanitizer exclude each other")


def _run(code: str, limit_kb: int = 0) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a fresh interpreter (under ``ulimit -v limit_kb`` if given)."""
    script = textwrap.dedent(code)
    if limit_kb:
        cmd = ["bash", "-c", f'ulimit -v {limit_kb} && exec "$0" -c "$1"', sys.executable,
               script]
    else:
        cmd = [sys.executable, "-c", script]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _ok(r: subprocess.CompletedProcess, expect: str) -> None:
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert expect in r.stdout, (r.stdout, r.stderr[-2000:])


# ---------------------------------------------------------------- num_threads
HUGE_THREADS = """
import numpy as np, scipy.sparse as sp, labelemb
from labelemb.topk import TopkIndex
Q = np.ones((2, 3), "f4"); V = np.eye(4, 3, dtype="f4")
Y = labelemb.make_topic_labels(200, 20, seed=0).labels
c = labelemb.cooccurrence(Y)
P = labelemb.pmi_matrix(c)
index = TopkIndex(np.random.default_rng(0).standard_normal((50, 3)).astype("f4"), n_clusters=4)
calls = {
    "topk": lambda nt: labelemb.topk(Q, V, 2, num_threads=nt),
    "cooccurrence": lambda nt: labelemb.cooccurrence([[0, 1]] * 10, num_threads=nt),
    "pmi_matrix": lambda nt: labelemb.pmi_matrix(c, num_threads=nt),
    "randomized_eigh": lambda nt: labelemb.randomized_eigh(P, 2, num_threads=nt),
    "fit_embeddings": lambda nt: labelemb.fit_embeddings(Y, 4, num_threads=nt),
    "threshold": lambda nt: labelemb.threshold(Q, V, 0.5, num_threads=nt),
    "TopkIndex.search": lambda nt: index.search(Q, 2, num_threads=nt),
    "TopkIndex": lambda nt: TopkIndex(V, n_clusters=2, num_threads=nt),
}
for name, call in calls.items():
    for nt in (100_000, 2**31 - 1, _LIMIT + 1):
        try:
            call(nt)
        except ValueError as e:
            assert "num_threads" in str(e), (name, e)
        else:
            raise AssertionError(f"{name} accepted num_threads={nt}")
    call(_LIMIT)  # the limit itself is accepted
print("all refused")
"""


def test_huge_num_threads_is_an_error_everywhere():
    code = HUGE_THREADS.replace("_LIMIT", str(_core.thread_limit()))
    _ok(_run(code), "all refused")


def test_thread_limit_is_a_multiple_of_the_cores():
    assert _core.thread_limit() == max(64, 4 * len(os.sched_getaffinity(0))) \
        if hasattr(os, "sched_getaffinity") else _core.thread_limit() >= 64
    assert _core.config()["thread_limit"] == _core.thread_limit()


@pytest.mark.parametrize("binding", ["cooccurrence", "pmi", "topk", "threshold", "eigh_dense",
                                     "csr_spmm", "sum_counts"])
def test_bindings_refuse_huge_num_threads(binding):
    """The check sits in the binding layer too: a caller that skips the Python API gets it."""
    nt = _core.thread_limit() + 1
    ip, ix = np.array([0, 2], np.int64), np.array([0, 1], np.int32)
    q, v = np.ones((2, 3), np.float32), np.eye(4, 3, dtype=np.float32)
    calls = {
        "cooccurrence": lambda: _core.cooccurrence(ip, ix, 2, nt),
        "pmi": lambda: _core.pmi(ip, ix, np.ones(2, np.int64), np.zeros(1), None, 0.0, 0.0, 1,
                                 True, nt),
        "topk": lambda: _core.topk(q, v, 2, None, None, np.empty((2, 2), np.float32),
                                   np.empty((2, 2), np.int32), nt),
        "threshold": lambda: _core.threshold(q, v, 0.5, nt),
        "eigh_dense": lambda: _core.eigh_dense(np.eye(4), 1, 1, 1, True, 0, np.empty(1),
                                               np.empty((4, 1), np.float32), nt),
        "csr_spmm": lambda: _core.csr_spmm(ip[:1] * 0, ix[:0], np.zeros(0, np.float32), 2,
                                           np.zeros((1, 2)), np.zeros((1, 0)), nt),
        "sum_counts": lambda: _core.sum_counts([np.zeros(2, np.int64)], [ix[:0]],
                                               [np.zeros(0, np.int64)], 1, nt),
    }
    with pytest.raises(ValueError, match="num_threads"):
        calls[binding]()


@posix_only
def test_cli_huge_threads_is_one_line():
    r = subprocess.run([sys.executable, "-m", "labelemb", "fit", "--synthetic", "200x20",
                        "--dim", "2", "-o", os.devnull, "--threads", "100000", "--no-progress"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "num_threads" in r.stderr, r.stderr


# ---------------------------------------------------------------- allocations under a limit
@posix_only
@no_asan
@pytest.mark.parametrize("max_memory", ["None", "2**50"])
def test_allocation_failure_in_a_parallel_region_is_memory_error(max_memory):
    """Per-thread buffers of 400 MB each under a 3 GB address space: MemoryError (from the
    budget, or with the budget lifted from the guarded parallel region), never an abort."""
    code = f"""
    import labelemb
    try:
        labelemb.cooccurrence([[0, 1]] * 10, n_labels=50_000_000, num_threads=4,
                              max_memory={max_memory})
    except MemoryError as e:
        print("MemoryError", e)
    else:
        print("counted")
    """
    r = _run(code, limit_kb=3_000_000)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "MemoryError" in r.stdout or "counted" in r.stdout, r.stdout
    if max_memory == "None":
        assert "MemoryError" in r.stdout and "max_memory=" in r.stdout, r.stdout


@posix_only
@no_asan
def test_available_memory_counts_the_address_space_limit():
    code = """
    import sys, labelemb
    print("avail", sys.modules["labelemb.cooccurrence"].available_memory())
    """
    r = _run(code, limit_kb=2_000_000)
    assert r.returncode == 0, r.stderr
    avail = int(r.stdout.split()[1])
    assert 0 <= avail < 2_000_000 * 1024


def test_pmi_and_eigh_memory_are_budgeted(monkeypatch):
    cooc = sys.modules["labelemb.cooccurrence"]
    Y = labelemb.make_topic_labels(500, 40, seed=1).labels
    c = labelemb.cooccurrence(Y)
    monkeypatch.setattr(cooc, "available_memory", lambda: 1000)
    with pytest.raises(labelemb.MemoryBudgetError, match="PMI matrix"):
        labelemb.pmi_matrix(c)
    with pytest.raises(labelemb.MemoryBudgetError, match="eigendecomposition"):
        labelemb.randomized_eigh(sp.identity(50, format="csr") * 2.0, 3)


def test_n_labels_with_counts_is_checked():
    c = labelemb.cooccurrence([[0, 1], [1, 2]])
    with pytest.raises(labelemb.MemoryBudgetError, match="n_labels"):
        labelemb.fit_embeddings(c, dim=2, n_labels=10**12)
    with pytest.raises(ValueError, match="n_labels"):
        labelemb.fit_embeddings(c, dim=2, n_labels=2)
    padded = labelemb.cooccurrence(c, n_labels=5)
    assert padded.n_labels == 5 and padded.label_counts.tolist() == [1, 2, 1, 0, 0]


# ---------------------------------------------------------------- metrics
def test_metrics_huge_label_space_does_not_overflow():
    got = metrics.precision_at_k([[1], [2], [3]], [[1], [2], [3]], 1, n_labels=2**62 + 1)
    assert got == 1.0
    big = 2**62
    idx = np.array([[big, 0], [1, big]], np.int64)
    assert metrics.precision_at_k(idx, [[big], [big]], 2, n_labels=big + 1) == 0.5
    assert metrics.recall_at_k(idx, [[big], [big]], 1, n_labels=big + 1) == 0.5


def test_metrics_uint64_ids_do_not_wrap():
    with pytest.raises(ValueError, match="2\\^63"):
        metrics.precision_at_k(np.array([[2**64 - 1]], np.uint64), [[1]], 1)
    ok = np.array([[1], [0]], np.uint64)
    assert metrics.precision_at_k(ok, [[1], [1]], 1) == 0.5


def test_metrics_hits_match_a_reference():
    rng = np.random.default_rng(5)
    n, L, K = 60, 30, 6
    idx = np.array([rng.permutation(L)[:K] for _ in range(n)])
    idx[rng.random((n, K)) < 0.1] = -1
    truth = [sorted(set(rng.integers(0, L, rng.integers(0, 5)).tolist())) for _ in range(n)]
    want = [sum(1 for j in row[:3] if j >= 0 and j in set(t)) / 3 for row, t in zip(idx, truth)]
    keep = [len(t) > 0 for t in truth]
    assert metrics.precision_at_k(idx, truth, 3, n_labels=L) == pytest.approx(
        np.mean(np.array(want)[keep]))


# ---------------------------------------------------------------- writers
def test_writers_refuse_ids_outside_the_vocabulary(tmp_path):
    p = tmp_path / "x.txt"
    with pytest.raises(ValueError, match="negative"):
        write_label_list(p, [[-1]], ["a", "b"])
    with pytest.raises(ValueError, match="no name"):
        write_label_list(p, [[2]], ["a", "b"])
    with pytest.raises(ValueError, match="negative"):
        write_xc(p, np.ones((1, 2)), [[-1]])
    with pytest.raises(TypeError, match="integers"):
        write_label_list(p, [[1.5]])
    assert not p.exists()
    write_xc(p, np.ones((2, 2)), [[1], []])
    _, labels = read_xc(p)
    assert labels.toarray().tolist() == [[0, 1], [0, 0]]


# ---------------------------------------------------------------- names and vectors
def test_names_with_nul_are_refused_not_merged():
    with pytest.raises(ValueError, match="NUL"):
        labelemb.cooccurrence([["a", "a\0"], ["a"]])
    with pytest.raises(ValueError, match="NUL"):
        labelemb.cooccurrence(iter([[["a"]], [["a\0"]]]))
    with pytest.raises(ValueError, match="NUL"):
        LabelEmbedding(np.eye(2, dtype=np.float32), ["a", "a\0"])


def test_non_unit_vectors_are_renormalised_with_a_warning():
    v = np.array([[1e30, 1e30], [3.0, 4.0], [0.0, 0.0]], np.float32)
    with pytest.warns(EmbeddingWarning, match="2 of the 3 label vectors are not unit"):
        emb = LabelEmbedding(v)
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), [1, 1, 0], atol=1e-6)
    assert v[1, 0] == 3.0  # the caller's array is left alone
    t = emb.encode([[0, 1], [0]])
    assert np.all(np.isfinite(t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LabelEmbedding(np.eye(3, dtype=np.float32) * (1 + 1e-5))  # rounding: no warning


def test_hand_built_counts_with_duplicate_pairs_are_summed():
    # samples {0,1}, {0,1}, {1}, {2}: C_01 = 2 given as two entries of 1
    pairs = sp.csr_matrix((np.array([1, 1]), np.array([1, 1]), np.array([0, 2, 2, 2])),
                          shape=(3, 3))
    c = labelemb.Cooccurrence(4, [2, 3, 1], pairs)
    want = labelemb.cooccurrence([[0, 1], [0, 1], [1], [2]])
    assert c == want
    P = labelemb.pmi_matrix(c, kind="pmi", diagonal="zero").toarray()
    np.testing.assert_allclose(P[0, 1], np.log(2 * 4 / (2 * 3)), rtol=1e-6)
    assert P[0, 1] == P[1, 0] and np.count_nonzero(P) == 2
    lower = sp.csr_matrix(np.array([[0, 0], [1, 0]]))
    with pytest.raises(ValueError, match="strict upper triangle"):
        labelemb.Cooccurrence(2, [1, 1], lower)


# ---------------------------------------------------------------- loaders
def _embedding_file(tmp_path):
    path = tmp_path / "e.npz"
    LabelEmbedding(np.eye(4, 3, dtype=np.float32)[[0, 1, 2, 0]], ["a", "b", "c", "d"]).save(
        path)
    return path


def test_forged_header_is_refused_before_allocating(tmp_path):
    path = _embedding_file(tmp_path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["vectors.npy"] = members["vectors.npy"].replace(b"(4, 3)", f"({2**50}, 3)".encode())
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(forged, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    assert os.path.getsize(forged) < 4000
    with pytest.raises(ValueError, match="forged.npz.*header asks for"):
        LabelEmbedding.load(forged)


def test_damaged_embedding_files_give_value_error_naming_the_file(tmp_path):
    """Truncations and byte flips at many places: a ValueError naming the file, or (a flip
    in a spot nothing reads) the embedding itself."""
    raw = _embedding_file(tmp_path).read_bytes()
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.npz"
    errors = 0
    for i in range(300):
        b = bytearray(raw)
        if i % 2:
            b = b[: int(rng.integers(0, len(b)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        bad.write_bytes(bytes(b))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EmbeddingWarning)
                LabelEmbedding.load(bad)
        except ValueError as e:
            assert "bad.npz" in str(e), e
            errors += 1
    assert errors > 250


def test_sparse_npz_loader(tmp_path):
    from labelemb._npz import load_sparse, read_npy

    m = sp.random(5, 7, density=0.3, format="csr", random_state=0)
    sp.save_npz(tmp_path / "m.npz", m)
    assert (load_sparse(tmp_path / "m.npz") != m).nnz == 0
    raw = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="t.npz"):
        load_sparse(tmp_path / "t.npz")
    np.save(tmp_path / "a.npy", np.arange(6).reshape(2, 3))
    assert read_npy(tmp_path / "a.npy", "x").tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "b.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-8])
    with pytest.raises(ValueError, match="b.npy"):
        read_npy(tmp_path / "b.npy", "x")


# ---------------------------------------------------------------- label input
def test_pandas_label_input():
    pd = pytest.importorskip("pandas")
    want = labelemb.cooccurrence([["a", "b"], ["b"], []])
    assert labelemb.cooccurrence(pd.Series([["a", "b"], ["b"], []])) == want
    assert labelemb.cooccurrence(pd.DataFrame({"tags": [["a", "b"], ["b"], []]})) == want
    ind = pd.DataFrame({"x": [1, 0, 0], "y": [1, 1, 0]})
    assert labelemb.cooccurrence(ind) == labelemb.cooccurrence([[0, 1], [1], []])
    with pytest.raises(TypeError, match="DataFrame"):
        labelemb.cooccurrence(pd.DataFrame({"a": [["x"]], "b": ["y"]}))
    emb = LabelEmbedding(np.eye(3, dtype=np.float32), ["a", "b", "c"])
    np.testing.assert_array_equal(emb.encode(pd.Series([["a", "b"], ["c"]])),
                                  emb.encode([["a", "b"], ["c"]]))
    truth = pd.Series([[1], [0, 2]])
    assert metrics.precision_at_k([[1], [2]], truth, 1) == 1.0


def test_clear_messages_for_misleading_inputs():
    with pytest.raises(ValueError, match="2-D array of Python objects"):
        labelemb.cooccurrence(np.array([[["a"], ["b"]]], dtype=object).reshape(1, 2))
    with pytest.raises(TypeError, match="float nan among label names"):
        labelemb.cooccurrence([["a", float("nan")]])
