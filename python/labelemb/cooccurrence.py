"""Step 1 of the method: count labels and label pairs."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp

from . import _core
from ._labels import iter_batches
from ._validation import check_float, check_int, check_threads


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
        self.label_names = None if label_names is None else list(label_names)
        L = len(self.label_counts)
        if not sp.issparse(pairs):
            raise TypeError(f"pairs must be a scipy sparse matrix, got {type(pairs).__name__}")
        if pairs.shape != (L, L):
            raise ValueError(f"pairs has shape {pairs.shape}, expected ({L}, {L})")
        self.pairs = _canonical_upper(pairs)
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
        # Most pair counts are small: ship them in the narrowest unsigned type that holds
        # the largest (Dask moves these between processes).
        p = self.pairs
        top = int(p.data.max()) if p.nnz else 0
        narrow = np.min_scalar_type(max(top, 0))
        data = p.data.astype(narrow) if p.nnz and p.data.min() >= 0 else p.data
        return {"n_samples": self.n_samples, "label_counts": self.label_counts,
                "indptr": p.indptr, "indices": p.indices, "data": data,
                "label_names": self.label_names}

    def __setstate__(self, s):
        L = len(s["label_counts"])
        data = np.asarray(s["data"]).astype(np.int64)
        pairs = sp.csr_matrix((data, s["indices"], s["indptr"]), shape=(L, L))
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


def _canonical_upper(pairs) -> sp.csr_matrix:
    """``pairs`` as CSR with sorted, unique columns (repeated entries summed, as scipy
    does) holding the strict upper triangle only; entries on or below the diagonal are
    refused (the PMI kernel reads each pair once, from its upper entry)."""
    pairs = sp.csr_matrix(pairs)
    if pairs.dtype.kind not in "iu":
        if pairs.dtype.kind != "f" or not np.all(np.mod(pairs.data, 1) == 0):
            raise TypeError(f"pairs must hold integer counts, got dtype {pairs.dtype}")
        pairs = pairs.astype(np.int64)
    if not pairs.has_canonical_format:
        pairs = pairs.copy()
        pairs.sum_duplicates()
    starts = pairs.indptr[:-1]
    rows = np.flatnonzero(np.diff(pairs.indptr))
    if len(rows) and np.any(pairs.indices[starts[rows]] <= rows):
        raise ValueError("pairs must hold the strict upper triangle (C_ij for i < j only); "
                         "pass scipy.sparse.triu(C, k=1) of a full count matrix")
    return pairs


def sum_counts(parts: Sequence[Cooccurrence], num_threads: int = 0) -> Cooccurrence:
    """Sum counts over one label space in a single parallel pass (not k - 1 additions)."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    for p in parts[1:]:
        if p.n_labels != first.n_labels or p.label_names != first.label_names:
            raise ValueError("cannot sum counts over different label spaces; count all shards "
                             "with the same n_labels / vocabulary, or use combine()")
    L = first.n_labels
    wide = any(p.pairs.indices.dtype == np.int64 for p in parts) and L > np.iinfo(np.int32).max
    itype = np.int64 if wide else np.int32
    indptr, indices, data = _core.sum_counts(
        [np.ascontiguousarray(p.pairs.indptr, dtype=np.int64) for p in parts],
        [np.ascontiguousarray(p.pairs.indices, dtype=itype) for p in parts],
        [np.ascontiguousarray(p.pairs.data, dtype=np.int64) for p in parts], L, num_threads)
    pairs = sp.csr_matrix((data, indices, indptr), shape=(L, L))
    pairs.has_sorted_indices = True
    counts = np.sum([p.label_counts for p in parts], axis=0, dtype=np.int64)
    return Cooccurrence(sum(p.n_samples for p in parts), counts, pairs, first.label_names)


