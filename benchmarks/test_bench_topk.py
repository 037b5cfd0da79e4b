"""Exact top-k decoding against the libraries a user would otherwise call.

Figures (issue: batched exact top-k in C++), all with 2 threads, medians of the same run:

* Worst case, random unit vectors (no structure), n = 100,000 queries, L = 20,000 and
  50,000 labels, d = 256, k = 10 and 100: ``labelemb.topk`` against faiss
  ``IndexFlatIP.search`` (target: ratio >= 1.0), blocked ``torch.mm`` + ``torch.topk``
  (>= 1.8), and the plain blocked sgemm of the same shape, which only computes the scores
  (target: topk at >= 90% of its rate).
* Real case, label vectors of the synthetic topic set (``fit_embeddings``, or the same
  PPMI eigen-embedding computed here when that is not available yet) and queries that are
  encoded held-out label sets plus noise: ``TopkIndex.search`` against faiss (target
  >= 2x), with results identical to the exhaustive ``topk``.

Small sizes by default (CI checks that this file runs); ``LABELEMB_BENCH=full`` runs the
sizes above.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _util import bench_size, compare, scaled

import labelemb

THREADS = 2
FULL = bench_size() == "full"
D = 256 if FULL else 32
REPEATS = 3 if FULL else 1


def _unit(rng, m, d):
    x = rng.standard_normal((m, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _blas_limits():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=THREADS, user_api="blas")


def _plain_sgemm(Q, V, block=2048):
    """Scores only: Q @ V.T in query blocks into a reused buffer, by scipy's OpenBLAS (the
    one labelemb calls), one multi-threaded sgemm per block."""
    from scipy.linalg.blas import sgemm

    L = V.shape[0]
    buf = np.empty((L, block), dtype=np.float32, order="F")
    vt = V.T  # d x L, Fortran order: no copy

    def run():
        for a in range(0, len(Q), block):
            qt = Q[a:a + block].T
            c = buf[:, :qt.shape[1]]
            sgemm(1.0, vt, qt, trans_a=1, c=c, overwrite_c=1)

    return run


def _plain_matmul(Q, V, block=2048):
    """The same with numpy's matmul (numpy ships its own OpenBLAS)."""
    buf = np.empty((block, V.shape[0]), dtype=np.float32)

    def run():
        for a in range(0, len(Q), block):
            q = Q[a:a + block]
            np.matmul(q, V.T, out=buf[:len(q)])

    return run


def _faiss(Q, V, k):
    faiss = pytest.importorskip("faiss")
    faiss.omp_set_num_threads(THREADS)
    index = faiss.IndexFlatIP(V.shape[1])
    index.add(V)
    return lambda: index.search(Q, k)


def _torch(Q, V, k, block=4096):
    torch = pytest.importorskip("torch")
    q, v = torch.from_numpy(Q), torch.from_numpy(V)

    def run():
        torch.set_num_threads(THREADS)
        out_s = torch.empty((len(Q), k))
        out_i = torch.empty((len(Q), k), dtype=torch.int64)
        for a in range(0, len(Q), block):
            s, i = torch.topk(q[a:a + block] @ v.T, k, dim=1)
            out_s[a:a + block], out_i[a:a + block] = s, i
        return out_i, out_s

    return run


@pytest.mark.parametrize("k", [10, 100])
@pytest.mark.parametrize("n_labels", [20_000, 50_000])
def test_topk_worst_case(benchmark, n_labels, k):
    rng = np.random.default_rng(0)
    n, L = scaled(100_000), scaled(n_labels)
    Q, V = _unit(rng, n, D), _unit(rng, L, D)
    ours = "labelemb.topk"
    funcs = {
        ours: lambda: labelemb.topk(Q, V, k, num_threads=THREADS),
        "plain sgemm, scores only (scipy's BLAS)": _plain_sgemm(Q, V),
        "plain matmul, scores only (numpy's BLAS)": _plain_matmul(Q, V),
    }
    for name, make in (("faiss IndexFlatIP.search", _faiss),
                       ("torch mm + topk (blocks of 4096)", _torch)):
        try:
            funcs[name] = make(Q, V, k)
        except pytest.skip.Exception:
            pass
    limits = _blas_limits()
    try:
        med = compare(f"topk worst case n={n} L={L} d={D} k={k}", funcs, repeats=REPEATS,
                      extra={"threads": THREADS})
    finally:
        if limits is not None:
            limits.unregister()
    base = med[ours]
    plain = min(med["plain sgemm, scores only (scipy's BLAS)"],
                med["plain matmul, scores only (numpy's BLAS)"])
    print(f"  rate vs the faster plain sgemm: {plain / base:.2f} (target >= 0.90)")
    if "faiss IndexFlatIP.search" in med:
        print(f"  faiss / topk: {med['faiss IndexFlatIP.search'] / base:.2f} (target >= 1.0)")
    if "torch mm + topk (blocks of 4096)" in med:
        print(f"  torch / topk: {med['torch mm + topk (blocks of 4096)'] / base:.2f} "
              "(target >= 1.8)")
    idx, _ = benchmark.pedantic(labelemb.topk, args=(Q, V, k),
                                kwargs={"num_threads": THREADS}, rounds=1)
    assert idx.shape == (n, k)


