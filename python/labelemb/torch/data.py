"""Label sets as torch tensors, and batches built from them without per-sample Python.

Label sets travel as :class:`SparseLabels`, a CSR matrix over two int64 tensors
(``indptr``, ``indices``) that lives on any device. A batch of rows is gathered with a
handful of vectorised index operations (no Python loop over samples), so the same code
builds batches on the CPU and on a GPU. Targets are built from a batch on the fly:

* embedding targets (step 4): ``normalize(sum of E[ids])`` per row, by ``embedding_bag``;
* binary targets for the sigmoid baseline: never materialised at all by the loss
  (``softplus(z).sum() - z[rows, ids].sum()``), or per batch by :meth:`SparseLabels.multi_hot`.

Nothing of size n x d or n x L is allocated for the whole data set.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .._labels import _is_name, _one_batch

__all__ = ["EmbeddingTargets", "LabelCollate", "SparseLabels", "as_label_csr",
           "collate_label_sets"]


@dataclass
class SparseLabels:
    """Label sets of ``n`` samples as CSR tensors over ``n_labels`` labels.

    Attributes
    ----------
    indptr : Tensor of int64, shape (n + 1,)
    indices : Tensor of int64, shape (nnz,)
        Label ids of row ``i`` are ``indices[indptr[i]:indptr[i + 1]]``.
    n_labels : int
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    n_labels: int

    @classmethod
    def from_scipy(cls, csr: sp.spmatrix, device=None) -> SparseLabels:
        """From a scipy sparse matrix (ids not range-checked: see :func:`as_label_csr`).
        Explicit zeros are dropped and duplicates merged; the arrays are copied once."""
        csr = sp.csr_matrix(csr)
        if not csr.has_canonical_format or (csr.data == 0).any():
            csr = csr.copy()
            csr.sum_duplicates()
            csr.eliminate_zeros()
        return cls(torch.as_tensor(np.asarray(csr.indptr, dtype=np.int64), device=device),
                   torch.as_tensor(np.asarray(csr.indices, dtype=np.int64), device=device),
                   int(csr.shape[1]))

    def __len__(self) -> int:
        return self.indptr.numel() - 1

    @property
    def device(self) -> torch.device:
        return self.indptr.device

    @property
    def lengths(self) -> torch.Tensor:
        """Number of labels of each row (int64, shape (n,))."""
        return self.indptr[1:] - self.indptr[:-1]

    def to(self, device, non_blocking: bool = False) -> SparseLabels:
        return SparseLabels(self.indptr.to(device, non_blocking=non_blocking),
                            self.indices.to(device, non_blocking=non_blocking), self.n_labels)

    def rows(self, idx: torch.Tensor) -> SparseLabels:
        """The rows ``idx`` (an int64 tensor on this device), in that order.

        Vectorised gather: O(len(idx) + their labels), one ``repeat_interleave``.
        """
        starts = self.indptr[idx]
        lens = self.indptr[idx + 1] - starts
        indptr = torch.zeros(len(idx) + 1, dtype=torch.int64, device=self.device)
        torch.cumsum(lens, 0, out=indptr[1:])
        total = int(indptr[-1])
        shift = torch.repeat_interleave(starts - indptr[:-1], lens, output_size=total)
        pos = torch.arange(total, device=self.device) + shift
        return SparseLabels(indptr, self.indices[pos], self.n_labels)

    def slice(self, start: int, stop: int) -> SparseLabels:
        """Rows ``start:stop`` (a view of the indices; no gather)."""
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        return SparseLabels(self.indptr[start:stop + 1] - a, self.indices[a:b], self.n_labels)

    def row_ids(self) -> torch.Tensor:
        """The row of every stored label (int64, shape (nnz,))."""
        n = len(self)
        return torch.repeat_interleave(torch.arange(n, device=self.device), self.lengths,
                                       output_size=self.indices.numel())

    def multi_hot(self, dtype=torch.float32) -> torch.Tensor:
        """The dense ``n x n_labels`` 0/1 matrix of these rows (use on batches only)."""
        out = torch.zeros((len(self), self.n_labels), dtype=dtype, device=self.device)
        out[self.row_ids(), self.indices] = 1
        return out

    def to_scipy(self) -> sp.csr_matrix:
        ind = self.indices.cpu().numpy()
        return sp.csr_matrix((np.ones(len(ind), np.float32), ind, self.indptr.cpu().numpy()),
                             shape=(len(self), self.n_labels))


# ---------------------------------------------------------------- validation
def _vocabulary(label_names) -> Optional[dict]:
    if label_names is None:
        return None
    return {str(name): i for i, name in enumerate(label_names)}


