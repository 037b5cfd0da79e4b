"""Step 7 of the method: ranking metrics of decoded predictions.

Every metric takes ``indices``, the top-k index matrix of the predictions (n x K, as
returned by :func:`labelemb.topk`; each row ranked best first, -1 marks an empty slot),
and ``true_labels``, the true label sets of the same n samples (a scipy sparse matrix,
a dense 0/1 array, or a list of label-id lists). Metrics at ``k`` use the first ``k``
columns (``k <= K``).

Definitions, for a sample with true set ``Y`` (``|Y|`` labels) and hits ``h_j`` (1 when
the j-th ranked label is in ``Y``), j = 1..k:

* ``precision@k`` = sum_j h_j / k
* ``recall@k`` = sum_j h_j / |Y|
* ``ndcg@k`` = (sum_j h_j / log2(j + 1)) / (sum_{j <= min(k, |Y|)} 1 / log2(j + 1))
* ``map@k`` (mean average precision, the paper's MAP@100) =
  sum_j h_j * precision@j / min(k, |Y|); with k >= every |Y| and the full ranking this
  is scikit-learn's label ranking average precision.
* ``psp@k`` (propensity-scored precision, Jain et al. 2016) = sum_j h_j / p_{l_j} / k,
  with propensities ``p_l = 1 / (1 + C (N_l + B)^-A)``, ``C = (log N - 1) (B + 1)^A``,
  ``N_l`` the training count of label l and ``N`` the number of training samples.
  Normalised by default (divided by the same sum for the best possible ranking, which
  puts the rarest true labels first), as pyxclib reports it; ``normalize=False`` gives
  the raw mean.
* ``coverage@k`` = share of the labels present in any true set that are correctly
  predicted (in a top k with that label in the true set) for at least one sample.

**Samples with no true labels.** Recall, nDCG and AP are undefined for them. By default
(``empty="skip"``) they are left out of every metric's mean, so all metrics average over
the same samples; ``empty="zero"`` counts them as 0 instead. When no sample is left,
the result is NaN.
"""

from __future__ import annotations

import numbers
import sys
from typing import Dict, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from ._labels import _one_batch
from ._validation import check_choice, check_float, check_k

__all__ = [
    "coverage_at_k",
    "map_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "propensity",
    "psp_at_k",
    "recall_at_k",
    "report",
]

EMPTY = ("skip", "zero")


# ---------------------------------------------------------------- inputs
def _as_indices(indices) -> np.ndarray:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(indices, torch.Tensor):
        indices = indices.detach().cpu().numpy()
    if sp.issparse(indices):
        raise TypeError("indices must be the dense top-k index matrix (n x k) from topk, "
                        "not a sparse matrix")
    a = np.asarray(indices)
    if a.ndim != 2:
        raise ValueError(f"indices must be 2-D (n_samples x k), got {a.ndim}-D with shape "
                         f"{a.shape}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"indices must hold integer label ids, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"indices has label id {int(a.max())}, above 2^63 - 1; ids must be "
                         "int64 values (-1 marks an empty slot)")
    a = a.astype(np.int64, copy=False)
    if a.size and a.min() < -1:
        raise ValueError(f"indices has a negative label id ({a.min()}); ids are >= 0 and -1 "
                         "marks an empty slot")
    if a.shape[1] > 1:
        s = np.sort(a, axis=1)
        dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
        if dup.any():
            row = int(np.nonzero(dup.any(axis=1))[0][0])
            raise ValueError(f"indices row {row} lists a label twice; each row must rank "
                             "distinct labels")
    return a


def _as_truth(true_labels, n: int, n_labels) -> sp.csr_matrix:
    """True label sets as a binary CSR with sorted, unique indices."""
    if isinstance(true_labels, (list, tuple)) and len(true_labels) == 0 and n == 0:
        return sp.csr_matrix((0, n_labels or 0), dtype=np.int8)
    batch = _one_batch(true_labels, n_labels, "true_labels")
    if batch.names is not None:
        raise TypeError("true_labels holds label names; metrics need integer label ids "
                        "(the ids that indices refer to)")
    Y = batch.to_csr()
    if Y.shape[0] != n:
        raise ValueError(f"true_labels has {Y.shape[0]} samples but indices has {n} rows; "
                         "they must describe the same samples")
    Y.sum_duplicates()
    Y.data[:] = 1
    return Y


_K_OF = "the columns of indices"  # what k is bounded by, in messages


