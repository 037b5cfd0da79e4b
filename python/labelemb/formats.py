"""Readers and writers for multi-label text formats.

* Label lists: one sample per line, its labels separated by a delimiter (detected by
  default: comma, tab, semicolon or whitespace; written with ``","`` by default), given
  as names or as integer ids. An empty line is a sample with no label.
* The Extreme Classification Repository sparse format: a header line
  ``n_samples n_features n_labels``, then one line per sample
  ``l1,l2,... f1:v1 f2:v2 ...`` (0-based ids); a sample with no label starts with a
  space.

Files ending in ``.gz`` are read and written gzip-compressed (readers also take bz2
and xz, by suffix or by the first bytes; they share one core with
:func:`labelemb.read_labels`, see ``labelemb._textfile``). Writers replace the target
atomically (temporary file in the same directory, then ``os.replace``). Malformed input
raises ``ValueError`` with the file name and the 1-based line number.
"""

from __future__ import annotations

import gzip
import io
import numbers
import os
import warnings
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp

from . import _textfile
from ._io import atomic_write

__all__ = ["read_label_list", "read_xc", "write_label_list", "write_xc"]

PathLike = Union[str, "os.PathLike[str]"]


# ------------------------------------------------------------------------------ I/O


def _is_gz(path: PathLike) -> bool:
    return os.fspath(path).endswith(".gz")


