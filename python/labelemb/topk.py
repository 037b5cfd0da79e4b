"""Step 6 of the method: decoding predictions into labels.

A prediction ``p`` (a point in embedding space) ranks every label by ``p · E_i``.
:func:`topk` returns the best ``k`` labels of each prediction, exactly (ties go to the
lower label id); :func:`threshold` returns every label above a score. :class:`TopkIndex`
gives the same results as :func:`topk` faster on structured label vectors by skipping
clusters of labels that provably cannot enter a row's top-k.

NumPy inputs run in the C++ core (blocked sgemm + per-row selection, OpenMP); torch
tensors run with torch on the tensors' device (blocked ``mm`` + ``topk``, no copy to the
host). torch is imported only when a tensor is passed.
"""

from __future__ import annotations

import numbers
import sys
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp

from . import _core
from ._validation import check_float, check_int, check_k, check_threads

_INT32_MAX = np.iinfo(np.int32).max
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------- validation
def _is_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _index_dtype(L: int):
    return np.int32 if L - 1 <= _INT32_MAX else np.int64


def _check_matrix(x, name: str) -> Tuple[np.ndarray, float]:
    """``x`` as a C-contiguous float32 matrix, and its largest row norm.

    Raises TypeError for sparse or non-float input, ValueError for a wrong number of
    dimensions, NaN/Inf, or values so large that scores would overflow float32.
    """
    if sp.issparse(x):
        raise TypeError(f"{name} is a sparse matrix; pass a dense 2-D array "
                        f"(for example {name}.toarray())")
    a = np.asarray(x)
    if a.dtype.kind not in "f":
        raise TypeError(f"{name} has dtype {a.dtype}; pass float32 (float64 is accepted and "
                        "converted)")
    if a.ndim != 2:
        hint = " (use .reshape(1, -1) for a single row)" if a.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D, got {a.ndim}-D with shape {a.shape}{hint}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.size == 0:
        return a, 0.0
    # One pass: squared row norms (float32) are finite iff the values are finite and
    # small enough; only when they are not do we look closer, to say which.
    sq = np.einsum("ij,ij->i", a, a)
    if not np.isfinite(sq).all():
        bad = ~np.isfinite(a)
        if bad.any():
            row = int(np.nonzero(bad.any(axis=1))[0][0])
            raise ValueError(f"{name} contains NaN or Inf (first in row {row}); remove or fix "
                             "those rows")
        sq = np.einsum("ij,ij->i", a.astype(np.float64), a.astype(np.float64))
    return a, float(np.sqrt(sq.max()))


def _check_scale(q_norm: float, v_norm: float) -> None:
    # |q · v| <= |q| |v|: below the float32 range, no score or partial sum overflows.
    if q_norm * v_norm >= _FLOAT32_MAX / 4:
        raise ValueError(
            f"queries and vectors are too large (row norms up to {q_norm:.3g} and {v_norm:.3g}):"
            " their scores would overflow float32; rescale them (for example normalise rows)"
        )


def _check_exclude(exclude, n: int, L: int) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """``exclude`` (sparse n x L, or n sequences of label ids) as sorted, unique CSR arrays."""
    if exclude is None:
        return None, None
    if sp.issparse(exclude):
        if exclude.ndim != 2 or exclude.shape != (n, L):
            raise ValueError(f"exclude must have shape (n_queries, n_labels) = ({n}, {L}), got "
                             f"{exclude.shape}")
        m = sp.csr_matrix(exclude, copy=True)
        m.eliminate_zeros()
    elif isinstance(exclude, (list, tuple)) or (isinstance(exclude, np.ndarray)
                                                 and exclude.dtype == object):
        if len(exclude) != n:
            raise ValueError(f"exclude must have one label list per query ({n}), got "
                             f"{len(exclude)}")
        lens = np.fromiter((len(r) for r in exclude), dtype=np.int64, count=n)
        flat = [x for r in exclude for x in r]
        if not all(isinstance(x, (numbers.Integral, np.integer))
                   and not isinstance(x, (bool, np.bool_)) for x in flat):
            raise TypeError("exclude: label ids must be integers")
        ids = np.asarray(flat, dtype=np.int64) if flat else np.zeros(0, np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= L):
            raise ValueError(f"exclude: label ids must lie in [0, {L}), got "
                             f"{ids.min()} .. {ids.max()}")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        m = sp.csr_matrix((np.ones(len(ids), np.int8), ids, indptr), shape=(n, L))
    else:
        raise TypeError(f"exclude must be a scipy sparse matrix (n_queries x n_labels) or a list "
                        f"of label-id lists, got {type(exclude).__name__}")
    m.sum_duplicates()  # also sorts the indices
    return (np.ascontiguousarray(m.indptr, dtype=np.int64),
            np.ascontiguousarray(m.indices, dtype=np.int64))