def _hits(indices: np.ndarray, Y: sp.csr_matrix, n_true: np.ndarray) -> np.ndarray:
    """hits[r, j]: whether ``indices[r, j]`` is in row r of ``Y`` (sorted, unique indices).

    Membership is a binary search of (row, label) keys. The labels are first renumbered
    among the U distinct true labels, so a key ``row * U + label`` stays below n x nnz
    whatever the label ids (ids near 2^63 would overflow ``row * L + label``); should even
    that not fit in int64, rows are searched one by one.
    """
    n, K = indices.shape
    hits = np.zeros((n, K), dtype=bool)
    if Y.nnz == 0:
        return hits
    present = np.unique(Y.indices)
    U = len(present)
    y_ids = np.searchsorted(present, Y.indices).astype(np.int64)
    q_pos = np.minimum(np.searchsorted(present, indices), U - 1)
    known = (present[q_pos] == indices) & (indices >= 0)  # a label no sample carries: no hit
    if n * U >= 2**62:  # pragma: no cover - needs more than 2^62 / U rows
        for r in range(n):
            row = y_ids[Y.indptr[r]:Y.indptr[r + 1]]
            hits[r] = known[r] & np.isin(q_pos[r], row)
        return hits
    rows = np.repeat(np.arange(n, dtype=np.int64), n_true)
    keys = rows * U + y_ids
    q = np.arange(n, dtype=np.int64)[:, None] * U + q_pos
    pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
    return (keys[pos] == q) & known


class _Ranked:
    """Hits of a top-k matrix against true sets, shared by every metric of a report."""

    def __init__(self, indices, true_labels, n_labels=None):
        self.indices = _as_indices(indices)
        n, K = self.indices.shape
        self.Y = _as_truth(true_labels, n, n_labels)
        self.n_true = np.diff(self.Y.indptr).astype(np.int64)
        L = max(self.Y.shape[1], int(self.indices.max()) + 1 if self.indices.size else 0)
        self.L = L
        self.hits = _hits(self.indices, self.Y, self.n_true)
        self.K = K

    def mean(self, per_sample: np.ndarray, empty: str) -> float:
        if empty == "skip":
            per_sample = per_sample[self.n_true > 0]
        else:
            per_sample = np.where(self.n_true > 0, per_sample, 0.0)
        return float(per_sample.mean()) if len(per_sample) else float("nan")

    def precision(self, k: int, empty: str) -> float:
        return self.mean(self.hits[:, :k].sum(axis=1) / k, empty)

    def recall(self, k: int, empty: str) -> float:
        h = self.hits[:, :k].sum(axis=1)
        return self.mean(h / np.maximum(self.n_true, 1), empty)

    def ndcg(self, k: int, empty: str) -> float:
        disc = 1.0 / np.log2(np.arange(2, k + 2))
        dcg = self.hits[:, :k] @ disc
        ideal = np.concatenate(([0.0], np.cumsum(disc)))[np.minimum(self.n_true, k)]
        return self.mean(dcg / np.where(ideal > 0, ideal, 1.0), empty)

    def average_precision(self, k: int, empty: str) -> float:
        h = self.hits[:, :k]
        prec = np.cumsum(h, axis=1) / np.arange(1, k + 1)
        ap = (prec * h).sum(axis=1) / np.maximum(np.minimum(self.n_true, k), 1)
        return self.mean(ap, empty)

    def psp(self, k: int, inv_p: np.ndarray, normalize: bool, empty: str) -> float:
        if len(inv_p) < self.L:
            raise ValueError(f"label_counts has {len(inv_p)} entries but there are {self.L} "
                             "labels; pass one training count per label")
        idx = self.indices[:, :k]
        gain = np.where(self.hits[:, :k], inv_p[np.maximum(idx, 0)], 0.0).sum(axis=1) / k
        keep = self.n_true > 0 if empty == "skip" else np.ones(len(gain), bool)
        if not normalize:
            return self.mean(gain, empty)
        # Best achievable: each sample's k largest 1/p among its true labels.
        w = inv_p[self.Y.indices]
        rows = np.repeat(np.arange(len(self.n_true)), self.n_true)
        order = np.lexsort((-w, rows))
        rank = np.arange(len(w)) - np.repeat(self.Y.indptr[:-1], self.n_true)
        best = np.bincount(rows, weights=np.where(rank < k, w[order], 0.0),
                           minlength=len(self.n_true)) / k
        den = best[keep].sum()
        return float(gain[keep].sum() / den) if den > 0 else float("nan")

    def coverage(self, k: int) -> float:
        present = np.unique(self.Y.indices)
        if len(present) == 0:
            return float("nan")
        found = np.unique(self.indices[:, :k][self.hits[:, :k]])
        return len(found) / len(present)


