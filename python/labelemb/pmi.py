"""Step 2 of the method: pointwise mutual information from co-occurrence counts."""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from . import _core
from ._validation import check_choice, check_float, check_int, check_threads
from .cooccurrence import Cooccurrence, check_memory, cooccurrence, memory_budget

PMI_KINDS = ("ppmi", "pmi")
DIAGONALS = ("self", "zero")


def _half_log_marginals(counts: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """h_i = (log p_i + log q_i) / 2 with p_i = c_i / n and q the alpha-smoothed marginal.

    q_i = (c_i^alpha / sum_j c_j^alpha) * (sum_j c_j / n): smoothing moves probability
    mass from frequent to rare labels and keeps the total, so alpha = 1 gives q = p and
    the textbook PMI. Using the geometric mean of p and q on both sides keeps the matrix
    symmetric (context smoothing alone would not).
    """
    h = np.full(len(counts), np.nan)
    seen = counts > 0
    c = counts[seen].astype(np.float64)
    log_p = np.log(c) - np.log(n)
    if alpha == 1.0:
        log_q = log_p
    else:
        log_ca = alpha * np.log(c)
        m = log_ca.max()
        log_q = log_ca - (m + np.log(np.exp(log_ca - m).sum())) + np.log(c.sum()) - np.log(n)
    h[seen] = 0.5 * (log_p + log_q)
    return h


def pmi_memory(n_labels: int, n_pairs: int, index_size: int, num_threads: int = 0) -> int:
    """Upper bound (bytes) of what :func:`pmi_matrix` allocates: a value per upper pair,
    the full symmetric output (both triangles and the diagonal), and per-thread row
    counters of ``n_labels`` entries."""
    nt = num_threads or (os.cpu_count() or 1)
    out = (2 * n_pairs + n_labels) * (index_size + 4)
    return int(4 * n_pairs + out + 8 * n_labels * (nt + 4))


def pmi_matrix(counts, *, kind: str = "ppmi", shift: float = 0.0, alpha: float = 1.0,
               min_count: int = 1, diagonal: str = "self", num_threads: int = 0) -> sp.csr_matrix:
    """The symmetric label PMI matrix.

    ``PMI_ij = log(C_ij * n / (c_i * c_j)) - shift`` over the label pairs seen together at
    least ``min_count`` times; pairs never seen are 0 (not stored).

    Parameters
    ----------
    counts : Cooccurrence or anything :func:`labelemb.cooccurrence` accepts
    kind : {"ppmi", "pmi"}, default "ppmi"
        "ppmi" keeps only positive values (clips at 0); "pmi" keeps negative ones too.
    shift : float, default 0.0
        Subtracted from every value: ``shift = log(k)`` gives the shifted PMI of
        Levy and Goldberg (k negative samples). Must be >= 0.
    alpha : float in (0, 1], default 1.0
        Context-distribution smoothing: marginals ``c^alpha`` renormalised (0.75 is the
        usual choice), applied symmetrically (geometric mean of the plain and smoothed
        marginal on both sides) so the matrix stays symmetric. 1.0 is plain PMI.
    min_count : int, default 1
        Pairs (and, on the diagonal, labels) seen fewer times are dropped.
    diagonal : {"self", "zero"}, default "self"
        "self" stores the self-information ``log(n / c_i)`` (under the same smoothing and
        shift) on the diagonal; "zero" leaves it empty.
    num_threads : int, default 0
        0 uses all cores.

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (L, L)
        Symmetric, sorted indices. Labels never seen give empty rows.
    """
    check_choice(kind, "kind", PMI_KINDS)
    check_choice(diagonal, "diagonal", DIAGONALS)
    shift = check_float(shift, "shift", lo=0.0, hint=" (log of k)")
    alpha = check_float(alpha, "alpha", lo=0.0, hi=1.0, lo_open=True, hint=" (0.75 is usual)")
    min_count = check_int(min_count, "min_count", lo=1)
    num_threads = check_threads(num_threads)
    if not isinstance(counts, Cooccurrence):
        counts = cooccurrence(counts, num_threads=num_threads)
    L = counts.n_labels
    n = counts.n_samples
    if n == 0:
        raise ValueError("counts: no samples were counted; PMI needs at least one sample")
    h = _half_log_marginals(counts.label_counts, n, float(alpha))
    diag = None
    if diagonal == "self":
        c = counts.label_counts
        diag = np.full(L, np.nan)
        ok = c >= min_count
        diag[ok] = np.log(c[ok]) - np.log(n) - 2.0 * h[ok] - shift
        if kind == "ppmi":
            diag[diag <= 0] = np.nan
    p = counts.pairs
    check_memory(pmi_memory(L, p.nnz, p.indices.itemsize, num_threads), memory_budget(),
                 f"the PMI matrix of {L} labels and {p.nnz} pairs",
                 "Raise min_count in the counts (prune rare pairs) or cap the label space.")
    hh = np.where(np.isnan(h), 0.0, h)
    indptr, indices, data = _core.pmi(
        np.ascontiguousarray(p.indptr, dtype=np.int64), np.ascontiguousarray(p.indices),
        np.ascontiguousarray(p.data, dtype=np.int64), hh, diag, float(np.log(n)), float(shift),
        min(int(min_count), 2**62), kind == "ppmi", num_threads)  # (no count reaches 2^62)
    out = sp.csr_matrix((data, indices, indptr), shape=(L, L))
    out.has_sorted_indices = True
    return out