# ---------------------------------------------------------------- top-k
def topk(queries, vectors, k: int, *, exclude=None, num_threads: int = 0,
         index: Optional[TopkIndex] = None):
    """Exact top-k labels of each query by inner product.

    Row ``i`` of the result ranks the labels ``l`` by ``queries[i] · vectors[l]``,
    highest first; equal scores are ordered by lower label id, so the result is
    deterministic (and independent of ``num_threads``).

    Parameters
    ----------
    queries : array of shape (n, d), float32, or a torch tensor
        The predictions. float64 is accepted and converted to float32 once (a copy); so
        are non-contiguous arrays. A torch tensor (any device) is decoded with torch on
        its device, see Notes.
    vectors : array of shape (L, d), float32, or a :class:`TopkIndex`
        The label vectors (for example ``LabelEmbedding.vectors``). Pass a
        :class:`TopkIndex` (or ``index=``) to use its pruned search.
    k : int
        Labels per row, ``1 <= k <= L``.
    exclude : scipy sparse matrix (n, L) or list of n label-id lists, optional
        Labels a row must not return (for example labels already known). A row left
        with fewer than ``k`` labels is padded with index -1 and score -inf.
    num_threads : int, default 0
        0 uses all cores. Ignored for torch tensors (torch's own settings apply).
    index : TopkIndex, optional
        A prebuilt index over ``vectors``; ``vectors`` may then be None.

    Returns
    -------
    indices : ndarray of shape (n, k), int32 (int64 when L > 2^31 - 1)
    scores : ndarray of shape (n, k), float32
        Each row sorted by decreasing score. For torch input both are tensors on the
        queries' device.

    Notes
    -----
    Scores are exact: the dot product accumulated in float64 in a fixed order and
    rounded once to float32, so they do not depend on the BLAS, the blocking, the
    thread count or the path. The C++ path finds the candidates with blocked sgemm into
    a thread-local buffer and a running selection per row (nothing of size n x L is
    allocated), keeping every label within sgemm's rounding error of the k-th score, and
    rescores those. The torch path does the same with ``torch.mm`` and ``torch.topk``
    (rounding bounds for TF32/bfloat16 matmuls when torch allows them), so it returns
    the same indices and scores as the C++ path (up to the last bit of float64 sums,
    which differ in order: a score that lies within 1e-16 of a float32 rounding boundary
    may round differently).

    Examples
    --------
    >>> import numpy as np, labelemb
    >>> vectors = np.eye(3, dtype=np.float32)
    >>> idx, s = labelemb.topk(np.array([[0.1, 0.9, 0.5]], np.float32), vectors, 2)
    >>> idx.tolist(), s.tolist()
    ([[1, 2]], [[0.8999999761581421, 0.5]])
    """
    if isinstance(vectors, TopkIndex):
        if index is not None and index is not vectors:
            raise ValueError("pass the index either as vectors or as index=, not two indexes")
        index, vectors = vectors, None
    if index is not None:
        if not isinstance(index, TopkIndex):
            raise TypeError(f"index must be a TopkIndex, got {type(index).__name__}")
        if vectors is not None and np.shape(vectors) != index.vectors.shape:
            raise ValueError(f"vectors have shape {np.shape(vectors)} but the index was built "
                             f"on {index.vectors.shape}; pass vectors=None with index=")
        if _is_tensor(queries):
            vectors = index.vectors
        else:
            return index.search(queries, k, exclude=exclude, num_threads=num_threads)
    if vectors is None:
        raise TypeError("vectors is required (an (L, d) array or a TopkIndex)")
    if _is_tensor(queries) or _is_tensor(vectors):
        return _torch_topk(queries, vectors, k, exclude=exclude)
    num_threads = check_threads(num_threads)
    v, v_norm = _check_matrix(vectors, "vectors")
    L, d = v.shape
    if d == 0:
        raise ValueError("vectors must have at least one column")
    k = check_k(k, L, "the number of labels")
    q, q_norm = _check_matrix(queries, "queries")
    if q.shape[1] != d:
        raise ValueError(f"queries have {q.shape[1]} columns but vectors have {d}; both must "
                         "live in the same embedding space")
    _check_scale(q_norm, v_norm)
    n = q.shape[0]
    ex_indptr, ex_indices = _check_exclude(exclude, n, L)
    indices = np.empty((n, k), dtype=_index_dtype(L))
    scores = np.empty((n, k), dtype=np.float32)
    if n:
        _core.topk(q, v, k, ex_indptr, ex_indices, scores, indices, num_threads)
    return indices, scores


