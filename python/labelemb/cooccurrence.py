"""Step 1 of the method: count labels and label pairs."""

from __future__ import annotations

import numbers
import os
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp

from . import _core
from ._labels import iter_batches


class Cooccurrence:
    """Label co-occurrence counts over a set of samples.

    Attributes
    ----------
    n_samples : int
        Number of samples counted.
    label_counts : ndarray of int64, shape (L,)
        ``c_i``, the number of samples carrying label ``i``.
    pairs : scipy.sparse.csr_matrix of int64, shape (L, L)
        ``C_ij`` for ``i < j`` only (the strict upper triangle, sorted columns). The full
        symmetric matrix with ``c_i`` on the diagonal, equal to ``Y.T @ Y`` for a binary
        ``Y``, is :meth:`full`.
    label_names : list of str or None
        The label of each column when the input gave names (sorted vocabulary).

    Two results over the same label space add with ``+`` (shards or chunks counted
    separately). Pickling stores only the arrays.
    """

    def __init__(self, n_samples: int, label_counts: np.ndarray, pairs: sp.csr_matrix,
                 label_names: Optional[Sequence[str]] = None):
        self.n_samples = int(n_samples)
        self.label_counts = np.asarray(label_counts, dtype=np.int64)
        self.pairs = pairs
        self.label_names = None if label_names is None else list(label_names)
        L = len(self.label_counts)
        if pairs.shape != (L, L):
            raise ValueError(f"pairs has shape {pairs.shape}, expected ({L}, {L})")
        if self.label_names is not None and len(self.label_names) != L:
            raise ValueError(f"label_names has {len(self.label_names)} names for {L} labels")

    @property
    def n_labels(self) -> int:
        return len(self.label_counts)

    @property
    def n_pairs(self) -> int:
        """Number of distinct label pairs (i < j) seen together at least once."""
        return int(self.pairs.nnz)

    def full(self) -> sp.csr_matrix:
        """The symmetric L x L count matrix (int64), diagonal = ``label_counts``."""
        upper = self.pairs
        diag = sp.diags(self.label_counts, format="csr", dtype=np.int64)
        full = (upper + upper.T.tocsr() + diag).tocsr()
        full.sort_indices()
        return full

    def __add__(self, other: Cooccurrence) -> Cooccurrence:
        if not isinstance(other, Cooccurrence):
            return NotImplemented
        if self.n_labels != other.n_labels:
            raise ValueError(
                f"cannot add co-occurrence counts over {self.n_labels} and {other.n_labels} "
                "labels; count all shards with the same n_labels"
            )
        if self.label_names != other.label_names:
            raise ValueError(
                "cannot add co-occurrence counts with different label_names; count all shards "
                "over one vocabulary"
            )
        pairs = (self.pairs + other.pairs).tocsr()
        pairs.sort_indices()
        return Cooccurrence(self.n_samples + other.n_samples,
                            self.label_counts + other.label_counts, pairs, self.label_names)

    def _resized(self, n_labels: int) -> Cooccurrence:
        """The same counts in a larger label space (new labels have no occurrences)."""
        if n_labels == self.n_labels:
            return self
        p = self.pairs
        indptr = np.concatenate([p.indptr, np.full(n_labels - self.n_labels, p.indptr[-1])])
        pairs = sp.csr_matrix((p.data, p.indices, indptr), shape=(n_labels, n_labels))
        counts = np.zeros(n_labels, dtype=np.int64)
        counts[: self.n_labels] = self.label_counts
        return Cooccurrence(self.n_samples, counts, pairs)

    def _permuted(self, new_id: np.ndarray, label_names) -> Cooccurrence:
        """Relabel: old label i becomes ``new_id[i]``."""
        L = self.n_labels
        coo = self.pairs.tocoo()
        r, c = new_id[coo.row], new_id[coo.col]
        lo, hi = np.minimum(r, c), np.maximum(r, c)
        pairs = sp.csr_matrix((coo.data, (lo, hi)), shape=(L, L))
        pairs.sort_indices()
        counts = np.empty(L, dtype=np.int64)
        counts[new_id] = self.label_counts
        return Cooccurrence(self.n_samples, counts, pairs, label_names)

    def __getstate__(self):
        p = self.pairs
        return {"n_samples": self.n_samples, "label_counts": self.label_counts,
                "indptr": p.indptr, "indices": p.indices, "data": p.data,
                "label_names": self.label_names}

    def __setstate__(self, s):
        L = len(s["label_counts"])
        pairs = sp.csr_matrix((s["data"], s["indices"], s["indptr"]), shape=(L, L))
        self.__init__(s["n_samples"], s["label_counts"], pairs, s["label_names"])

    def __eq__(self, other) -> bool:
        if not isinstance(other, Cooccurrence):
            return NotImplemented
        return (self.n_samples == other.n_samples and self.label_names == other.label_names
                and np.array_equal(self.label_counts, other.label_counts)
                and self.pairs.shape == other.pairs.shape
                and (self.pairs != other.pairs).nnz == 0)

    __hash__ = None  # mutable container of arrays

    def __repr__(self) -> str:
        return (f"Cooccurrence(n_samples={self.n_samples}, n_labels={self.n_labels}, "
                f"n_pairs={self.n_pairs})")


