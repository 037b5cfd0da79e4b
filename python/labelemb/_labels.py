"""Turning the label inputs users have into CSR batches the kernels take.

Accepted forms (samples x labels):

* a scipy sparse matrix or array, any format (any stored non-zero means present);
* a 2-D numpy array used as a dense indicator matrix;
* a sequence of label sets, each a sequence of integer ids or of label names (strings);
* a pandas Series of label sets, or a DataFrame (one column of label sets, or 0/1
  indicator columns); pandas itself is never imported here;
* an iterator or generator of any of the above (chunks, streamed one at a time).

Everything is validated here, before any kernel runs, and errors name the argument.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp

from ._validation import check_int

_INT32_MAX = np.iinfo(np.int32).max


@dataclass
class LabelBatch:
    """One chunk of label sets as CSR arrays over ``n_labels`` labels."""

    indptr: np.ndarray  # int64, n_samples + 1
    indices: np.ndarray  # int32 when the label space fits, else int64
    n_labels: int
    names: Optional[np.ndarray] = None  # sorted label names of this batch, when given names

    @property
    def n_samples(self) -> int:
        return len(self.indptr) - 1

    def to_csr(self) -> sp.csr_matrix:
        data = np.ones(len(self.indices), dtype=np.float32)
        return sp.csr_matrix((data, self.indices, self.indptr),
                             shape=(self.n_samples, self.n_labels))


def _index_dtype(n_labels: int):
    return np.int32 if n_labels <= _INT32_MAX else np.int64


def _check_n_labels(n_labels, largest: int, name: str) -> int:
    if n_labels is None:
        return largest
    n_labels = check_int(n_labels, "n_labels")
    if n_labels < largest:
        raise ValueError(
            f"n_labels={n_labels} is smaller than the label space of {name} ({largest} labels, "
            f"largest id {largest - 1}); pass n_labels >= {largest} or leave it as None"
        )
    return n_labels


def _from_sparse(m, n_labels, name: str) -> LabelBatch:
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x labels), got {m.ndim}-D")
    csr = sp.csr_matrix(m)
    data = csr.data
    if data.dtype.kind == "f" or data.dtype.kind == "c":
        if not np.all(np.isfinite(data)):
            raise ValueError(f"{name} contains NaN or Inf values; labels must be 0/1 indicators")
    if data.dtype.kind not in "biufc":
        raise TypeError(f"{name} has dtype {data.dtype}; use a numeric or bool sparse matrix")
    if len(data) and not np.all(data != 0):
        csr = csr.copy()
        csr.eliminate_zeros()
    L = _check_n_labels(n_labels, csr.shape[1], name)
    itype = _index_dtype(L)
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(csr.indices, dtype=itype)
    return LabelBatch(indptr, indices, L)


def _from_dense(a: np.ndarray, n_labels, name: str) -> LabelBatch:
    if a.ndim != 2:
        raise ValueError(
            f"{name} is a {a.ndim}-D array; pass a 2-D samples x labels indicator matrix, "
            "a sparse matrix, or a list of label sets"
        )
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {a.dtype}; a dense label matrix must be numeric or bool")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or Inf values; labels must be 0/1 indicators")
    if a.dtype == np.float16:  # scipy.sparse has no float16; only nonzero-ness matters
        a = a != 0
    return _from_sparse(sp.csr_matrix(a), n_labels, name)


def _is_name(x) -> bool:
    return isinstance(x, (str, np.str_))


def _is_id(x) -> bool:
    return isinstance(x, (numbers.Integral, np.integer)) and not isinstance(x, (bool, np.bool_))


def _from_sets(sets: Sequence, n_labels, name: str, vocab: Optional[dict] = None) -> LabelBatch:
    """Label sets given as sequences of ids or of names.

    With ``vocab`` (a dict name -> id that grows), names are mapped through it, which
    keeps ids stable across streamed chunks; otherwise a sorted vocabulary is built.
    """
    lengths = np.empty(len(sets), dtype=np.int64)
    for i, s in enumerate(sets):
        if isinstance(s, (str, bytes)) or not isinstance(s, (Sequence, np.ndarray, set, frozenset)):
            raise TypeError(
                f"{name}[{i}] is a {type(s).__name__}; each label set must be a list of "
                "integer ids or of label names (a single label still goes in a list)"
            )
        lengths[i] = len(s)
    flat = list(itertools.chain.from_iterable(sets))
    indptr = np.zeros(len(sets) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    if not flat:
        L = _check_n_labels(n_labels, 0, name)
        return LabelBatch(indptr, np.zeros(0, dtype=_index_dtype(L)), L)
    kinds = set(map(type, flat))
    names = all(issubclass(k, (str, np.str_)) for k in kinds)
    if not names:
        bad = [k for k in kinds if not (issubclass(k, (numbers.Integral, np.integer))
                                        and not issubclass(k, (bool, np.bool_)))]
        if bad:
            if any(issubclass(k, (str, np.str_)) for k in kinds):
                floats = [x for x in flat if isinstance(x, (float, np.floating))]
                if floats:
                    raise TypeError(
                        f"{name} has the float {floats[0]!r} among label names; a missing "
                        "value is not a label: drop it (pandas: dropna) or give it a name"
                    )
                raise TypeError(
                    f"{name} mixes label names and integer ids; use one or the other"
                )
            raise TypeError(
                f"{name} contains labels of type {sorted(k.__name__ for k in bad)}; labels must "
                "be integer ids (not floats or bools) or names (strings)"
            )
    if names:
        if n_labels is not None:
            raise ValueError(f"{name} holds label names, which build their own vocabulary; "
                             "n_labels applies to integer ids only (leave it as None)")
        if "\0" in "".join(flat):
            raise ValueError(f"{name} has a label name with a NUL character ('\\0'); names "
                             "that differ only by NULs would be merged: remove them")
        arr = np.asarray(flat, dtype=str)
        if vocab is None:
            uniq, inv = np.unique(arr, return_inverse=True)
            L = _check_n_labels(n_labels, len(uniq), name)
            return LabelBatch(indptr, inv.astype(_index_dtype(L)), L, names=uniq)
        uniq, inv = np.unique(arr, return_inverse=True)
        ids = np.empty(len(uniq), dtype=np.int64)
        for k, u in enumerate(uniq.tolist()):
            ids[k] = vocab.setdefault(u, len(vocab))
        L = len(vocab)
        return LabelBatch(indptr, ids[inv].astype(_index_dtype(L)), L)
    ids = np.asarray(flat)
    if ids.dtype.kind not in "iu":  # Python ints beyond int64
        raise ValueError(f"{name} has label ids that do not fit in 64 bits")
    ids = ids.astype(np.int64, copy=False)
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0:
        raise ValueError(f"{name} has a negative label id ({lo}); ids must be in [0, n_labels)")
    L = _check_n_labels(n_labels, hi + 1, name)
    return LabelBatch(indptr, ids.astype(_index_dtype(L)), L)


def _is_pandas(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "to_numpy")


def _from_pandas(obj, name: str):
    """A pandas Series of label sets (lists), or a DataFrame: one column of label sets, or
    numeric 0/1 indicator columns. (pandas is imported by the caller's code, never here.)"""
    if obj.ndim == 1:  # Series
        return list(obj.tolist())
    kinds = {dt.kind for dt in obj.dtypes}
    if obj.shape[1] == 1 and kinds == {"O"}:
        return list(obj.iloc[:, 0].tolist())
    if kinds <= set("biuf"):
        return obj.to_numpy()
    raise TypeError(
        f"{name} is a DataFrame with columns {list(obj.columns)[:5]}; pass one column of "
        "label lists (df['labels']) or numeric 0/1 indicator columns"
    )


def _one_batch(obj, n_labels, name: str, vocab: Optional[dict] = None) -> LabelBatch:
    if sp.issparse(obj):
        return _from_sparse(obj, n_labels, name)
    if _is_pandas(obj):
        obj = _from_pandas(obj, name)
    if isinstance(obj, np.ndarray):
        if obj.dtype == object or obj.ndim == 1:
            if obj.ndim != 1:
                raise ValueError(
                    f"{name} is a {obj.ndim}-D array of Python objects; pass a list of label "
                    "sets (or a 1-D object array of them), or a numeric 0/1 matrix")
            return _from_sets(list(obj), n_labels, name, vocab)
        return _from_dense(obj, n_labels, name)
    if isinstance(obj, (list, tuple)):
        return _from_sets(obj, n_labels, name, vocab)
    raise TypeError(
        f"{name} has unsupported type {type(obj).__name__}; pass a scipy sparse matrix, a 2-D "
        "array, a list of label sets, or an iterator of such chunks"
    )


def is_stream(obj) -> bool:
    """True for inputs given as several chunks (an iterator, or a list of sparse matrices)."""
    if sp.issparse(obj) or isinstance(obj, (np.ndarray, str, bytes)) or _is_pandas(obj):
        return False
    if isinstance(obj, (list, tuple)):
        return len(obj) > 0 and all(sp.issparse(c) for c in obj)
    return isinstance(obj, (Iterator, Iterable)) and not isinstance(obj, Sequence)


def to_batch(labels, n_labels=None, name: str = "labels") -> LabelBatch:
    """Validate and convert one in-memory input (not a stream) to a ``LabelBatch``."""
    if is_stream(labels):
        raise TypeError(f"{name} is a stream of chunks; this function takes one batch")
    batch = _one_batch(labels, n_labels, name)
    if batch.n_samples == 0:
        raise ValueError(f"{name} is empty (0 samples); pass at least one label set")
    return batch


def iter_batches(labels, n_labels=None, name: str = "labels"):
    """Yield ``(batch, vocab)`` for every chunk of ``labels``.

    ``vocab`` is None for id inputs; for name inputs it is the shared dict name -> id
    (first-seen order) that maps every chunk, so chunks agree on ids.
    """
    if not is_stream(labels):
        yield to_batch(labels, n_labels, name), None
        return
    vocab: Optional[dict] = None
    kind = None
    first_L = 0
    seen_any = False
    for k, chunk in enumerate(labels):
        cname = f"{name} (chunk {k})"
        if isinstance(chunk, LabelBatch):  # ids already in CSR form (file readers)
            this_kind = "ids"
            batch = LabelBatch(chunk.indptr, chunk.indices,
                               _check_n_labels(n_labels, chunk.n_labels, cname))
        elif sp.issparse(chunk) or (isinstance(chunk, np.ndarray) and chunk.ndim == 2
                                  and chunk.dtype != object):
            this_kind = "matrix"
            batch = _one_batch(chunk, n_labels, cname)
        else:
            if not isinstance(chunk, (list, tuple, np.ndarray)):
                raise TypeError(
                    f"{cname} is a {type(chunk).__name__}; each chunk must be a sparse matrix or "
                    "a list of label sets"
                )
            first = next((x for s in chunk for x in s), None)
            this_kind = "names" if _is_name(first) else ("ids" if first is not None else kind)
            if this_kind == "names":
                vocab = {} if vocab is None else vocab
                batch = _from_sets(chunk, None, cname, vocab)
            else:
                batch = _one_batch(chunk, n_labels, cname)
        if kind is not None and this_kind is not None and this_kind != kind and \
                {kind, this_kind} != {"matrix", "ids"}:
            raise ValueError(
                f"{cname} uses label {this_kind} but earlier chunks used label {kind}; "
                "all chunks must share one label space"
            )
        if n_labels is None and kind == "matrix" and this_kind == "matrix" and \
                batch.n_labels != first_L:
            raise ValueError(
                f"{cname} has {batch.n_labels} label columns but earlier chunks have {first_L}; "
                "all chunks must share one label space (pass n_labels to pad)"
            )
        if kind is None:
            kind = this_kind
            first_L = batch.n_labels
        seen_any = seen_any or batch.n_samples > 0
        yield batch, vocab
    if not seen_any:
        raise ValueError(f"{name} is empty (no samples in any chunk); pass at least one label set")
