"""Streaming label sets from files, in chunks, so counting never holds all samples.

``read_labels(paths)`` returns a re-iterable reader; each iteration yields chunks that
:func:`labelemb.cooccurrence` and :func:`labelemb.fit_embeddings` count one at a time.
Memory stays bounded by one chunk plus the L x L counts, whatever the number of samples.

Text files go through the reader core shared with :mod:`labelemb.formats`
(``_textfile``): the separator and ids-or-names are decided once, from the first lines
of the first text file, and recorded on the reader, so that a Dask worker given the
reader's copy for some of the files (:mod:`labelemb.dask`) reads them as this process
would.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import Counter
from itertools import chain
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _textfile as tf
from ._labels import LabelBatch
from ._textfile import LabelFileWarning
from ._validation import check_bool, check_choice, check_int

__all__ = ["LabelFileWarning", "LabelReader", "read_labels"]

FORMATS = ("text", "parquet", "npz")
READ_OPTIONS = ("format", "chunk_size", "delimiter", "column", "labels", "progress")
PathLike = Union[str, os.PathLike]
_BLOCK_BYTES = 1 << 16  # of text decoded at once: bounds the reader's memory with chunk_size


def _format_of(path: str) -> str:
    name = path
    for suffix in (".gz", ".bz2", ".xz"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".npz"):
        return "npz"
    return "text"


class LabelReader:
    """Label sets streamed from one or more files (see :func:`read_labels`).

    Attributes
    ----------
    paths : list of str
    delimiter : str or None
        The separator of the text files: as given, or detected from the first lines of
        the first text file (``" "``: any run of whitespace); None without text files.
    delimiter_detected : bool
        Whether ``delimiter`` was detected rather than given.
    kind : {"ids", "names"} or None
        What the text files hold: as given by ``labels``, or decided from the same first
        lines (None until a label is seen).
    """

    def __init__(self, paths: Sequence[str], fmt: Optional[str], chunk_size: int, delimiter,
                 column: Optional[str], labels: str, progress: bool, *,
                 delimiter_detected: bool = False, kind: Optional[str] = None,
                 check: bool = True):
        self.paths = list(paths)
        self.format = fmt
        self.chunk_size = chunk_size
        self.delimiter = delimiter
        self.delimiter_detected = delimiter_detected
        self.column = column
        self.labels = labels
        self.kind = kind if kind is not None else {"ids": "ids", "names": "names"}.get(labels)
        self.progress = progress
        self._check = check  # warn about a likely misread (off in the Dask workers' copies)

    def __repr__(self) -> str:
        sep = "" if self.delimiter is None else f", delimiter={self.delimiter!r}"
        return f"LabelReader({len(self.paths)} file(s), chunk_size={self.chunk_size}{sep})"

    def describe(self) -> str:
        """One line: what the text files are read as (kind, separator, detected or given)."""
        if self.delimiter is None:
            return f"{len(self.paths)} file(s), no text file"
        how = "detected from the first lines" if self.delimiter_detected else "given"
        return (f"label {self.kind or 'ids or names'} separated by "
                f"{tf.describe(self.delimiter)} ({how}) in {len(self.paths)} file(s)")

    def _subset(self, paths: Sequence[str]) -> LabelReader:
        """The same reading, decided once here, over some of the files (for a worker)."""
        return LabelReader(paths, self.format, self.chunk_size, self.delimiter, self.column,
                           self.labels, False, delimiter_detected=self.delimiter_detected,
                           kind=self.kind, check=False)

    def _warn_misread(self, counts) -> None:
        if not self._check or self.kind != "names" or self.delimiter is None:
            return
        text = [p for p in self.paths if (self.format or _format_of(p)) == "text"]
        msg = tf.misread_message(", ".join(text[:1]) + (" ..." if len(text) > 1 else ""),
                                 self.delimiter, self.delimiter_detected, (), counts)
        if msg is not None:
            warnings.warn(msg, LabelFileWarning, stacklevel=4)

    def __iter__(self) -> Iterator:
        bar = _progress_bar(self.progress, sum(os.path.getsize(p) for p in self.paths))
        if self.progress:
            print(f"reading labels: {self.describe()}", file=sys.stderr)
        kind = self.kind
        names: Optional[Counter] = None
        try:
            for path in self.paths:
                fmt = self.format or _format_of(path)
                if fmt == "text":
                    for lineno, lines, nbytes in self._text_chunks(path):
                        chunk = None
                        if kind is None:
                            chunk = _tokens(lines, self.delimiter, path, lineno)
                            kind = tf.guess_kind(chunk)
                        if kind == "ids":
                            chunk = _ids_batch(lines, self.delimiter, path, lineno)
                        else:
                            chunk = chunk or _tokens(lines, self.delimiter, path, lineno)
                        if kind != "ids" and self._check:
                            names = Counter() if names is None else names
                            names.update(chain.from_iterable(chunk))
                        bar.update(nbytes)
                        yield chunk
                elif fmt == "parquet":
                    yield from self._parquet_chunks(path, bar)
                else:
                    yield from self._npz_chunks(path, bar)
        finally:
            bar.close()
        if names is not None and kind == "names":
            self._warn_misread(tf.once_counts(names))

    # -- text: one sample per line, labels separated by `delimiter` --------------------
    def _text_chunks(self, path: str):
        """``(first line number, lines, bytes read)`` per ``chunk_size`` lines."""
        size = self.chunk_size
        pending: List[str] = []  # lines, split only chunk by chunk (memory: one chunk)
        start, last = 1, 0
        for lineno, block, pos in tf.line_blocks(path, _BLOCK_BYTES):
            if not pending:
                start = lineno
            pending += block
            i = 0
            while len(pending) - i >= size:
                yield start, pending[i:i + size], pos - last
                i, start, last = i + size, start + size, pos
            pending = pending[i:]
        if pending:
            yield start, pending, os.path.getsize(path) - last

    # -- parquet: a list column of ids or names ----------------------------------------
    def _parquet_chunks(self, path: str, bar):
        try:
            import pyarrow.parquet as pq
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("reading Parquet needs pyarrow: pip install 'labelemb[dask]' "
                              "or pip install pyarrow") from e
        pf = pq.ParquetFile(path)
        column = self.column or pf.schema_arrow.names[0]
        if column not in pf.schema_arrow.names:
            raise ValueError(f"column {column!r} not in {path} (columns: {pf.schema_arrow.names})")
        per_batch = os.path.getsize(path) / max(1, pf.metadata.num_row_groups)
        for rb in pf.iter_batches(batch_size=self.chunk_size, columns=[column]):
            arr = rb.column(0)
            values = arr.values
            if values.type.id in (2, 3, 4, 5, 6, 7, 8, 9):  # pyarrow integer type ids
                offsets = np.asarray(arr.offsets, dtype=np.int64)
                vals = np.asarray(values, dtype=np.int64)[offsets[0]:offsets[-1]]
                yield _ids_arrays(offsets - offsets[0], vals, path)
            else:
                yield [[x for x in row if x is not None] if row is not None else []
                       for row in arr.to_pylist()]
            bar.update(per_batch * rb.num_rows / max(1, pf.metadata.num_rows) *
                       pf.metadata.num_row_groups)

    # -- npz: a scipy sparse matrix saved with scipy.sparse.save_npz --------------------
    def _npz_chunks(self, path: str, bar):
        from ._npz import load_sparse  # headers checked before allocating; ValueError naming path

        m = load_sparse(path, "a scipy sparse .npz (write it with scipy.sparse.save_npz)")
        n = m.shape[0]
        for a in range(0, n, self.chunk_size):
            yield m[a:a + self.chunk_size]
            bar.update(os.path.getsize(path) * min(self.chunk_size, n - a) / max(1, n))


def _tokens(block: List[str], delimiter: str, path: str, lineno: int) -> List[List[str]]:
    if delimiter == " ":
        return [line.split() for line in block]
    toks = [tf.split(line, delimiter) for line in block]
    if not delimiter.isspace():
        for k, t in enumerate(toks):
            if "" in t:
                raise tf.empty_label(path, lineno + k, block[k], delimiter)
    return toks


def _ids_arrays(indptr: np.ndarray, ids: np.ndarray, path: str) -> LabelBatch:
    if len(ids) and ids.min() < 0:
        raise ValueError(f"{path}: negative label id {int(ids.min())}")
    L = int(ids.max()) + 1 if len(ids) else 0
    itype = np.int32 if L <= np.iinfo(np.int32).max else np.int64
    return LabelBatch(indptr.astype(np.int64), ids.astype(itype), L)


def _ids_batch(lines: List[str], delimiter: str, path: str, lineno: int) -> LabelBatch:
    parsed = tf.fast_ids(lines, delimiter)
    if parsed is None:  # token by token, to report the first bad one at path:line
        chunk = _tokens(lines, delimiter, path, lineno)
        lengths = np.fromiter(map(len, chunk), dtype=np.int64, count=len(chunk))
        # Ids below INT64_MAX, so that n_labels = largest id + 1 fits an int64 too.
        ids = tf.parse_ids(chunk, path, lineno, tf.INT64_MAX)
    else:
        lengths, ids = parsed
    indptr = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    L = int(ids.max()) + 1 if len(ids) else 0
    itype = np.int32 if L <= np.iinfo(np.int32).max else np.int64
    return LabelBatch(indptr, ids.astype(itype), L)


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(enabled: bool, total: int):
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="B", unit_scale=True, desc="reading labels")


def read_labels(paths: Union[PathLike, Sequence[PathLike]], *, format: Optional[str] = None,
                chunk_size: int = 100_000, delimiter: Optional[str] = None,
                column: Optional[str] = None, labels: str = "auto",
                progress: bool = False) -> LabelReader:
    """Stream label sets from files, in chunks.

    Parameters
    ----------
    paths : path or list of paths
        Label-list text files (one sample per line, labels separated by ``delimiter``;
        UTF-8, a byte-order mark is dropped; plain, or gzip/bz2/xz by the ``.gz``,
        ``.bz2``, ``.xz`` suffix or the file's first bytes), Parquet files (``.parquet``;
        a list column of integer ids or of names), or CSR matrices saved with
        ``scipy.sparse.save_npz`` (``.npz``; each file is loaded whole, so shard big
        matrices into several files).
    format : {"text", "parquet", "npz"}, optional
        Overrides the format guessed from the suffix.
    chunk_size : int, default 100_000
        Samples per chunk.
    delimiter : str or None, default None
        Label separator in text files; ``" "`` splits on any run of whitespace. None
        detects it from the first 1,000 non-empty lines of the first text file: the one of
        tab, semicolon and comma found in the most lines, else whitespace when lines hold
        several words. The choice is ``reader.delimiter`` (and ``reader.describe()``,
        printed with ``progress=True``). A given delimiter is always used as is.
    column : str, optional
        Parquet column holding the label lists (default: the first column).
    labels : {"auto", "ids", "names"}, default "auto"
        Whether text files hold integer ids or names; "auto" reads ids when every label
        of those first lines is an integer, names otherwise (``reader.kind``).
    progress : bool, default False
        Print what the files are read as, and show a progress bar in bytes (needs tqdm).

    Returns
    -------
    LabelReader
        Re-iterable; pass it to :func:`labelemb.cooccurrence` or
        :func:`labelemb.fit_embeddings` (with ``client=``, every Dask worker reads its
        files with the same options and the same detected separator).

    Raises
    ------
    ValueError
        While reading, ``"<path>:<line>: ..."`` for text that is not UTF-8, an empty
        label, a label that is not an id in ids mode, or an id of 2^63 - 1 or more; and
        ``"<path>: ..."`` for a truncated or corrupt compressed file.

    Warns
    -----
    LabelFileWarning
        When the files are read as names and look misread: most of the first lines hold
        one label that contains another separator, or (after a full pass) 90% or more of
        at least 100 names occur only once. The message says how to read them otherwise.

    Examples
    --------
    >>> import labelemb, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tags.txt"
    >>> _ = path.write_text("sky beach\\nsky sea\\n")
    >>> reader = labelemb.read_labels(path)
    >>> reader.delimiter, reader.kind
    (' ', 'names')
    >>> labelemb.cooccurrence(reader).label_names
    ['beach', 'sea', 'sky']
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(paths, (list, tuple)) or \
            not all(isinstance(p, (str, os.PathLike)) for p in paths):
        raise TypeError("paths must be a path or a list of paths, got "
                        f"{type(paths).__name__}")
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("paths is empty; pass at least one file")
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"paths: no such file {p!r}")
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} or None, got {format!r}")
    check_choice(labels, "labels", ("auto", "ids", "names"))
    chunk_size = check_int(chunk_size, "chunk_size", lo=1)
    tf.check_delimiter(delimiter)
    progress = check_bool(progress, "progress")
    text = [p for p in paths if (format or _format_of(p)) == "text"]
    kind = None if labels == "auto" else labels
    detected, first, sample = False, None, []
    if text:
        first, lines = tf.sample(text)
        if delimiter is None:
            delimiter, detected = tf.detect_delimiter(lines), True
        sample = [[t for t in tf.split(s, delimiter) if t] for s in lines]
        kind = kind or tf.guess_kind(sample)
    reader = LabelReader(paths, format, int(chunk_size), delimiter, column, labels,
                         bool(progress), delimiter_detected=detected, kind=kind)
    if kind == "names" and first is not None:
        msg = tf.misread_message(first, delimiter, detected, sample)
        if msg is not None:
            warnings.warn(msg, LabelFileWarning, stacklevel=2)
            reader._check = False  # one warning for one cause
    return reader