def as_label_csr(labels, name: str, *, n_labels: Optional[int] = None, label_names=None,
                 n_samples: Optional[int] = None, build_vocabulary: bool = True):
    """Validate label sets against a label space; return ``(csr, label_names)``.

    Parameters
    ----------
    labels : scipy sparse (n, L), 0/1 array, list of label-id lists, or list of
        label-name lists
    name : str
        The argument's name, for error messages.
    n_labels : int, optional
        Size of the label space (the embedding's or the model's). Ids must lie in
        ``[0, n_labels)``; a matrix must have exactly ``n_labels`` columns.
    label_names : sequence of str, optional
        The vocabulary. Label-name lists are mapped through it; a name not in it is an
        error. Without it, names build a sorted vocabulary (returned).
    n_samples : int, optional
        Required number of rows (the number of inputs).
    build_vocabulary : bool, default True
        Whether label names may build a vocabulary when ``label_names`` is None (False:
        an error, for data that must use a model's existing vocabulary).

    Returns
    -------
    csr : scipy.sparse.csr_matrix, float32 ones, sorted duplicate-free indices
    label_names : list of str or None
    """
    if isinstance(labels, SparseLabels):
        labels = labels.to_scipy()
    try:
        batch = _one_batch(labels, None, name)
    except TypeError as e:
        raise TypeError(f"{e} (labels of {name})") from None
    if batch.names is not None:
        uniq = batch.names
        if label_names is None:
            if not build_vocabulary:
                raise ValueError(f"{name} holds label names but the model has no vocabulary "
                                 "to map them through; pass the embedding (or integer ids)")
            if n_labels is not None and len(uniq) > n_labels:
                raise ValueError(f"{name} uses {len(uniq)} distinct label names but the model "
                                 f"has {n_labels} labels")
            ids = np.arange(len(uniq))
            label_names = [str(u) for u in uniq]
        else:
            vocab = _vocabulary(label_names)
            ids = np.array([vocab.get(str(u), -1) for u in uniq], dtype=np.int64)
            if (ids < 0).any():
                unknown = [str(u) for u in uniq[ids < 0][:5]]
                raise ValueError(
                    f"{name} uses {int((ids < 0).sum())} label name(s) not in the vocabulary "
                    f"(the embedding's or the training labels' label_names), e.g. {unknown}; "
                    "map the labels to the same vocabulary the embedding was fitted on")
        L = len(label_names) if n_labels is None else max(n_labels, len(label_names))
        cols = ids[batch.indices]
        csr = sp.csr_matrix((np.ones(len(cols), np.float32), cols, batch.indptr),
                            shape=(batch.n_samples, L))
    else:
        if sp.issparse(labels) or (isinstance(labels, np.ndarray) and labels.ndim == 2
                                   and labels.dtype != object):
            if n_labels is not None and batch.n_labels != n_labels:
                raise ValueError(
                    f"{name} has {batch.n_labels} label columns but the model's label space "
                    f"has {n_labels} labels; the columns must be the embedding's (or the "
                    "model's) labels, in the same order")
        elif n_labels is not None and batch.n_labels > n_labels:
            bad = int(np.asarray(batch.indices).max())
            raise ValueError(
                f"{name} has label id {bad}, out of range for a label space of {n_labels} "
                f"labels (ids must lie in [0, {n_labels})); use the ids the embedding (or the "
                "model) was built with")
        L = int(n_labels) if n_labels is not None else batch.n_labels
        csr = sp.csr_matrix((np.ones(len(batch.indices), np.float32), batch.indices,
                             batch.indptr), shape=(batch.n_samples, L))
    csr.sum_duplicates()
    csr.data[:] = 1
    if n_samples is not None and csr.shape[0] != n_samples:
        raise ValueError(f"{name} has {csr.shape[0]} label sets for {n_samples} inputs; pass "
                         "one label set per input")
    return csr, label_names


# ---------------------------------------------------------------- targets
def _vectors_of(embedding) -> np.ndarray:
    v = getattr(embedding, "vectors", embedding)
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    v = np.asarray(v)
    if v.ndim != 2 or v.dtype.kind != "f":
        raise TypeError("embedding must be a LabelEmbedding (or an (L, d) float array of label "
                        f"vectors), got {type(embedding).__name__}")
    if not np.isfinite(v).all():
        raise ValueError("embedding vectors contain NaN or Inf")
    return np.ascontiguousarray(v, dtype=np.float32)