def threshold(queries, vectors, min_score: float, *, num_threads: int = 0) -> sp.csr_matrix:
    """Every label whose score is above ``min_score``, for each query.

    Parameters
    ----------
    queries : array of shape (n, d), float32, or a torch tensor
        float64 is accepted and converted to float32 once. Torch tensors are scored on
        their device; the (sparse) result comes back to the host.
    vectors : array of shape (L, d), float32
    min_score : float
        Labels with ``queries[i] · vectors[l] > min_score`` are kept (the exact score, as
        :func:`topk` reports it, against ``min_score`` rounded to float32).
    num_threads : int, default 0
        0 uses all cores.

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (n, L)
        The scores of the kept labels, sorted indices (int32, or int64 when L > 2^31 - 1).
        A kept score of exactly 0.0 would be a stored zero; it is kept as such.

    Examples
    --------
    >>> import numpy as np, labelemb
    >>> q = np.array([[0.1, 0.9, 0.5]], np.float32)
    >>> m = labelemb.threshold(q, np.eye(3, dtype=np.float32), 0.3)
    >>> m.indices.tolist()
    [1, 2]
    """
    min_score = check_float(min_score, "min_score")
    if _is_tensor(queries) or _is_tensor(vectors):
        return _torch_threshold(queries, vectors, float(min_score))
    num_threads = check_threads(num_threads)
    v, v_norm = _check_matrix(vectors, "vectors")
    L, d = v.shape
    if d == 0:
        raise ValueError("vectors must have at least one column")
    q, q_norm = _check_matrix(queries, "queries")
    if q.shape[1] != d:
        raise ValueError(f"queries have {q.shape[1]} columns but vectors have {d}; both must "
                         "live in the same embedding space")
    _check_scale(q_norm, v_norm)
    n = q.shape[0]
    if n == 0 or L == 0:
        return sp.csr_matrix((n, L), dtype=np.float32)
    indptr, indices, data = _core.threshold(q, v, float(min_score), num_threads)
    out = sp.csr_matrix((data, indices, indptr), shape=(n, L))
    out.has_sorted_indices = True
    return out