# ---------------------------------------------------------------- real case
def _embedding(train, dim):
    """Label vectors of the training label sets: labelemb.fit_embeddings when it exists,
    else the same recipe (PPMI, top eigenvectors, E = U sqrt(lambda), unit rows) here."""
    fit = getattr(labelemb, "fit_embeddings", None)
    if fit is not None:
        with warnings.catch_warnings():  # rare labels missing from the training part
            warnings.filterwarnings("ignore", message=".*never occur in the training labels")
            emb = fit(train, dim=dim, num_threads=THREADS)
        return np.ascontiguousarray(emb.vectors, dtype=np.float32), "fit_embeddings"
    from scipy.sparse.linalg import eigsh

    P = labelemb.pmi_matrix(labelemb.cooccurrence(train))
    w, U = eigsh(P.astype(np.float64), k=dim, which="LA", tol=1e-4,
                 v0=np.random.default_rng(0).standard_normal(P.shape[0]))
    E = (U * np.sqrt(np.maximum(w, 0))).astype(np.float32)
    norm = np.linalg.norm(E, axis=1)
    E[norm > 0] /= norm[norm > 0, None]
    return E, "eigsh of the PPMI matrix (fit_embeddings not available)"


def _queries(E, held_out, noise, rng):
    """Encoded held-out label sets (normalised sums of their label vectors) plus Gaussian
    noise of norm `noise`, normalised: a stand-in for a trained model's predictions."""
    T = np.asarray(sp.csr_matrix(held_out) @ E, dtype=np.float32)
    T /= np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
    Q = T + noise * _unit(rng, len(T), E.shape[1])
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    return np.ascontiguousarray(Q, dtype=np.float32), float(np.mean((Q * T).sum(axis=1)))


@pytest.fixture(scope="module")
def real_vectors(topic_1m):
    """(label vectors, their source, held-out label sets) of the shared topic set."""
    Y = topic_1m
    n_test = scaled(100_000)
    train, held_out = Y[:-n_test], Y[-n_test:]
    E, source = _embedding(train, min(D, Y.shape[1] // 4))
    return E, source, held_out


@pytest.mark.parametrize("noise", [0.5, 1.0])
def test_topk_real_case(benchmark, real_vectors, noise):
    E, source, held_out = real_vectors
    dim = E.shape[1]
    rng = np.random.default_rng(1)
    Q, cos = _queries(E, held_out, noise, rng)
    k = 10
    t = time.perf_counter()
    index = labelemb.TopkIndex(E, num_threads=THREADS)
    build = time.perf_counter() - t
    a = labelemb.topk(Q, E, k, num_threads=THREADS)
    b = index.search(Q, k)
    identical = bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))
    ours = "TopkIndex.search (pruned)"
    funcs = {ours: lambda: index.search(Q, k),
             "labelemb.topk (exhaustive)": lambda: labelemb.topk(Q, E, k, num_threads=THREADS)}
    try:
        funcs["faiss IndexFlatIP.search"] = _faiss(Q, E, k)
    except pytest.skip.Exception:
        pass
    limits = _blas_limits()
    try:
        med = compare(f"topk real case n={len(Q)} L={E.shape[0]} d={dim} k={k} noise={noise}",
                      funcs, repeats=REPEATS, extra={
                          "label vectors": source, "mean cos(query, target)": round(cos, 3),
                          "index build (s)": round(build, 2),
                          "n_clusters": index.n_clusters_,
                          "scores computed (share of n x L)":
                              round(index.last_scored_fraction_, 3),
                          "identical to exhaustive (indices and scores)": identical})
    finally:
        if limits is not None:
            limits.unregister()
    base = med[ours]
    print(f"  exhaustive / pruned: {med['labelemb.topk (exhaustive)'] / base:.2f}")
    if "faiss IndexFlatIP.search" in med:
        print(f"  faiss / pruned: {med['faiss IndexFlatIP.search'] / base:.2f} (target >= 2)")
    benchmark.pedantic(index.search, args=(Q, k), rounds=1)
    assert identical