def combine(a: Cooccurrence, b: Cooccurrence) -> Cooccurrence:
    """Sum two partial counts whose label spaces may differ in size (ids: the smaller is
    padded) or in vocabulary (names: both are mapped onto the sorted union)."""
    if (a.label_names is None) != (b.label_names is None):
        raise ValueError("cannot combine counts over label names with counts over label ids")
    if a.label_names is None:
        L = max(a.n_labels, b.n_labels)
        return a._resized(L) + b._resized(L)
    if a.label_names == b.label_names:
        return a + b
    names = sorted(set(a.label_names) | set(b.label_names))
    pos = {x: i for i, x in enumerate(names)}
    out = []
    for part in (a, b):
        new_id = np.fromiter((pos[x] for x in part.label_names), dtype=np.int64,
                             count=part.n_labels)
        grown = part._resized(len(names))
        new_id = np.concatenate([new_id, np.setdiff1d(np.arange(len(names)), new_id)])
        out.append(grown._permuted(new_id, names))
    return out[0] + out[1]


def _check_threads(num_threads) -> int:
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(f"num_threads must be an int (0 = all cores), got {num_threads!r}")
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0 (0 = all cores), got {num_threads}")
    return int(num_threads)


def _count_batch(batch, num_threads: int) -> Cooccurrence:
    counts, indptr, indices, data = _core.cooccurrence(
        batch.indptr, batch.indices, batch.n_labels, num_threads)
    L = batch.n_labels
    pairs = sp.csr_matrix((data, indices, indptr), shape=(L, L))
    pairs.has_sorted_indices = True
    names = None if batch.names is None else batch.names.tolist()
    return Cooccurrence(batch.n_samples, counts, pairs, names)


class MemoryBudgetError(MemoryError, ValueError):
    """Counting would need more memory than ``max_memory`` allows."""


def available_memory() -> int:
    """Bytes of memory available to new allocations (Linux MemAvailable, else total)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 34


def estimate_memory(batch, n_pairs_so_far: int = 0) -> int:
    """Upper bound (bytes) of what counting ``batch`` needs, from its per-sample label counts.

    Distinct pairs are at most ``min(sum_s k_s (k_s - 1) / 2, L (L - 1) / 2)``; each costs an
    index and an int64 count, and summing into earlier chunks holds both sums at once.
    """
    k = np.diff(batch.indptr).astype(np.float64)
    L = float(batch.n_labels)
    pairs = min(float(np.sum(k * (k - 1) / 2)), L * (L - 1) / 2)
    itemsize = batch.indices.itemsize + 8
    index = len(batch.indices) * 4 + (L + 1) * 8 + 16 * L * max(1, os.cpu_count() or 1)
    merged = 2 * n_pairs_so_far * itemsize if n_pairs_so_far else 0
    return int(pairs * itemsize + index + merged)


def cooccurrence(labels, *, n_labels: Optional[int] = None, num_threads: int = 0,
                 max_memory: Optional[int] = None) -> Cooccurrence:
    """Count labels and label pairs.

    Parameters
    ----------
    labels : sparse matrix, 2-D array, list of label sets, or iterator of chunks
        Samples x labels. A scipy sparse matrix or array in any format (any stored
        non-zero means present), a dense 0/1 array, a list of label sets (each a list
        of integer ids, or of label names, in which case a sorted vocabulary is built
        and kept as ``label_names``), or an iterator/generator yielding such chunks,
        counted one at a time (memory does not grow with the number of samples). A
        label repeated within one sample counts once.
    n_labels : int, optional
        Size of the label space, when larger than the largest id + 1 (ids input) or to
        pad matrix chunks. Must not be smaller.
    num_threads : int, default 0
        Threads for the kernel; 0 uses all cores.
    max_memory : int, optional
        Bytes the counts may take. Before each chunk is counted, an upper bound of its
        needs (from the number of labels per sample and L) is checked against it, so an
        input too big for the machine fails with :class:`MemoryBudgetError` instead of
        an out-of-memory kill. Default: 80% of the memory available at call time.

    Returns
    -------
    Cooccurrence

    Examples
    --------
    >>> import labelemb
    >>> c = labelemb.cooccurrence([["sky", "beach"], ["sky", "sea", "beach"], ["crane"]])
    >>> c.label_names, c.label_counts.tolist()
    (['beach', 'crane', 'sea', 'sky'], [2, 1, 1, 2])
    >>> int(c.full()[0, 3])  # beach and sky together
    2
    """
    num_threads = _check_threads(num_threads)
    if isinstance(labels, Cooccurrence):
        return labels
    if max_memory is not None and (isinstance(max_memory, bool) or not
                                   isinstance(max_memory, numbers.Real) or max_memory <= 0):
        raise ValueError(f"max_memory must be a positive number of bytes, got {max_memory!r}")
    budget = int(max_memory) if max_memory is not None else int(0.8 * available_memory())
    total: Optional[Cooccurrence] = None
    vocab = None
    for batch, batch_vocab in iter_batches(labels, n_labels):
        vocab = batch_vocab
        need = estimate_memory(batch, 0 if total is None else total.n_pairs)
        if need > budget:
            raise MemoryBudgetError(
                f"counting these labels may need up to {need / 2**30:.2f} GiB, over max_memory="
                f"{budget / 2**30:.2f} GiB. Stream the input in smaller chunks (an iterator, or "
                "labelemb.read_labels(..., chunk_size=...)), cap the label space (keep the most "
                "frequent labels), raise max_memory, or count on a cluster with "
                "labelemb.dask.cooccurrence. (min_count in pmi_matrix/fit_embeddings then prunes "
                "rare pairs.)")
        part = _count_batch(batch, num_threads)
        if total is None:
            total = part
            continue
        L = max(total.n_labels, part.n_labels)
        total = total._resized(L) + part._resized(L)
    assert total is not None
    if vocab is not None:  # streamed names: ids are in first-seen order; sort the vocabulary
        names = np.array(list(vocab.keys()))
        order = np.argsort(names, kind="stable")
        new_id = np.empty(len(order), dtype=np.int64)
        new_id[order] = np.arange(len(order))
        total = total._permuted(new_id, names[order].tolist())
    return total
