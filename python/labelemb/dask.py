"""Counting label co-occurrence on a Dask cluster (extra ``dask``).

The C++ kernel runs on each partition, on the workers; the partial counts (plain numpy
arrays inside a :class:`~labelemb.Cooccurrence`, which pickles compactly) are summed in
a tree on the cluster down to a few, which the caller's process sums into one
``Cooccurrence``, the same object the in-process path
returns. No native object crosses a process boundary.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Optional

import numpy as np

from ._validation import check_int
from .cooccurrence import Cooccurrence, combine
from .cooccurrence import cooccurrence as _count
from .streaming import LabelReader, as_reader


def _count_partition(part, n_labels, num_threads) -> Cooccurrence:
    if hasattr(part, "tolist") and not hasattr(part, "indptr"):  # pandas Series of lists
        part = [list(x) if x is not None else [] for x in part.tolist()]
    elif hasattr(part, "columns"):  # a pandas DataFrame: its first column holds the lists
        part = [list(x) if x is not None else [] for x in part.iloc[:, 0].tolist()]
    if isinstance(part, list) and part and isinstance(part[0], str):
        raise TypeError("a partition holds strings where label lists were expected (dask may "
                        "have converted a list column to strings: set "
                        "dask.config.set({'dataframe.convert-string': False}))")
    if isinstance(part, (list, tuple)) and len(part) == 0:
        return None
    return _count(part, n_labels=n_labels, num_threads=num_threads)


def _count_files(reader, n_labels, num_threads) -> Cooccurrence:
    """One task: stream several files through one count (partial sums stay on the worker).
    ``reader`` carries the options and the separator decided once in the caller's process."""
    return _count(reader, n_labels=n_labels, num_threads=num_threads)


def _combine_all(parts) -> Optional[Cooccurrence]:
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return combine(*parts)


def _tree_reduce(delayeds, split_every: int):
    """Sum on the cluster, ``split_every`` at a time, until at most ``split_every`` partial
    counts are left (the caller sums those in its own process, with all its cores, so the
    last sum is not shipped once more)."""
    import dask

    level = list(delayeds)
    while len(level) > split_every:
        level = [dask.delayed(_combine_all)(level[i:i + split_every])
                 for i in range(0, len(level), split_every)]
    return level


def cooccurrence(collection, *, client=None, n_labels: Optional[int] = None,
                 num_threads: int = 1, split_every: int = 8, read_kwargs: Optional[dict] = None,
                 n_workers: Optional[int] = None) -> Cooccurrence:
    """Count labels and label pairs over a partitioned collection on a Dask cluster.

    Parameters
    ----------
    collection : dask.bag.Bag, dask.dataframe.DataFrame or Series, paths, or LabelReader
        A bag whose elements are label sets (lists of ids or names), a dataframe/series
        whose (first) column holds label lists, or files that
        :func:`labelemb.read_labels` reads (on the workers: the files are cut into one
        run of about equal size per worker thread, and each task streams its run into
        one partial count, so only those partials cross process boundaries). Files are
        read with the options of the given reader, or of ``read_kwargs``; the separator
        and ids-or-names are decided once, here, from the first file, so every worker
        reads as :func:`labelemb.read_labels` does in one process.
    client : distributed.Client, optional
        The cluster to run on. Without one, a ``LocalCluster`` with ``n_workers``
        single-threaded process workers (default: one per core) is started and closed.
    n_labels : int, optional
        The label space size for id inputs (otherwise the largest id seen + 1).
    num_threads : int, default 1
        Threads of the kernel inside each worker task.
    split_every : int, default 8
        Fan-in of the tree that sums the partial counts on the cluster; the last (at
        most ``split_every``) are summed in this process.
    read_kwargs : dict, optional
        Passed to :func:`labelemb.read_labels` for path inputs (not with a reader).

    Returns
    -------
    Cooccurrence
        Equal to :func:`labelemb.cooccurrence` over the whole collection.
    """
    try:
        import dask
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("labelemb.dask needs dask: pip install 'labelemb[dask]'") from e
    split_every = check_int(split_every, "split_every", lo=2)
    if isinstance(collection, (str, os.PathLike)):
        collection = [collection]
    reader = None
    if isinstance(collection, (list, tuple)):
        if not collection:
            raise ValueError("collection is empty; pass a bag, a dataframe or file paths")
        if not all(isinstance(p, (str, os.PathLike)) for p in collection):
            raise TypeError("a list collection must hold file paths; wrap in-memory label "
                            "sets with dask.bag.from_sequence")
        reader = as_reader(collection, read_kwargs)
    elif isinstance(collection, LabelReader):
        reader = as_reader(collection, read_kwargs)
    elif not hasattr(collection, "to_delayed"):
        raise TypeError(f"collection has unsupported type {type(collection).__name__}; pass a "
                        "dask bag, a dask dataframe/series, a list of file paths or a "
                        "LabelReader")
    elif read_kwargs is not None:
        raise TypeError("read_kwargs applies to file paths; drop it for a dask collection")
    own = None
    if client is None:
        from distributed import Client, LocalCluster

        own = LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1,
                           processes=True, dashboard_address=":0")
        client = Client(own)
    try:
        if reader is not None:
            # Files: one task per worker thread, each streaming its share of the files
            # (contiguous, about equal sizes) into one partial count, so that only one
            # partial per task crosses a process boundary.
            if reader.progress:
                print(f"reading labels on the cluster: {reader.describe()}", file=sys.stderr)
            slots = max(1, sum(client.nthreads().values()))
            groups = _split_by_size(reader.paths, min(len(reader.paths), slots))
            parts = [dask.delayed(_count_files)(reader._subset(g), n_labels, num_threads)
                     for g in groups]
        else:
            parts = [dask.delayed(_count_partition)(d, n_labels, num_threads)
                     for d in collection.to_delayed()]
        last = client.gather(client.compute(_tree_reduce(parts, split_every)))
        result = _combine_all(last)
    finally:
        if own is not None:
            client.close()
            own.close()
    if result is None:
        raise ValueError("collection holds no samples")
    if reader is not None and result.label_names is not None:
        once = np.flatnonzero(result.label_counts == 1)
        reader._warn_misread((result.n_labels, len(once),
                              str(result.label_names[once[0]]) if len(once) else ""))
    if n_labels is not None and result.label_names is None:
        result = result._resized(n_labels)
    return result


def _split_by_size(paths, n_groups: int):
    """``paths`` cut into ``n_groups`` non-empty contiguous runs of about equal total file
    size: the j-th cut goes where the running size is nearest j / n_groups of the total."""
    sizes = [max(1, os.path.getsize(p)) if os.path.exists(p) else 1 for p in paths]
    cum = np.cumsum(sizes, dtype=np.float64)  # cum[i]: size of paths[:i + 1]
    cuts, prev = [], 0
    for j in range(1, n_groups):
        target = cum[-1] * j / n_groups
        i = int(np.argmin(np.abs(cum - target))) + 1  # cut before paths[i]
        i = min(max(i, prev + 1), len(paths) - (n_groups - j))
        cuts.append(i)
        prev = i
    bounds = [0, *cuts, len(paths)]
    return [list(paths[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def shipped_bytes(counts: Cooccurrence) -> int:
    """Bytes one partial count costs to send between processes (its pickle)."""
    return len(pickle.dumps(counts, protocol=pickle.HIGHEST_PROTOCOL))
