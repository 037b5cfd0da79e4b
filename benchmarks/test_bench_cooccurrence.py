"""Co-occurrence counting against the libraries a user would otherwise call.

Figures (issue: the installable package and its first kernel): ``labelemb.cooccurrence``
vs scipy ``Y.T @ Y`` on CSR and torch's sparse CSR product, 2 threads; the 1 -> 2 thread
speed-up; and the call's peak extra memory relative to input + output.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _util import array_bytes, compare, peak_memory

import labelemb


def _torch_product(Y):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():  # "CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        t = torch.sparse_csr_tensor(torch.from_numpy(Y.indptr.astype(np.int64)),
                                    torch.from_numpy(Y.indices.astype(np.int64)),
                                    torch.from_numpy(Y.data.astype(np.float32)), size=Y.shape,
                                    check_invariants=False)

    def run():
        # Same work as the others: the transpose is part of the product.
        torch.set_num_threads(2)
        return torch.sparse.mm(t.t().to_sparse_csr(), t)

    return run


@pytest.mark.parametrize("data", ["topic_1m", "topic_4m"])
def test_cooccurrence_vs_peers(benchmark, request, data):
    Y = request.getfixturevalue(data)
    n, L = Y.shape
    funcs = {
        "labelemb.cooccurrence (2 threads)": lambda: labelemb.cooccurrence(Y, num_threads=2),
        "labelemb.cooccurrence (1 thread)": lambda: labelemb.cooccurrence(Y, num_threads=1),
        "scipy Y.T @ Y (CSR)": lambda: Y.T.tocsr() @ Y,
    }
    try:
        funcs["torch.sparse.mm (CSR, 2 threads)"] = _torch_product(Y)
    except pytest.skip.Exception:
        pass
    out, peak = peak_memory(lambda: labelemb.cooccurrence(Y, num_threads=2))
    in_bytes = array_bytes(Y)
    out_bytes = out.pairs.data.nbytes + out.pairs.indices.nbytes + out.pairs.indptr.nbytes
    med = compare(f"cooccurrence n={n} L={L}", funcs, repeats=3, extra={
        "labels per sample": round(Y.nnz / n, 2),
        "pairs (i<j)": out.n_pairs,
        "peak extra memory / (input + output)": round(peak / (in_bytes + out_bytes), 2),
    })
    base = med["labelemb.cooccurrence (2 threads)"]
    print(f"  speed-up vs scipy: {med['scipy Y.T @ Y (CSR)'] / base:.2f}x (target >= 4)")
    if "torch.sparse.mm (CSR, 2 threads)" in med:
        print(f"  speed-up vs torch: {med['torch.sparse.mm (CSR, 2 threads)'] / base:.2f}x"
              " (target >= 2)")
    one = med["labelemb.cooccurrence (1 thread)"]
    print(f"  1 -> 2 threads: {one / base:.2f}x (target >= 1.7)")
    benchmark.pedantic(labelemb.cooccurrence, args=(Y,), kwargs={"num_threads": 2}, rounds=1)
    assert out.n_labels == L


def test_pmi(benchmark, topic_1m):
    c = labelemb.cooccurrence(topic_1m)
    P = benchmark.pedantic(labelemb.pmi_matrix, args=(c,), rounds=3)
    assert P.shape == (c.n_labels, c.n_labels)
