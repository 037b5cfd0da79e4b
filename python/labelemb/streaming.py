"""Streaming label sets from files, in chunks, so counting never holds all samples.

``read_labels(paths)`` returns a re-iterable reader; each iteration yields chunks that
:func:`labelemb.cooccurrence` and :func:`labelemb.fit_embeddings` count one at a time.
Memory stays bounded by one chunk plus the L x L counts, whatever the number of samples.
"""

from __future__ import annotations

import gzip
import os
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp

from ._labels import LabelBatch

FORMATS = ("text", "parquet", "npz")
PathLike = Union[str, os.PathLike]


def _format_of(path: str) -> str:
    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".npz"):
        return "npz"
    return "text"


class LabelReader:
    """Label sets streamed from one or more files (see :func:`read_labels`)."""

    def __init__(self, paths: Sequence[str], fmt: Optional[str], chunk_size: int, delimiter,
                 column: Optional[str], labels: str, progress: bool):
        self.paths = list(paths)
        self.format = fmt
        self.chunk_size = chunk_size
        self.delimiter = delimiter
        self.column = column
        self.labels = labels
        self.progress = progress

    def __repr__(self) -> str:
        return f"LabelReader({len(self.paths)} file(s), chunk_size={self.chunk_size})"

    def __iter__(self) -> Iterator:
        bar = _progress_bar(self.progress, sum(os.path.getsize(p) for p in self.paths))
        kind = {"ids": "ids", "names": "names"}.get(self.labels)
        try:
            for path in self.paths:
                fmt = self.format or _format_of(path)
                if fmt == "text":
                    for chunk, nbytes in self._text_chunks(path, kind):
                        if kind is None and any(chunk):
                            kind = _guess_kind(chunk)
                        if kind == "ids":
                            chunk = _ids_batch(chunk, path)
                        bar.update(nbytes)
                        yield chunk
                elif fmt == "parquet":
                    yield from self._parquet_chunks(path, bar)
                else:
                    yield from self._npz_chunks(path, bar)
        finally:
            bar.close()

    # -- text: one sample per line, labels separated by `delimiter` --------------------
    def _text_chunks(self, path: str, kind):
        opener = gzip.open if path.endswith(".gz") else open
        with open(path, "rb") as raw, opener(raw if path.endswith(".gz") else path, "rt",
                                            encoding="utf-8") as f:
            chunk, last = [], 0
            for line in f:
                line = line.rstrip("\r\n")
                if self.delimiter is None:
                    toks = line.split()
                else:
                    toks = [t.strip() for t in line.split(self.delimiter)] if line.strip() else []
                    toks = [t for t in toks if t]
                chunk.append(toks)
                if len(chunk) >= self.chunk_size:
                    pos = raw.tell()
                    yield chunk, pos - last
                    chunk, last = [], pos
            if chunk:
                yield chunk, os.path.getsize(path) - last

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
        m = sp.load_npz(path).tocsr()
        n = m.shape[0]
        for a in range(0, n, self.chunk_size):
            yield m[a:a + self.chunk_size]
            bar.update(os.path.getsize(path) * min(self.chunk_size, n - a) / max(1, n))


def _guess_kind(chunk) -> str:
    for s in chunk:
        for t in s:
            return "ids" if t.lstrip("-").isdigit() else "names"
    return "names"


def _ids_arrays(indptr: np.ndarray, ids: np.ndarray, path: str) -> LabelBatch:
    if len(ids) and ids.min() < 0:
        raise ValueError(f"{path}: negative label id {int(ids.min())}")
    L = int(ids.max()) + 1 if len(ids) else 0
    itype = np.int32 if L <= np.iinfo(np.int32).max else np.int64
    return LabelBatch(indptr.astype(np.int64), ids.astype(itype), L)


def _ids_batch(chunk, path: str) -> LabelBatch:
    lengths = np.fromiter(map(len, chunk), dtype=np.int64, count=len(chunk))
    indptr = np.zeros(len(chunk) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    flat = [t for s in chunk for t in s]
    try:
        ids = np.array(flat, dtype=np.int64)
    except ValueError:
        bad = next(t for t in flat if not t.lstrip("-").isdigit())
        raise ValueError(f"{path}: label {bad!r} is not an integer id; pass labels='names' "
                         "if the file holds label names") from None
    return _ids_arrays(indptr, ids, path)


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
                chunk_size: int = 100_000, delimiter: Optional[str] = ",",
                column: Optional[str] = None, labels: str = "auto",
                progress: bool = False) -> LabelReader:
    """Stream label sets from files, in chunks.

    Parameters
    ----------
    paths : path or list of paths
        Label-list text files (one sample per line, labels separated by ``delimiter``;
        plain or gzip by the ``.gz`` suffix), Parquet files (``.parquet``; a list
        column of integer ids or of names), or CSR matrices saved with
        ``scipy.sparse.save_npz`` (``.npz``; each file is loaded whole, so shard big
        matrices into several files).
    format : {"text", "parquet", "npz"}, optional
        Overrides the format guessed from the suffix.
    chunk_size : int, default 100_000
        Samples per chunk.
    delimiter : str or None, default ","
        Label separator in text files; None splits on any whitespace.
    column : str, optional
        Parquet column holding the label lists (default: the first column).
    labels : {"auto", "ids", "names"}, default "auto"
        Whether text files hold integer ids or names; "auto" decides from the first
        label of the first non-empty chunk.
    progress : bool, default False
        Show a progress bar in bytes (needs tqdm).

    Returns
    -------
    LabelReader
        Re-iterable; pass it to :func:`labelemb.cooccurrence` or
        :func:`labelemb.fit_embeddings`.

    Examples
    --------
    >>> import labelemb, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tags.txt")
    >>> _ = open(path, "w").write("sky,beach\\nsky,sea\\n")
    >>> labelemb.cooccurrence(labelemb.read_labels(path)).label_names
    ['beach', 'sea', 'sky']
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("paths is empty; pass at least one file")
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"paths: no such file {p!r}")
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} or None, got {format!r}")
    if labels not in ("auto", "ids", "names"):
        raise ValueError(f"labels must be 'auto', 'ids' or 'names', got {labels!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
            or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    return LabelReader(paths, format, int(chunk_size), delimiter, column, labels, progress)
