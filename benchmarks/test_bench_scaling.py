"""Memory of each step as a function of n, L, d and nnz (for the README's Scaling table).

For each step, the peak extra resident memory of one call (``/proc`` high-water mark,
native allocations included) is printed next to the size of its input and output.
"""

from __future__ import annotations

import numpy as np
import pytest
from _util import array_bytes, peak_memory, scaled, synthetic_labels

import labelemb

MB = 2**20


@pytest.mark.parametrize("n, L", [(1_000_000, 20_000), (4_000_000, 50_000)])
def test_memory_per_step(benchmark, n, L):
    Y = synthetic_labels(n, L)
    n, L = Y.shape
    d = 64
    rows = []
    counts, peak = peak_memory(lambda: labelemb.cooccurrence(Y))
    out = array_bytes(counts.pairs)
    rows.append(("cooccurrence", f"nnz(Y)={Y.nnz:,}", array_bytes(Y), out, peak))
    P, peak = peak_memory(lambda: labelemb.pmi_matrix(counts))
    rows.append(("pmi_matrix", f"pairs={counts.n_pairs:,}", out, array_bytes(P), peak))
    (vals, vecs), peak = peak_memory(lambda: labelemb.randomized_eigh(P, d))
    rows.append(("randomized_eigh", f"nnz(PMI)={P.nnz:,}, d={d}", array_bytes(P),
                 vecs.nbytes + vals.nbytes, peak))
    E = np.ascontiguousarray(vecs, dtype=np.float32)
    q = scaled(100_000)
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((q, E.shape[1])).astype(np.float32)
    (idx, sc), peak = peak_memory(lambda: labelemb.topk(Q, E, 10))
    rows.append(("topk (k=10)", f"queries={q:,}", Q.nbytes + E.nbytes, idx.nbytes + sc.nbytes,
                 peak))
    print(f"\n== memory per step, n={n:,} L={L:,}")
    print(f"  {'step':<16s} {'size':<30s} {'input MB':>9s} {'output MB':>10s}"
          f" {'peak extra MB':>14s}")
    for name, size, i, o, p in rows:
        print(f"  {name:<16s} {size:<30s} {i / MB:9.1f} {o / MB:10.1f} {p / MB:14.1f}")
    benchmark.pedantic(labelemb.pmi_matrix, args=(counts,), rounds=1)
    assert all(p >= 0 for *_, p in rows)
