import gzip
import os
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import labelemb
from labelemb import MemoryBudgetError, cooccurrence, read_labels


def _sets(n=3000, L=120, seed=0):
    Y = labelemb.make_topic_labels(n, L, seed=seed).labels
    return Y, [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist() for i in range(n)]


def _write_text(path, sets, names=True, opener=open):
    with opener(path, "wt") as f:
        for s in sets:
            f.write(",".join(f"tag{x:04d}" if names else str(x) for x in s) + "\n")


@pytest.mark.parametrize("gz", [False, True])
def test_text_names_match_in_memory(tmp_path, gz):
    Y, sets = _sets()
    path = str(tmp_path / ("tags.txt.gz" if gz else "tags.txt"))
    _write_text(path, sets, opener=gzip.open if gz else open)
    got = cooccurrence(read_labels(path, chunk_size=500))
    want = cooccurrence([[f"tag{x:04d}" for x in s] for s in sets])
    assert got == want


def test_text_ids_and_several_files(tmp_path):
    Y, sets = _sets(seed=1)
    p1, p2 = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    _write_text(p1, sets[:1000], names=False)
    _write_text(p2, sets[1000:], names=False)
    reader = read_labels([p1, p2], chunk_size=333)
    assert cooccurrence(reader, n_labels=Y.shape[1]) == cooccurrence(Y)
    # re-iterable
    assert cooccurrence(reader, n_labels=Y.shape[1]) == cooccurrence(Y)


def test_npz_and_parquet(tmp_path):
    Y, sets = _sets(seed=2)
    p = str(tmp_path / "y.npz")
    sp.save_npz(p, Y)
    assert cooccurrence(read_labels(p, chunk_size=700)) == cooccurrence(Y)
    pa = pytest.importorskip("pyarrow", exc_type=ImportError)
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"labels": sets}), str(tmp_path / "y.parquet"), row_group_size=500)
    got = cooccurrence(read_labels(str(tmp_path / "y.parquet"), chunk_size=400),
                       n_labels=Y.shape[1])
    assert got == cooccurrence(Y)
    names = [[f"n{x}" for x in s] for s in sets]
    pq.write_table(pa.table({"tags": names}), str(tmp_path / "n.parquet"))
    got = cooccurrence(read_labels(str(tmp_path / "n.parquet"), column="tags", chunk_size=999))
    assert got == cooccurrence(names)


def test_file_larger_than_allowed_memory(tmp_path):
    # 200k samples streamed in chunks of 1,000: the Python heap never holds more than a
    # small fraction of the file.
    rng = np.random.default_rng(0)
    path = str(tmp_path / "big.txt")
    n, L = 200_000, 150
    Y = labelemb.make_topic_labels(n, L, seed=3).labels
    with open(path, "w") as f:
        for i in range(n):
            f.write(",".join(f"label{x:03d}" for x in Y.indices[Y.indptr[i]:Y.indptr[i + 1]]))
            f.write("\n")
    size = os.path.getsize(path)
    del rng
    tracemalloc.start()
    try:
        got = cooccurrence(read_labels(path, chunk_size=1000), max_memory=size // 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size / 4, (peak, size)
    want = cooccurrence(Y)
    assert (got.full() != want.full()).nnz == 0
    assert got.n_samples == n


def test_memory_budget_error_before_counting():
    Y = labelemb.make_topic_labels(2000, 300, seed=4).labels
    with pytest.raises(MemoryBudgetError, match="min_count|chunks|dask"):
        cooccurrence(Y, max_memory=10_000)
    with pytest.raises(ValueError, match="max_memory"):
        cooccurrence(Y, max_memory=-1)
    assert cooccurrence(Y, max_memory=10**9).n_samples == 2000


def test_reader_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_labels(str(tmp_path / "missing.txt"))
    p = tmp_path / "x.txt"
    p.write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match="not an integer id"):
        cooccurrence(read_labels(str(p), labels="ids"))
    with pytest.raises(ValueError, match="format"):
        read_labels(str(p), format="csv")
    with pytest.raises(ValueError, match="chunk_size"):
        read_labels(str(p), chunk_size=0)