def as_reader(labels, read_kwargs: Optional[dict] = None,
              progress: bool = False) -> Optional[LabelReader]:
    """``labels`` as a :class:`LabelReader` when they name files, else None.

    A LabelReader is returned as is; a path or a list of paths is read with
    ``read_labels(paths, **read_kwargs)`` (``progress`` unless ``read_kwargs`` sets it).
    ``read_kwargs`` with any other input is an error: it would be silently unused.
    """
    if read_kwargs is not None:
        if not isinstance(read_kwargs, dict):
            raise TypeError(f"read_kwargs must be a dict of read_labels options, got "
                            f"{type(read_kwargs).__name__}")
        unknown = sorted(set(read_kwargs) - set(READ_OPTIONS))
        if unknown:
            raise TypeError(f"read_kwargs has unknown option(s) {unknown}; read_labels takes "
                            f"{list(READ_OPTIONS)}")
    if isinstance(labels, LabelReader):
        if read_kwargs:
            raise ValueError("read_kwargs applies to file paths, but labels is a LabelReader "
                             "already; give those options to read_labels instead")
        return labels
    is_paths = isinstance(labels, (str, os.PathLike)) or (
        isinstance(labels, (list, tuple)) and len(labels) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in labels))
    if not is_paths:
        if read_kwargs is not None:
            raise TypeError(f"read_kwargs applies to label files, but labels is a "
                            f"{type(labels).__name__}; pass file paths or drop read_kwargs")
        return None
    listed = [labels] if isinstance(labels, (str, os.PathLike)) else list(labels)
    missing = [os.fspath(p) for p in listed if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"labels: no such file {missing[0]!r} (strings are read as "
                                "label files; label sets go in lists: [['cat', 'dog'], ...])")
    options = {"progress": progress, **(read_kwargs or {})}
    return read_labels(listed, **options)
