"""Step 3 of the method: truncated eigendecomposition of the symmetric PMI matrix."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.sparse as sp

from . import _core
from ._validation import check_choice, check_int, check_threads
from .cooccurrence import check_memory, memory_budget

WHICH = ("LA", "LM")
# A is symmetric "within tolerance" when max |A - A^T| <= SYMMETRY_RTOL * max |A|.
SYMMETRY_RTOL = 1e-5


def _as_symmetric_csr(A, num_threads: int):
    """CSR arrays (int64 indptr, sorted unique int32/int64 indices, float32 data) of a
    symmetric sparse matrix, validated."""
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {A.shape}")
    if A.dtype.kind not in "biuf":
        raise TypeError(f"A has dtype {A.dtype}; pass a real (float or integer) matrix")
    csr = sp.csr_matrix(A)
    if not np.all(np.isfinite(csr.data)):
        raise ValueError("A contains NaN or Inf values")
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()  # sorts indices and merges repeats
    if csr.dtype.itemsize > 4 and len(csr.data) and \
            np.abs(csr.data).max() > np.finfo(np.float32).max:
        raise ValueError("A has values too large for float32 (the sparse products run in float32)")
    data = np.ascontiguousarray(csr.data, dtype=np.float32)
    n = csr.shape[0]
    itype = np.int32 if n <= np.iinfo(np.int32).max else np.int64
    # (not a scipy matrix: scipy would narrow the int64 indptr back to int32)
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(csr.indices, dtype=itype)
    return indptr, indices, data


def _check_symmetric_csr(arrays, num_threads: int) -> None:
    asym, biggest = _core.csr_asymmetry(*arrays, num_threads)
    if asym > SYMMETRY_RTOL * biggest:
        raise ValueError(
            f"A is not symmetric: max |A - A.T| = {asym:.3g} exceeds {SYMMETRY_RTOL:g} * max |A| "
            f"= {SYMMETRY_RTOL * biggest:.3g}; pass (A + A.T) / 2 if that is what you mean")


def _as_symmetric_dense(A: np.ndarray) -> np.ndarray:
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {A.shape}")
    if A.dtype.kind not in "biuf":
        raise TypeError(f"A has dtype {A.dtype}; pass a real (float or integer) matrix")
    dtype = np.float32 if A.dtype == np.float32 else np.float64
    a = np.ascontiguousarray(A, dtype=dtype)
    if not np.all(np.isfinite(a)):
        raise ValueError("A contains NaN or Inf values")
    biggest = float(np.abs(a).max()) if a.size else 0.0
    asym = float(np.abs(a - a.T).max()) if a.size else 0.0
    if asym > SYMMETRY_RTOL * biggest:
        raise ValueError(
            f"A is not symmetric: max |A - A.T| = {asym:.3g} exceeds {SYMMETRY_RTOL:g} * max |A| "
            f"= {SYMMETRY_RTOL * biggest:.3g}; pass (A + A.T) / 2 if that is what you mean")
    return a


def randomized_eigh(A, k: int, *, which: str = "LA", n_iter: int = 4, oversample: int = 16,
                    seed: int = 0, num_threads: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Truncated eigendecomposition of a symmetric matrix by randomized range finding.

    Halko, Martinsson and Tropp (2011) with power iterations, specialised to symmetric
    ``A`` (one product with ``A`` per iteration, since ``A.T == A``), and a Rayleigh-Ritz
    step on the last three Krylov blocks ``span(Q, A Q, A^2 Q)`` (block Lanczos). The
    whole loop runs in C++: sparse products in float32 (OpenMP), orthonormalisation
    (Cholesky QR, Householder QR as fallback) and the projected eigenproblem in float64
    LAPACK.

    Parameters
    ----------
    A : scipy sparse matrix or ndarray, shape (n, n)
        Symmetric (``max |A - A.T| <= 1e-5 max |A|``), finite. Sparse input is
        converted once to CSR with float32 values (the products run in float32); a dense
        float32 array is multiplied with sgemm, any other dense dtype as float64 (dgemm).
    k : int
        Number of eigenpairs, ``1 <= k < n``.
    which : {"LA", "LM"}, default "LA"
        "LA" keeps the largest algebraic eigenvalues (the positive part a dot product can
        represent); "LM" the largest in magnitude (for symmetric ``A``, the same subspace
        as a truncated SVD). Power iteration amplifies by magnitude in both cases: with
        "LA", negative eigenvalues of large magnitude take slots of the ``k +
        oversample`` basis, so raise ``oversample`` when ``A`` has many of them.
    n_iter : int, default 4
        Power iterations. The products with ``A``: ``n_iter + 3`` in all (the start block,
        ``n_iter - 1`` power iterations, 3 for the Krylov blocks); scikit-learn's
        ``randomized_svd`` takes ``2 n_iter + 2`` for the same ``n_iter``.
    oversample : int, default 16
        Extra basis vectors: the block has ``l = min(k + oversample, n)`` columns. When
        ``3 l >= n`` the problem is small and solved exactly (dense eigensolver).
    seed : int, default 0
        Seed of the random start block; the same seed gives the same result.
    num_threads : int, default 0
        Threads (0 = all cores). The work is split in fixed blocks, so the result does not
        depend on the number of threads.

    Returns
    -------
    eigenvalues : ndarray of float64, shape (k,)
        In decreasing order.
    eigenvectors : ndarray of float32, shape (n, k)
        Orthonormal columns, column ``j`` for ``eigenvalues[j]``; each column's sign is
        fixed so that its largest-magnitude entry is positive.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, labelemb
    >>> rng = np.random.default_rng(0)
    >>> V = rng.standard_normal((500, 5))
    >>> A = sp.csr_matrix(V @ V.T + np.diag(rng.random(500)))  # rank 5 + a small diagonal
    >>> w, U = labelemb.randomized_eigh(A, 5)
    >>> w.shape, U.shape, U.dtype.name
    ((5,), (500, 5), 'float32')
    >>> bool(np.allclose(w, np.linalg.eigvalsh(A.toarray())[::-1][:5], rtol=1e-5))
    True
    """
    check_choice(which, "which", WHICH)
    n_iter = check_int(n_iter, "n_iter", lo=0, hi=10_000)
    oversample = check_int(oversample, "oversample", lo=0)
    seed = check_int(seed, "seed", lo=0, hi=2**64 - 1)
    num_threads = check_threads(num_threads)
    if sp.issparse(A):
        csr = _as_symmetric_csr(A, num_threads)
        dense = None
    elif isinstance(A, np.ndarray):
        dense = _as_symmetric_dense(A)
        csr = None
    else:
        raise TypeError(f"A must be a scipy sparse matrix or a numpy array, got "
                        f"{type(A).__name__}")
    n = A.shape[0]
    if n < 2:
        raise ValueError(f"A must be at least 2 x 2, got {n} x {n}")
    k = check_int(k, "k", lo=1)
    if k >= n:
        raise ValueError(f"k must be smaller than the size of A ({n}), got k={k}; for all "
                         "eigenpairs use numpy.linalg.eigh")
    if csr is not None:
        _check_symmetric_csr(csr, num_threads)
    return _eigh(csr if csr is not None else dense, n, k, which, n_iter, oversample, seed,
                 num_threads)