class EmbeddingTargets:
    """Step 4 on the fly: label sets to unit target vectors, ``normalize(sum E[ids])``.

    Parameters
    ----------
    embedding : LabelEmbedding or array (L, d)
        The label vectors ``E`` (unit rows).
    device : torch device, optional
        Where the vectors (and so the targets) live; :meth:`to` moves them.

    Calling it on a batch of label sets (a :class:`SparseLabels`, a CSR matrix or a list
    of label-id lists) returns a float32 tensor (batch, d) on the vectors' device, equal
    to ``LabelEmbedding.encode`` of the same sets; an empty set gives a zero row. Cost
    O(nnz · d) per batch by ``embedding_bag``; no n x d matrix is built for the data set.

    Examples
    --------
    >>> import numpy as np
    >>> from labelemb.torch import EmbeddingTargets
    >>> t = EmbeddingTargets(np.eye(3, dtype=np.float32))
    >>> t([[0, 1], []]).tolist()
    [[0.7071067690849304, 0.7071067690849304, 0.0], [0.0, 0.0, 0.0]]
    """

    def __init__(self, embedding, device=None):
        self.vectors = torch.as_tensor(_vectors_of(embedding), device=device)
        self.label_names = getattr(embedding, "label_names", None)

    @property
    def n_labels(self) -> int:
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def device(self) -> torch.device:
        return self.vectors.device

    def to(self, device) -> EmbeddingTargets:
        self.vectors = self.vectors.to(device)
        return self

    def __call__(self, labels) -> torch.Tensor:
        if not isinstance(labels, SparseLabels):
            csr, _ = as_label_csr(labels, "labels", n_labels=self.n_labels,
                                  label_names=self.label_names)
            labels = SparseLabels.from_scipy(csr)
        elif labels.n_labels != self.n_labels:
            raise ValueError(f"labels have {labels.n_labels} labels but the embedding has "
                             f"{self.n_labels}")
        labels = labels.to(self.device)
        s = F.embedding_bag(labels.indices, self.vectors, labels.indptr[:-1], mode="sum")
        return F.normalize(s, dim=1, eps=1e-30)


# ---------------------------------------------------------------- Dataset collate
class LabelCollate:
    """``collate_fn`` for a ``Dataset`` yielding ``(input, label_set)`` pairs.

    Inputs are stacked with torch's default collate; label sets (lists or arrays of ids,
    or of names when ``label_names`` is given) become one :class:`SparseLabels`, checked
    against ``n_labels``.

    Parameters
    ----------
    n_labels : int, optional
        Label space size; ids outside ``[0, n_labels)`` raise ValueError.
    label_names : sequence of str, optional
        Vocabulary for label-name sets.
    """

    def __init__(self, n_labels: Optional[int] = None, label_names: Optional[Sequence] = None):
        self.n_labels = n_labels
        self.label_names = label_names
        self._vocab = _vocabulary(label_names)

    def __call__(self, batch):
        from torch.utils.data import default_collate

        inputs = default_collate([b[0] for b in batch])
        sets = [b[1] for b in batch]
        lens = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
        indptr = np.zeros(len(sets) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        flat = [x for s in sets for x in (s.tolist() if hasattr(s, "tolist") else s)]
        if flat and _is_name(flat[0]):
            if self._vocab is None:
                raise ValueError("the Dataset yields label names; pass the vocabulary "
                                 "(LabelCollate(label_names=...), or an embedding to fit)")
            ids = np.array([self._vocab.get(str(x), -1) for x in flat], dtype=np.int64)
            if (ids < 0).any():
                bad = [flat[i] for i in np.nonzero(ids < 0)[0][:5]]
                raise ValueError(f"the Dataset yields label names not in the vocabulary, "
                                 f"e.g. {bad}")
        else:
            if any(not isinstance(x, (numbers.Integral, np.integer)) or isinstance(x, bool)
                   for x in flat):
                raise TypeError("the Dataset's label sets must hold integer label ids (or "
                                "names with a vocabulary)")
            ids = np.asarray(flat, dtype=np.int64)
        L = self.n_labels if self.n_labels is not None else (int(ids.max()) + 1 if len(ids)
                                                              else 0)
        if len(ids) and (ids.min() < 0 or ids.max() >= L):
            bad = int(ids.min() if ids.min() < 0 else ids.max())
            raise ValueError(f"the Dataset yields label id {bad}, "
                             f"out of range for {L} labels (ids must lie in [0, {L}))")
        csr = sp.csr_matrix((np.ones(len(ids), np.float32), ids, indptr), shape=(len(sets), L))
        csr.sum_duplicates()
        return inputs, SparseLabels.from_scipy(csr)


collate_label_sets = LabelCollate()
"""The default :class:`LabelCollate` (integer label ids, label space from the batch)."""