# ---------------------------------------------------------------- pruned index
class TopkIndex:
    """Exact top-k over fixed label vectors that skips labels which cannot win.

    The labels are grouped by k-means into clusters, each stored contiguously with a
    centre ``c``, its labels ordered by decreasing distance ``|v - c|``. Since
    ``q · v <= q · c + |q| |v - c|``, a row can only want the labels of a cluster far
    enough from the centre to beat its current k-th score (with a margin for float
    rounding): a prefix of the cluster, often empty. Queries are grouped by their most
    promising clusters, clusters are visited in decreasing order of bound so the k-th
    scores rise fast, and a prefix is scored for the whole block of queries when many
    rows want it, else only for those rows. The results (indices and scores) are those
    of :func:`topk` on the same vectors; the speed-up depends on how clustered the
    vectors are and how concentrated the queries' scores are (label embeddings and model
    predictions are; random vectors are not, and there the index is slower than
    :func:`topk`). Small k gains most.

    Parameters
    ----------
    vectors : array of shape (L, d), float32 (float64 converted)
    n_clusters : int, optional
        Defaults to about ``L / 40`` (at least 1): clusters of ~40 labels, whose centres
        cost ~2.5% of an exhaustive search to score. (On PPMI label vectors, L = 20,000,
        d = 256, k = 10, L/40 searched up to 8% faster than L/32 or L/50, and 20-30%
        faster than L/16 or L/80.)
    n_iter : int, default 10
        k-means (Lloyd) iterations.
    seed : int, default 0
    num_threads : int, default 0
        Threads of the searches (0 = all cores); the build uses numpy.

    Attributes
    ----------
    vectors : ndarray (L, d) float32
        The label vectors, in their original order.
    n_clusters_ : int
    labels_ : ndarray (L,) int64
        The cluster of each label.
    radii_ : ndarray (n_clusters_,) float64
        The largest distance of a label to its cluster's centre.
    last_scored_fraction_ : float or None
        Share of the n x L scores the last :meth:`search` computed (1.0 = exhaustive).

    Examples
    --------
    >>> import numpy as np, labelemb
    >>> rng = np.random.default_rng(0)
    >>> V = rng.standard_normal((1000, 16)).astype(np.float32)
    >>> index = labelemb.TopkIndex(V, n_clusters=16)
    >>> q = rng.standard_normal((5, 16)).astype(np.float32)
    >>> bool((index.search(q, 3)[0] == labelemb.topk(q, V, 3)[0]).all())
    True
    """

    def __init__(self, vectors, n_clusters: Optional[int] = None, *, n_iter: int = 10,
                 seed: int = 0, num_threads: int = 0):
        v, v_norm = _check_matrix(vectors, "vectors")
        L, d = v.shape
        if L == 0 or d == 0:
            raise ValueError(f"vectors must have at least one row and one column, got {v.shape}")
        if n_clusters is None:
            n_clusters = max(1, int(round(L / 40)))
        n_clusters = check_int(n_clusters, "n_clusters", lo=1, hi=L)
        n_iter = check_int(n_iter, "n_iter", lo=0)
        self.num_threads = check_threads(num_threads)
        self.vectors = v
        self._v_norm = v_norm
        assign, centres = _kmeans(v, int(n_clusters), int(n_iter), seed)
        # Empty clusters are dropped.
        used, assign = np.unique(assign, return_inverse=True)
        nc = len(used)
        counts = np.bincount(assign, minlength=nc)
        offsets = np.zeros(nc + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        # Centres stay the means: they minimise the distances of the typical (tight) labels,
        # which is what the per-label bound pays; loose labels are scored anyway.
        centres = np.ascontiguousarray(centres[used], dtype=np.float32)
        # Distances from the float32 centres the search uses, in float64, rounded up.
        delta = np.linalg.norm(v.astype(np.float64) - centres[assign].astype(np.float64), axis=1)
        delta = delta * (1 + 1e-9)
        # Within a cluster, labels by decreasing distance (then id): the labels a query
        # block needs are always a prefix.
        order = np.lexsort((np.arange(L), -delta, assign))
        self.n_clusters_ = nc
        self.labels_ = assign.astype(np.int64)
        self.radii_ = np.zeros(nc)
        np.maximum.at(self.radii_, assign, delta)
        self._ids = np.ascontiguousarray(order, dtype=_index_dtype(L))
        self._sorted = np.ascontiguousarray(v[order])  # contiguous prefixes, cheap to gather
        self._delta = np.ascontiguousarray(delta[order])
        self._offsets = offsets
        self._centres = centres
        self.last_scored_fraction_ = None

    def __repr__(self) -> str:
        L, d = self.vectors.shape
        return f"TopkIndex(L={L}, d={d}, n_clusters={self.n_clusters_})"

    def search(self, queries, k: int, *, exclude=None, num_threads: Optional[int] = None):
        """Exact top-k of each query: the same ``(indices, scores)`` as :func:`topk`.

        Parameters are those of :func:`topk`; ``num_threads`` defaults to the index's.
        """
        if num_threads is None:
            num_threads = self.num_threads
        if _is_tensor(queries):
            return _torch_topk(queries, self.vectors, k, exclude=exclude)
        num_threads = check_threads(num_threads)
        L, d = self.vectors.shape
        k = check_k(k, L, "the number of labels")
        q, q_norm = _check_matrix(queries, "queries")
        if q.shape[1] != d:
            raise ValueError(f"queries have {q.shape[1]} columns but the index's vectors have "
                             f"{d}; both must live in the same embedding space")
        _check_scale(q_norm, self._v_norm)
        n = q.shape[0]
        ex_indptr, ex_indices = _check_exclude(exclude, n, L)
        indices = np.empty((n, k), dtype=_index_dtype(L))
        scores = np.empty((n, k), dtype=np.float32)
        if n == 0:
            self.last_scored_fraction_ = 0.0
            return indices, scores
        scored = _core.topk_clustered(q, self.vectors, self._sorted, self._ids, self._delta,
                                      self._offsets, self._centres, k, ex_indptr, ex_indices,
                                      scores, indices, num_threads)
        self.last_scored_fraction_ = scored / (n * L)
        return indices, scores


def _kmeans(v: np.ndarray, c: int, n_iter: int, seed: int):
    """k-means on the rows of v (float32): k-means++ seeding on a sample, then Lloyd.

    Returns (assignment, centres)."""
    L = len(v)
    rng = np.random.default_rng(seed)
    sample = v[rng.choice(L, size=min(L, 8 * c), replace=False)]
    centres = _kmeanspp(sample, c, rng)
    assign = np.zeros(L, dtype=np.int64)
    for it in range(n_iter + 1):
        # argmin |v - c|^2 = argmax (v · c - |c|^2 / 2), in blocks to bound memory.
        half = 0.5 * np.einsum("ij,ij->i", centres, centres)
        for a in range(0, L, 8192):
            s = v[a:a + 8192] @ centres.T
            s -= half
            assign[a:a + 8192] = np.argmax(s, axis=1)
        if it == n_iter:
            break
        counts = np.bincount(assign, minlength=c)
        member = sp.csr_matrix((np.ones(L, np.float32), assign, np.arange(L + 1)), shape=(L, c))
        sums = np.asarray(member.T @ v, dtype=np.float64)
        empty = counts == 0
        centres = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        if empty.any():  # reseed empty clusters on random labels
            centres[empty] = v[rng.choice(L, size=int(empty.sum()), replace=False)]
    return assign, centres


def _kmeanspp(x: np.ndarray, c: int, rng) -> np.ndarray:
    """k-means++ seeds (Arthur and Vassilvitskii 2007): each next centre drawn with
    probability proportional to the squared distance to the nearest one so far."""
    m = len(x)
    sq = np.einsum("ij,ij->i", x, x).astype(np.float64)
    first = int(rng.integers(m))
    chosen = [first]
    d2 = np.maximum(sq + sq[first] - 2.0 * (x @ x[first]), 0.0)
    for _ in range(1, c):
        total = d2.sum()
        nxt = int(rng.choice(m, p=d2 / total)) if total > 0 else int(rng.integers(m))
        chosen.append(nxt)
        d2 = np.minimum(d2, np.maximum(sq + sq[nxt] - 2.0 * (x @ x[nxt]), 0.0))
    return x[chosen].copy()


# ---------------------------------------------------------------- torch path
def _torch_inputs(queries, vectors):
    import torch

    if not isinstance(queries, torch.Tensor):
        if sp.issparse(queries):
            raise TypeError("queries is a sparse matrix; pass a dense 2-D array or tensor")
        queries = torch.as_tensor(np.asarray(queries))
    device = queries.device
    if not isinstance(vectors, torch.Tensor):
        if sp.issparse(vectors):
            raise TypeError("vectors is a sparse matrix; pass a dense 2-D array or tensor")
        vectors = torch.as_tensor(np.asarray(vectors))
    for name, t in (("queries", queries), ("vectors", vectors)):
        if not t.is_floating_point():
            raise TypeError(f"{name} has dtype {t.dtype}; pass float32 (float64 is converted)")
        if t.dim() != 2:
            raise ValueError(f"{name} must be 2-D, got {t.dim()}-D with shape {tuple(t.shape)}")
    q = queries.to(dtype=torch.float32).contiguous()
    v = vectors.to(device=device, dtype=torch.float32).contiguous()
    if q.shape[1] != v.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} columns but vectors have {v.shape[1]}; "
                         "both must live in the same embedding space")
    if v.shape[1] == 0:
        raise ValueError("vectors must have at least one column")
    for name, t in (("queries", q), ("vectors", v)):
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or Inf; remove or fix those rows")
    qn = float(q.norm(dim=1).max()) if q.shape[0] else 0.0
    vn = float(v.norm(dim=1).max()) if v.shape[0] else 0.0
    _check_scale(qn, vn)
    return torch, q, v