# ---------------------------------------------------------------- public metrics
def propensity(label_counts, n_train: int, *, A: float = 0.55, B: float = 1.5) -> np.ndarray:
    """Label propensities ``p_l = 1 / (1 + C (N_l + B)^-A)``, ``C = (log N - 1)(B + 1)^A``.

    The model of Jain, Prabhu and Varma (KDD 2016); A = 0.55, B = 1.5 are its usual
    values (A = 0.6, B = 2.6 for Amazon, 0.5 / 0.4 for Wikipedia sets).

    Parameters
    ----------
    label_counts : array of shape (L,)
        Training samples carrying each label (``N_l`` >= 0), for example
        ``LabelEmbedding.label_counts`` or ``Cooccurrence.label_counts``.
    n_train : int
        Training samples (``N`` >= 3, so that ``log N - 1 > 0``).

    Returns
    -------
    ndarray of shape (L,), float64, in (0, 1]
    """
    c = np.asarray(label_counts)
    if c.ndim != 1 or c.dtype.kind not in "iuf":
        raise ValueError("label_counts must be a 1-D array of training counts, one per label")
    c = c.astype(np.float64)
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("label_counts must be finite and >= 0")
    n_train = check_float(n_train, "n_train", lo=3, hint=" (training samples)")
    A = check_float(A, "A", lo=0.0, lo_open=True)
    B = check_float(B, "B", lo=0.0, lo_open=True)
    C = (np.log(n_train) - 1.0) * (B + 1.0) ** A
    return 1.0 / (1.0 + C * (c + B) ** (-A))


def precision_at_k(indices, true_labels, k: int, *, n_labels: Optional[int] = None,
                   empty: str = "skip") -> float:
    """Mean over samples of (true labels among the top k) / k.

    Parameters
    ----------
    indices : array of shape (n, K), int
        Top-k label ids per sample, best first (-1 = empty slot), e.g. from ``topk``.
    true_labels : sparse matrix (n, L), 0/1 array, or list of n label-id lists
    k : int
        1 <= k <= K.
    n_labels : int, optional
        Label space of list inputs (default: largest id + 1).
    empty : {"skip", "zero"}, default "skip"
        Samples without true labels are left out of the mean, or count as 0.

    Returns
    -------
    float (NaN when no sample counts)

    Examples
    --------
    >>> from labelemb import metrics
    >>> metrics.precision_at_k([[3, 1, 0]], [[1, 2]], k=2)
    0.5
    """
    r = _Ranked(indices, true_labels, n_labels)
    return r.precision(check_k(k, r.K, _K_OF), check_choice(empty, "empty", EMPTY))


def recall_at_k(indices, true_labels, k: int, *, n_labels: Optional[int] = None,
                empty: str = "skip") -> float:
    """Mean over samples of (true labels among the top k) / (number of true labels).

    Parameters as :func:`precision_at_k`.

    Examples
    --------
    >>> from labelemb import metrics
    >>> metrics.recall_at_k([[3, 1, 0]], [[1, 2]], k=2)
    0.5
    """
    r = _Ranked(indices, true_labels, n_labels)
    return r.recall(check_k(k, r.K, _K_OF), check_choice(empty, "empty", EMPTY))


def ndcg_at_k(indices, true_labels, k: int, *, n_labels: Optional[int] = None,
              empty: str = "skip") -> float:
    """Mean over samples of the normalised discounted cumulative gain at k (binary gains).

    ``DCG = sum_j h_j / log2(j + 1)`` over ranks j = 1..k, divided by the DCG of a ranking
    with all true labels first (``min(k, |Y|)`` hits). Same as scikit-learn's
    ``ndcg_score(..., k=k)`` on scores without ties. Parameters as
    :func:`precision_at_k`.

    Examples
    --------
    >>> from labelemb import metrics
    >>> round(metrics.ndcg_at_k([[3, 1, 0]], [[1]], k=2), 4)
    0.6309
    """
    r = _Ranked(indices, true_labels, n_labels)
    return r.ndcg(check_k(k, r.K, _K_OF), check_choice(empty, "empty", EMPTY))


