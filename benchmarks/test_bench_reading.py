"""Reading a label file as a new user writes it: one sample per line, ids separated by spaces.

Full size: 1,000,000 samples over 20,000 ids (small: 20,000 over 2,000). With no option,
``labelemb.read_labels`` must detect the separator and give all L labels, with the same
counts as ``Y.T @ Y``; a comma delimiter given on the same file reads every line as one
name and warns. Timed against what a user would otherwise write: split the lines in
Python, ``sklearn.preprocessing.MultiLabelBinarizer(classes=range(L),
sparse_output=True)``, then ``Y.T @ Y``
in scipy.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from _util import compare

import labelemb
from labelemb import LabelFileWarning, read_labels


@pytest.fixture(scope="module")
def id_file(topic_1m, tmp_path_factory):
    Y = topic_1m
    path = str(tmp_path_factory.mktemp("reading") / "labels.txt")
    ind, ptr = Y.indices, Y.indptr
    with open(path, "w") as f:
        for a in range(0, Y.shape[0], 100_000):
            rows = range(a, min(a + 100_000, Y.shape[0]))
            f.write("".join(" ".join(map(str, ind[ptr[i]:ptr[i + 1]].tolist())) + "\n"
                            for i in rows))
    return Y, path


def test_space_separated_ids_read_with_no_option(benchmark, id_file):
    sklearn = pytest.importorskip("sklearn.preprocessing")
    Y, path = id_file
    n, L = Y.shape
    C = (Y.T @ Y).tocsr()

    counts = labelemb.cooccurrence(read_labels(path))
    assert counts.label_names is None and counts.n_labels == L
    np.testing.assert_array_equal(counts.label_counts, C.diagonal())
    assert (counts.full() != C).nnz == 0
    reader = read_labels(path)
    print(f"\n  {os.path.getsize(path) / 1e6:.1f} MB, {n} lines: {reader.describe()}; "
          f"{counts.n_labels} labels, counts equal to Y.T @ Y")
    with pytest.warns(LabelFileWarning, match="delimiter=' '") as caught:
        read_labels(path, delimiter=",")
    print(f"  given delimiter=',': {str(caught[0].message)[:160]}...")

    def labelemb_parse():  # the file to CSR chunks
        return sum(len(batch.indices) for batch in read_labels(path))

    def python_sklearn_parse():
        with open(path) as f:
            sets = [list(map(int, line.split())) for line in f]
        return sklearn.MultiLabelBinarizer(classes=range(L), sparse_output=True) \
            .fit_transform(sets)

    def labelemb_count():
        return labelemb.cooccurrence(read_labels(path))

    def python_sklearn_scipy_count():
        M = python_sklearn_parse()
        return (M.T @ M).tocsr()

    base = python_sklearn_scipy_count()
    assert base.shape == (L, L) and (base != C).nnz == 0
    assert labelemb_parse() == Y.nnz == python_sklearn_parse().nnz
    mb = round(os.path.getsize(path) / 1e6, 1)
    compare(f"parsing a space-separated id file n={n} L={L}",
            {"labelemb read_labels": labelemb_parse,
             "str.split + MultiLabelBinarizer": python_sklearn_parse},
            repeats=3, extra={"file MB": mb})
    compare(f"reading and counting a space-separated id file n={n} L={L}",
            {"labelemb read_labels + cooccurrence": labelemb_count,
             "str.split + MultiLabelBinarizer + Y.T @ Y": python_sklearn_scipy_count},
            repeats=3, extra={"file MB": mb})
    benchmark.pedantic(labelemb_count, rounds=1)