def _torch_unit_roundoff(torch, device) -> float:
    """Unit roundoff of float32 products on ``device``: TF32 or bfloat16 when allowed."""
    prec = torch.get_float32_matmul_precision()
    if prec == "medium":
        return 2.0 ** -8
    tf32 = device.type == "cuda" and bool(torch.backends.cuda.matmul.allow_tf32)
    return 2.0 ** -11 if tf32 or prec == "high" else 2.0 ** -24


def _torch_exact(torch, q64, v64, idx):
    """Exact scores (float64, rounded to float32) of q64[i] against v64[idx[i, j]]."""
    out = torch.empty(idx.shape, dtype=torch.float32, device=idx.device)
    step = max(1, (1 << 22) // max(1, idx.shape[1] * q64.shape[1]))  # ~32 MB of float64
    for a in range(0, idx.shape[0], step):
        cand = v64[idx[a:a + step]]  # rows x m x d
        out[a:a + step] = (cand * q64[a:a + step, None, :]).sum(dim=2).to(torch.float32)
    return out


def _torch_topk(queries, vectors, k, *, exclude=None, query_block: int = 4096,
                label_block: int = 16384):
    """:func:`topk` for torch tensors, on the queries' device: blocked ``mm`` + ``topk``.

    As in the C++ path, candidates are the labels within the rounding error (2 eps) of a
    row's k-th ``mm`` score; they are rescored in float64 and ranked by (exact score,
    lower id), so the result matches the C++ path.
    """
    torch, q, v = _torch_inputs(queries, vectors)
    n, L = q.shape[0], v.shape[0]
    d = q.shape[1]
    k = check_k(k, L, "the number of labels")
    ex_indptr, ex_indices = _check_exclude(exclude, n, L)
    device = q.device
    if ex_indptr is not None:
        ex_rows = torch.as_tensor(np.repeat(np.arange(n), np.diff(ex_indptr)), device=device)
        ex_cols = torch.as_tensor(ex_indices, device=device)
    out_i = torch.empty((n, k), dtype=torch.int64, device=device)
    out_s = torch.empty((n, k), dtype=torch.float32, device=device)
    neg_inf = float("-inf")
    u = _torch_unit_roundoff(torch, device)
    v64 = v.to(torch.float64)
    vmax = float(v64.norm(dim=1).max()) if L else 0.0
    coef = 2.0 * (2.0 * (d + 2) * u) * vmax  # 2 eps per unit |q|, as in topk.hpp
    tiny = 2.0 * 2.0 * d * float(np.finfo(np.float32).tiny)
    for q0 in range(0, n, query_block):
        qb = q[q0:q0 + query_block]
        q64 = qb.to(torch.float64)
        slack = (coef * q64.norm(dim=1) + tiny).to(torch.float32)[:, None]
        run_s = run_i = None
        if ex_indptr is not None:
            a, b = int(ex_indptr[q0]), int(ex_indptr[min(n, q0 + query_block)])
            blk_rows, blk_cols = ex_rows[a:b] - q0, ex_cols[a:b]
        for l0 in range(0, L, label_block):
            s = qb @ v[l0:l0 + label_block].T
            nl = s.shape[1]
            if ex_indptr is not None:
                sel = (blk_cols >= l0) & (blk_cols < l0 + nl)
                s[blk_rows[sel], blk_cols[sel] - l0] = neg_inf
            kk = min(k, nl)
            # Candidates: every label within the slack of the row's k-th mm score.
            m = min(nl, kk + max(8, kk // 4))
            while True:
                vals, idx = torch.topk(s, m, dim=1, sorted=True)
                bar = vals[:, kk - 1:kk] - slack
                if m == nl or not bool((vals[:, -1:] >= bar).any()):
                    break
                m = min(nl, 2 * m)
            keep = vals >= bar
            exact = _torch_exact(torch, q64, v64, idx + l0)
            exact = torch.where(keep & (vals > neg_inf), exact, torch.full_like(exact, neg_inf))
            # Rank the candidates by (exact score desc, id asc); keep kk.
            idx, perm = torch.sort(idx, dim=1)
            exact = exact.gather(1, perm)
            exact, perm = torch.sort(exact, dim=1, descending=True, stable=True)
            vals, idx = exact[:, :kk], idx.gather(1, perm[:, :kk]) + l0
            if run_s is None:
                run_s, run_i = vals, idx
            else:
                # Earlier blocks hold lower ids: a stable sort keeps them first on ties.
                cs = torch.cat([run_s, vals], dim=1)
                ci = torch.cat([run_i, idx], dim=1)
                cs, perm = torch.sort(cs, dim=1, descending=True, stable=True)
                run_s, run_i = cs[:, :k], ci.gather(1, perm[:, :k])
        run_i = run_i.masked_fill(run_s == neg_inf, -1)
        out_s[q0:q0 + query_block] = run_s
        out_i[q0:q0 + query_block] = run_i
    if _index_dtype(L) == np.int32:
        out_i = out_i.to(torch.int32)
    return out_i, out_s


def _torch_threshold(queries, vectors, min_score: float, query_block: int = 4096):
    """:func:`threshold` for torch tensors: scored on the device (candidates within the
    rounding error of ``min_score`` rescored exactly), result as host CSR."""
    torch, q, v = _torch_inputs(queries, vectors)
    n, L = q.shape[0], v.shape[0]
    d = q.shape[1]
    u = _torch_unit_roundoff(torch, q.device)
    v64 = v.to(torch.float64)
    vmax = float(v64.norm(dim=1).max()) if L else 0.0
    coef = 2.0 * (d + 2) * u * vmax
    tiny = 2.0 * d * float(np.finfo(np.float32).tiny)
    rows, cols, vals = [], [], []
    for q0 in range(0, n, query_block):
        qb = q[q0:q0 + query_block]
        q64 = qb.to(torch.float64)
        bar = (min_score - coef * q64.norm(dim=1) - tiny).to(torch.float32)[:, None]
        r, c = torch.nonzero(qb @ v.T >= bar, as_tuple=True)
        x = torch.empty(len(r), dtype=torch.float32, device=q.device)
        step = max(1, (1 << 22) // d)  # ~32 MB of float64 per step
        for a in range(0, len(r), step):
            x[a:a + step] = (q64[r[a:a + step]] * v64[c[a:a + step]]).sum(dim=1)
        ok = x > np.float32(min_score)
        rows.append((r[ok] + q0).cpu().numpy())
        cols.append(c[ok].cpu().numpy())
        vals.append(x[ok].cpu().numpy())
    itype = _index_dtype(L)
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols).astype(itype) if cols else np.zeros(0, itype)
    x = np.concatenate(vals).astype(np.float32) if vals else np.zeros(0, np.float32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    out = sp.csr_matrix((x, c, indptr.astype(itype) if itype == np.int32 else indptr),
                        shape=(n, L))
    out.has_sorted_indices = True
    return out