def combine(*parts: Cooccurrence, num_threads: int = 0) -> Cooccurrence:
    """Sum partial counts whose label spaces may differ in size (ids: the smaller ones are
    padded) or in vocabulary (names: all are mapped onto the sorted union)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ValueError("no counts to combine")
    named = {p.label_names is None for p in parts}
    if len(named) > 1:
        raise ValueError("cannot combine counts over label names with counts over label ids")
    if parts[0].label_names is None:
        L = max(p.n_labels for p in parts)
        return sum_counts([p._resized(L) for p in parts], num_threads)
    names = sorted(set().union(*(p.label_names for p in parts)))
    pos = {x: i for i, x in enumerate(names)}
    aligned = []
    for part in parts:
        if part.label_names == names:
            aligned.append(part)
            continue
        new_id = np.fromiter((pos[x] for x in part.label_names), dtype=np.int64,
                             count=part.n_labels)
        new_id = np.concatenate([new_id, np.setdiff1d(np.arange(len(names)), new_id)])
        aligned.append(part._resized(len(names))._permuted(new_id, names))
    return sum_counts(aligned, num_threads)


# Streamed chunks are buffered up to this many label entries (about 128 MB of int32 ids)
# and counted in one call: one count of a big batch is much cheaper than summing the
# counts of many small ones.
_BUFFER_ENTRIES = 1 << 25


def _concat(batches):
    if len(batches) == 1:
        return batches[0]
    from ._labels import LabelBatch, _index_dtype

    L = max(b.n_labels for b in batches)
    offsets = np.cumsum([0] + [len(b.indices) for b in batches[:-1]])
    indptr = np.concatenate([batches[0].indptr[:1]] +
                            [b.indptr[1:] + o for b, o in zip(batches, offsets)])
    indices = np.concatenate([b.indices for b in batches]).astype(_index_dtype(L), copy=False)
    return LabelBatch(indptr.astype(np.int64), indices, L)


def _count_batch(batch, num_threads: int) -> Cooccurrence:
    counts, indptr, indices, data = _core.cooccurrence(
        batch.indptr, batch.indices, batch.n_labels, num_threads)
    L = batch.n_labels
    pairs = sp.csr_matrix((data, indices, indptr), shape=(L, L))
    pairs.has_sorted_indices = True
    names = None if batch.names is None else batch.names.tolist()
    return Cooccurrence(batch.n_samples, counts, pairs, names)


def _with_n_labels(counts: Cooccurrence, n_labels, budget: int) -> Cooccurrence:
    """Counts already made, padded to ``n_labels`` labels (ids only), within the budget."""
    if n_labels is None:
        return counts
    n_labels = check_int(n_labels, "n_labels", lo=counts.n_labels,
                         hint=" (at least the labels of the counts)")
    if n_labels == counts.n_labels:
        return counts
    if counts.label_names is not None:
        raise ValueError("n_labels applies to label ids only; these counts have label names")
    check_memory(32.0 * n_labels, budget, f"n_labels={n_labels}",
                 "Pass the size of the real label space.")
    return counts._resized(n_labels)


class MemoryBudgetError(MemoryError, ValueError):
    """Counting would need more memory than ``max_memory`` allows."""


def available_memory() -> int:
    """Bytes of memory available to new allocations: Linux MemAvailable (else the total),
    and no more than the address space left under ``ulimit -v`` (RLIMIT_AS)."""
    free = _free_memory()
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            free = min(free, max(soft - used, 0))
    except (ImportError, OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    return free


def memory_budget(max_memory=None) -> int:
    """``max_memory`` checked (bytes, > 0), or 80% of :func:`available_memory`."""
    if max_memory is None:
        return int(0.8 * available_memory())
    bytes_ = check_float(max_memory, "max_memory", lo=0.0, lo_open=True, finite=False,
                         hint=" (bytes)")
    return 2**62 if bytes_ == float("inf") else int(bytes_)


def check_memory(need: float, budget: int, what: str, advice: str) -> None:
    """Raise :class:`MemoryBudgetError` when ``need`` bytes exceed ``budget``."""
    if need > budget:
        raise MemoryBudgetError(
            f"{what} may need up to {need / 2**30:.2f} GiB, over the memory budget of "
            f"{budget / 2**30:.2f} GiB. {advice}")


def _free_memory() -> int:
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


def estimate_memory(batch, n_pairs_so_far: int = 0, num_threads: int = 0) -> int:
    """Upper bound (bytes) of what counting ``batch`` needs, from its per-sample label counts.

    Distinct pairs are at most ``min(sum_s k_s (k_s - 1) / 2, L (L - 1) / 2)``; each costs an
    index and an int64 count, and summing into earlier chunks holds both sums at once. Each
    thread (``num_threads``, 0 = all cores) holds two counters of L entries, and the label
    index four arrays of L + 1.
    """
    k = np.diff(batch.indptr).astype(np.float64)
    L = float(batch.n_labels)
    pairs = min(float(np.sum(k * (k - 1) / 2)), L * (L - 1) / 2)
    itemsize = batch.indices.itemsize + 8
    threads = num_threads or max(1, os.cpu_count() or 1)
    index = len(batch.indices) * 4 + (L + 1) * 32 + 16 * L * threads
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
        pad matrix chunks (or counts already made). Must not be smaller.
    num_threads : int, default 0
        Threads for the kernel; 0 uses all cores.
    max_memory : int, optional
        Bytes the counts may take. Before each chunk is counted, an upper bound of its
        needs (from the number of labels per sample and L) is checked against it, so an
        input too big for the machine fails with :class:`MemoryBudgetError` instead of
        an out-of-memory kill. Streamed chunks are buffered and counted together up to
        1/16 of it (at most 128 MB). Default: 80% of the memory available at call time.

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
    num_threads = check_threads(num_threads)
    budget = memory_budget(max_memory)
    if isinstance(labels, Cooccurrence):
        return _with_n_labels(labels, n_labels, budget)
    buffer_entries = min(_BUFFER_ENTRIES, budget // 64)  # 1/16 of the budget, in int32 ids
    total: Optional[Cooccurrence] = None
    vocab = None
    pending: list = []  # small chunks are concatenated and counted together

    def flush(total):
        if not pending:
            return total
        batch = _concat(pending)
        pending.clear()
        need = estimate_memory(batch, 0 if total is None else total.n_pairs, num_threads)
        if need > budget:
            raise MemoryBudgetError(
                f"counting these labels may need up to {need / 2**30:.2f} GiB, over max_memory="
                f"{budget / 2**30:.2f} GiB. Stream the input in smaller chunks (an iterator, or "
                "labelemb.read_labels(..., chunk_size=...)), cap the label space (keep the most "
                "frequent labels), raise max_memory, or count on a cluster with "
                "labelemb.dask.cooccurrence. (min_count in pmi_matrix/fit_embeddings then prunes "
                "rare pairs.)")
        part = _count_batch(batch, num_threads)
        return part if total is None else combine(total, part, num_threads=num_threads)

    for batch, batch_vocab in iter_batches(labels, n_labels):
        vocab = batch_vocab
        pending.append(batch)
        if sum(len(b.indices) for b in pending) >= buffer_entries:
            total = flush(total)
    total = flush(total)
    assert total is not None
    if vocab is not None:  # streamed names: ids are in first-seen order; sort the vocabulary
        names = np.array(list(vocab.keys()))
        order = np.argsort(names, kind="stable")
        new_id = np.empty(len(order), dtype=np.int64)
        new_id[order] = np.arange(len(order))
        total = total._permuted(new_id, names[order].tolist())
    return total