def eigh_memory(n: int, k: int, n_iter: int = 4, oversample: int = 16) -> int:
    """Upper bound (bytes) of the working memory of :func:`randomized_eigh` (besides
    ``A``): two n x 3l float64 Krylov blocks, the n x k result in float64 and float32 and
    an n x l float32 panel, or, when 3l >= n (solved exactly), the dense n x n matrix and
    the eigensolver's workspace."""
    width = min(n, k + min(oversample, n))
    b = min(3, n_iter + 2) * width
    if b >= n:
        return int(24 * n * n + 8 * n * min(n, 256) + 12 * n * k)
    return int(16 * n * b + 12 * n * k + 4 * n * width + 8 * b * b)


def _eigh(A, n: int, k: int, which: str, n_iter: int, oversample: int, seed: int,
          num_threads: int) -> Tuple[np.ndarray, np.ndarray]:
    """randomized_eigh on arguments already checked: ``A`` is the CSR arrays of
    :func:`_as_symmetric_csr` (or of a matrix symmetric by construction) or a dense array."""
    check_memory(eigh_memory(n, k, n_iter, oversample), memory_budget(),
                 f"the rank-{k} eigendecomposition of a {n} x {n} matrix",
                 "Ask for fewer eigenpairs (dim) or a smaller oversample.")
    oversample = min(oversample, n)  # the basis has at most n columns anyway
    values = np.empty(k, dtype=np.float64)
    vectors = np.empty((n, k), dtype=np.float32)
    args = (k, oversample, n_iter, which == "LA", seed, values, vectors, num_threads)
    if isinstance(A, tuple):
        _core.eigh_csr(*A, *args)
    else:
        _core.eigh_dense(A, *args)
    return values, vectors


def _symmetric_csr_arrays(P: sp.csr_matrix):
    """The CSR arrays of a matrix known to be symmetric, finite and canonical (a PMI
    matrix), without the O(nnz) checks of :func:`_as_symmetric_csr`."""
    n = P.shape[0]
    itype = np.int32 if n <= np.iinfo(np.int32).max else np.int64
    return (np.ascontiguousarray(P.indptr, dtype=np.int64),
            np.ascontiguousarray(P.indices, dtype=itype),
            np.ascontiguousarray(P.data, dtype=np.float32))