def _lines(path: PathLike) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without its end-of-line) for every line of a file, read
    by the shared reader core (compression, UTF-8 and BOM, errors at ``path:line``).

    A final line terminator does not start an extra (empty) line.
    """
    return _textfile.lines(os.fspath(path))


def _atomic_write_lines(path: PathLike, lines: Iterable[str]) -> None:
    with atomic_write(path) as raw:
        if _is_gz(path):
            name = os.path.basename(os.fspath(path))[:-3]
            with gzip.GzipFile(filename=name, mode="wb", fileobj=raw, mtime=0) as gz:
                _write_lines(gz, lines)  # closing gz leaves raw open
        else:
            _write_lines(raw, lines)


def _write_lines(binary, lines: Iterable[str]) -> None:
    """UTF-8 lines ending in "\\n" to a binary file, which stays open."""
    fh = io.TextIOWrapper(binary, encoding="utf-8", newline="\n")
    try:
        for line in lines:
            fh.write(line + "\n")
        fh.flush()
    finally:
        fh.detach()


def _error(path: PathLike, lineno: int, msg: str) -> ValueError:
    return ValueError(f"{os.fspath(path)}:{lineno}: {msg}")


def _csr(rows: List[List[int]], n_cols: int, data: Optional[list] = None) -> sp.csr_matrix:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.fromiter((j for r in rows for j in r), dtype=np.int32, count=int(indptr[-1]))
    values = (
        np.ones(len(indices), dtype=np.float32)
        if data is None
        else np.asarray(data, dtype=np.float32)
    )
    m = sp.csr_matrix((values, indices, indptr), shape=(len(rows), n_cols))
    m.sum_duplicates()
    return m


def _rows_of(labels) -> List[List[int]]:
    """Label ids per sample from a sparse/dense matrix or a sequence of id sequences."""
    if sp.issparse(labels):
        m = sp.csr_matrix(labels)
        m.eliminate_zeros()
        m.sort_indices()
        return [m.indices[m.indptr[i] : m.indptr[i + 1]].tolist() for i in range(m.shape[0])]
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        return [np.flatnonzero(row).tolist() for row in labels]
    rows = []
    for i, row in enumerate(labels):
        if isinstance(row, (str, bytes)) or not hasattr(row, "__iter__"):
            raise TypeError(f"labels[{i}] is a {type(row).__name__}; each sample's labels must "
                            "be a list of integer ids")
        ids = set()
        for j in row:
            if isinstance(j, (bool, np.bool_)) or not isinstance(j, numbers.Integral):
                raise TypeError(f"labels[{i}] holds {j!r}; label ids must be integers (pass "
                                "label_names= to write names)")
            if j < 0:
                raise ValueError(f"labels[{i}] has the negative label id {j}; ids are >= 0")
            ids.add(int(j))
        rows.append(sorted(ids))
    return rows


def _n_cols(labels, rows: List[List[int]]) -> int:
    if sp.issparse(labels) or (isinstance(labels, np.ndarray) and labels.ndim == 2):
        return int(labels.shape[1])
    return max((max(r) + 1 for r in rows if r), default=0)


# ------------------------------------------------------------------------ label list


_is_id = _textfile.is_id
_INDEX_LIMIT = int(np.iinfo(np.int32).max)  # column ids are int32: ids below this
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_label_list(
    path: PathLike,
    *,
    delimiter: Optional[str] = None,
    ids: Optional[bool] = None,
    n_labels: Optional[int] = None,
) -> Tuple[sp.csr_matrix, Optional[List[str]]]:
    """Read a label-list text file (one sample per line).

    Parameters
    ----------
    path : str or path
        UTF-8 text (a leading byte-order mark is dropped); gzip, bz2 or xz by the
        ``.gz``, ``.bz2``, ``.xz`` suffix or the file's first bytes.
    delimiter : str or None, default None
        Separator between the labels of a line. None detects it from the first 1,000
        non-empty lines as :func:`labelemb.read_labels` does (tab, semicolon, comma, else
        whitespace). ``" "`` splits on any run of whitespace; for another whitespace
        delimiter (``"\\t"``) repeated separators are one. Labels are stripped of
        surrounding whitespace.
    ids : bool or None, default None
        True: labels are non-negative integer ids (column numbers, ASCII digits). False:
        labels are names (``"12"`` is a name). None: ids if every label in the file looks
        like an integer, names otherwise.
    n_labels : int, optional
        Number of columns for ids (default: largest id + 1). Ignored for names.

    Returns
    -------
    labels : scipy.sparse.csr_matrix, shape (n_samples, n_labels), float32
        Ones at the labels of each sample; an empty line is an empty row. A label
        repeated on one line counts once.
    label_names : list of str or None
        The sorted distinct names (column ``j`` is ``label_names[j]``), or None for ids.

    Raises
    ------
    ValueError
        ``"<path>:<line>: ..."`` for text that is not UTF-8, an empty label between two
        delimiters, a label that is not an id when ids are read (a negative one
        included), an id ``>= n_labels`` or ``>= 2**31 - 1``; ``"<path>: ..."`` for a
        truncated or corrupt compressed file.

    Warns
    -----
    LabelFileWarning
        Names that look misread (see :func:`labelemb.read_labels`).
    """
    path = os.fspath(path)
    _textfile.check_delimiter(delimiter)
    detected = delimiter is None
    if detected:
        _, first = _textfile.sample([path])
        delimiter = _textfile.detect_delimiter(first)
    tokens: List[List[str]] = []
    linenos: List[int] = []
    for lineno, line in _lines(path):
        toks = _textfile.split(line, delimiter)
        if "" in toks:
            raise _textfile.empty_label(path, lineno, line, delimiter)
        tokens.append(toks)
        linenos.append(lineno)

    if ids is None:
        ids = _textfile.guess_kind(tokens) == "ids"
    if not ids:
        names = sorted({t for toks in tokens for t in toks})
        col = {name: j for j, name in enumerate(names)}
        rows = [sorted({col[t] for t in toks}) for toks in tokens]
        m = _csr(rows, len(names))
        counts = np.diff(m.tocsc().indptr)
        once = np.flatnonzero(counts == 1)
        msg = _textfile.misread_message(
            path, delimiter, detected, tokens[:_textfile.SAMPLE_LINES],
            (len(names), len(once), names[once[0]] if len(once) else ""))
        if msg is not None:
            warnings.warn(msg, _textfile.LabelFileWarning, stacklevel=2)
        return m, names

    limit = _INDEX_LIMIT if n_labels is None else min(int(n_labels), _INDEX_LIMIT)
    rows = []
    for toks, lineno in zip(tokens, linenos):
        row = set()
        for t in toks:
            err = _textfile.bad_id(t, path, lineno, _INDEX_LIMIT)
            if err is not None:
                raise err
            j = int(t)
            if j >= limit:
                raise _error(path, lineno, f"label id {j} >= n_labels={n_labels}")
            row.add(j)
        rows.append(sorted(row))
    if n_labels is None:
        n_labels = max((r[-1] + 1 for r in rows if r), default=0)
    return _csr(rows, n_labels), None


def write_label_list(
    path: PathLike,
    labels,
    label_names: Optional[Sequence[str]] = None,
    delimiter: str = ",",
) -> None:
    """Write label sets as a label-list text file (atomically; gzip for ``.gz``).

    Parameters
    ----------
    path : str or path
        Target file; ``.gz`` writes gzip.
    labels : sparse matrix, 2-D array (n, L), or sequence of sequences of int
        Nonzero entries (or the listed ids) are the labels of each sample.
    label_names : sequence of str, optional
        Write ``label_names[j]`` instead of the id ``j``. Names must be non-empty,
        without surrounding whitespace, line breaks or the delimiter.
    delimiter : str, default ","
        Separator between labels.

    Notes
    -----
    A sample with no label is an empty line. Reading back names that all look like
    integers needs ``read_label_list(..., ids=False)``.
    """
    rows = _rows_of(labels)
    if label_names is not None:
        names = [str(s) for s in label_names]
        for name in names:
            if (
                not name
                or name != name.strip()
                or "\n" in name
                or "\r" in name
                or (delimiter and delimiter in name)
            ):
                raise ValueError(f"label name {name!r} cannot be written with {delimiter!r}")
        width = max((r[-1] + 1 for r in rows if r), default=0)
        if width > len(names):
            raise ValueError(f"label id {width - 1} has no name: label_names has only "
                             f"{len(names)} names (ids must be in [0, {len(names)}))")
        lines = (delimiter.join(names[j] for j in r) for r in rows)
    else:
        lines = (delimiter.join(str(j) for j in r) for r in rows)
    _atomic_write_lines(path, lines)


# ------------------------------------------------------------------- XC repository


def read_xc(path: PathLike) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """Read an Extreme Classification Repository sparse text file.

    Parameters
    ----------
    path : str or path
        Plain text, or gzip when the name ends in ``.gz``.

    Returns
    -------
    features : scipy.sparse.csr_matrix, shape (n_samples, n_features), float32
    labels : scipy.sparse.csr_matrix, shape (n_samples, n_labels), float32
        Ones at each sample's labels.

    Raises
    ------
    ValueError
        ``"<path>:<line>: ..."`` for a bad header, a bad label or ``index:value``
        token, an index out of the header's range, or a number of sample lines that
        differs from the header's ``n_samples``.
    """
    it = _lines(path)
    try:
        _, header = next(it)
    except StopIteration:
        raise _error(path, 1, "empty file, expected 'n_samples n_features n_labels'") from None
    parts = header.split()
    if len(parts) != 3 or not all(_is_id(p) for p in parts):
        raise _error(path, 1, f"expected 'n_samples n_features n_labels', got {header[:80]!r}")
    n_samples, n_features, n_labels = (int(p) if len(p) < 20 else _INDEX_LIMIT for p in parts)
    if max(n_features, n_labels) >= _INDEX_LIMIT:
        raise _error(path, 1, f"n_features and n_labels must be below {_INDEX_LIMIT} (int32 "
                     f"column ids), got {header[:80]!r}")

    label_rows: List[List[int]] = []
    feat_rows: List[List[int]] = []
    values: List[float] = []
    lineno = 1
    for lineno, line in it:
        if len(label_rows) == n_samples:
            if line.strip():
                raise _error(path, lineno, f"more sample lines than n_samples={n_samples}")
            continue
        toks = line.split()
        labs: List[int] = []
        if toks and not line[:1].isspace() and ":" not in toks[0]:
            for t in toks[0].split(","):
                if not _is_id(t):
                    raise _error(path, lineno, f"bad label {t!r} in {toks[0][:80]!r}")
                j = int(t)
                if j >= n_labels:
                    raise _error(path, lineno, f"label {j} >= n_labels={n_labels}")
                labs.append(j)
            toks = toks[1:]
        feats = []
        for t in toks:
            k, sep, v = t.partition(":")
            if not sep or not _is_id(k):
                raise _error(path, lineno, f"bad feature token {t!r}, expected index:value")
            try:
                val = float(v)
            except ValueError:
                raise _error(path, lineno, f"bad feature value in {t!r}") from None
            if not abs(val) <= _FLOAT32_MAX:  # NaN, inf, or inf once stored as float32
                raise _error(path, lineno, f"feature value in {t!r} is not a finite float32")
            k_int = int(k)
            if k_int >= n_features:
                raise _error(path, lineno, f"feature {k_int} >= n_features={n_features}")
            feats.append(k_int)
            values.append(val)
        label_rows.append(sorted(set(labs)))
        feat_rows.append(feats)
    if len(label_rows) != n_samples:
        raise _error(path, lineno, f"found {len(label_rows)} sample lines, header says {n_samples}")
    features = _csr(feat_rows, n_features, values)
    features.sort_indices()
    return features, _csr(label_rows, n_labels)


def _fmt(x: np.float32) -> str:
    return str(x)  # shortest text that reads back to the same float32


def write_xc(path: PathLike, features, labels) -> None:
    """Write features and labels in the Extreme Classification Repository format.

    Parameters
    ----------
    path : str or path
        Target file (atomically replaced; gzip for ``.gz``).
    features : sparse matrix or 2-D array, shape (n_samples, n_features)
        Written as float32 ``index:value`` pairs (explicit zeros are dropped).
    labels : sparse matrix, 2-D array (n_samples, n_labels), or sequence of id lists
        Nonzero entries are the labels. A sample without labels gets a line that
        starts with a space.
    """
    feats = sp.csr_matrix(features, dtype=np.float32)
    feats.sum_duplicates()
    feats.eliminate_zeros()
    feats.sort_indices()
    rows = _rows_of(labels)
    if len(rows) != feats.shape[0]:
        raise ValueError(f"features have {feats.shape[0]} rows, labels {len(rows)}")
    n_labels = _n_cols(labels, rows)

    def lines():
        yield f"{feats.shape[0]} {feats.shape[1]} {n_labels}"
        for i, r in enumerate(rows):
            lo, hi = feats.indptr[i], feats.indptr[i + 1]
            pairs = " ".join(
                f"{k}:{_fmt(v)}" for k, v in zip(feats.indices[lo:hi].tolist(), feats.data[lo:hi])
            )
            head = ",".join(str(j) for j in r)
            yield f"{head} {pairs}" if pairs else (head if head else " ")

    _atomic_write_lines(path, lines())