def map_at_k(indices, true_labels, k: int, *, n_labels: Optional[int] = None,
             empty: str = "skip") -> float:
    """Mean average precision truncated at k (the paper's MAP@100).

    Per sample ``AP@k = sum_j h_j * precision@j / min(k, |Y|)``, averaged over samples.
    With ``k`` covering the whole ranking (k = L) it equals scikit-learn's
    ``label_ranking_average_precision_score`` on scores without ties. Parameters as
    :func:`precision_at_k`.

    Examples
    --------
    >>> from labelemb import metrics
    >>> metrics.map_at_k([[3, 1, 0]], [[1, 0]], k=3)
    0.5833333333333333
    """
    r = _Ranked(indices, true_labels, n_labels)
    return r.average_precision(check_k(k, r.K, _K_OF), check_choice(empty, "empty", EMPTY))


def psp_at_k(indices, true_labels, k: int, label_counts, n_train: int, *, A: float = 0.55,
             B: float = 1.5, normalize: bool = True, n_labels: Optional[int] = None,
             empty: str = "skip") -> float:
    """Propensity-scored precision at k: hits weighted by 1 / propensity (rare labels count
    more).

    ``PSP@k = mean over samples of sum_j h_j / p_{l_j} / k`` with the propensities of
    :func:`propensity`. With ``normalize=True`` (default, as pyxclib) the sum over samples
    is divided by the same sum for the best achievable top k of each sample (its true
    labels, rarest first), giving a value in [0, 1]; ``normalize=False`` returns the raw
    mean (which can exceed 1).

    Parameters
    ----------
    indices, true_labels, k, n_labels, empty
        As :func:`precision_at_k`.
    label_counts : array of shape (L,)
        Training count of each label.
    n_train : int
        Number of training samples.
    A, B : float, default 0.55, 1.5
        Parameters of the propensity model.
    normalize : bool, default True

    Examples
    --------
    >>> from labelemb import metrics
    >>> round(metrics.psp_at_k([[0, 1]], [[0]], 1, label_counts=[100, 1], n_train=1000), 3)
    1.0
    """
    r = _Ranked(indices, true_labels, n_labels)
    inv_p = 1.0 / propensity(label_counts, n_train, A=A, B=B)
    return r.psp(check_k(k, r.K, _K_OF), inv_p, bool(normalize),
                 check_choice(empty, "empty", EMPTY))


def coverage_at_k(indices, true_labels, k: int, *, n_labels: Optional[int] = None) -> float:
    """Share of the labels that occur in ``true_labels`` which are correctly predicted in
    the top k of at least one sample (NaN when no sample has a true label).

    Examples
    --------
    >>> from labelemb import metrics
    >>> metrics.coverage_at_k([[0, 2], [1, 2]], [[0], [0, 3]], k=2)
    0.5
    """
    r = _Ranked(indices, true_labels, n_labels)
    return r.coverage(check_k(k, r.K, _K_OF))


def report(indices, true_labels, ks: Sequence[int] = (1, 3, 5), *, label_counts=None,
           n_train: Optional[int] = None, A: float = 0.55, B: float = 1.5,
           normalize: bool = True, n_labels: Optional[int] = None,
           empty: str = "skip") -> Dict[str, float]:
    """All the metrics at each k in ``ks``, as one dict.

    Keys are ``"precision@k"``, ``"recall@k"``, ``"ndcg@k"``, ``"map@k"``,
    ``"coverage@k"``, and ``"psp@k"`` when ``label_counts`` and ``n_train`` are given,
    plus ``"n_samples"`` (the samples averaged over). Hits are computed once.

    Examples
    --------
    >>> from labelemb import metrics
    >>> metrics.report([[3, 1, 0]], [[1, 2]], ks=[1, 3])["precision@3"]
    0.3333333333333333
    """
    r = _Ranked(indices, true_labels, n_labels)
    empty = check_choice(empty, "empty", EMPTY)
    if isinstance(ks, numbers.Integral):
        ks = [ks]
    ks = [check_k(k, r.K, _K_OF) for k in ks]
    inv_p = None
    if (label_counts is None) != (n_train is None):
        raise ValueError("pass both label_counts and n_train for psp@k, or neither")
    if label_counts is not None:
        inv_p = 1.0 / propensity(label_counts, n_train, A=A, B=B)
    out: Dict[str, float] = {}
    for k in ks:
        out[f"precision@{k}"] = r.precision(k, empty)
        out[f"recall@{k}"] = r.recall(k, empty)
        out[f"ndcg@{k}"] = r.ndcg(k, empty)
        out[f"map@{k}"] = r.average_precision(k, empty)
        if inv_p is not None:
            out[f"psp@{k}"] = r.psp(k, inv_p, bool(normalize), empty)
        out[f"coverage@{k}"] = r.coverage(k)
    out["n_samples"] = int((r.n_true > 0).sum()) if empty == "skip" else len(r.n_true)
    return out
