"""Tests for labelemb.formats: label-list text and the XC repository format."""

import gzip
import os

import numpy as np
import pytest
import scipy.sparse as sp

from labelemb.formats import read_label_list, read_xc, write_label_list, write_xc


def _same(a, b):
    assert a.shape == b.shape
    assert (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


@pytest.fixture
def labels():
    rows = [[0, 3], [], [1], [0, 1, 2, 3], []]
    data = np.zeros((5, 5), dtype=np.float32)
    for i, r in enumerate(rows):
        data[i, r] = 1
    return sp.csr_matrix(data)


# ------------------------------------------------------------------------ label list


@pytest.mark.parametrize("name", ["labels.txt", "labels.txt.gz"])
@pytest.mark.parametrize("delimiter", [",", " ", "\t"])
def test_label_list_ids_round_trip(tmp_path, labels, name, delimiter):
    path = tmp_path / name
    write_label_list(path, labels, delimiter=delimiter)
    got, names = read_label_list(path, delimiter=delimiter, n_labels=5)
    assert names is None
    assert got.dtype == np.float32
    _same(got, labels)
    if name.endswith(".gz"):
        with gzip.open(path, "rt") as fh:
            assert fh.read().splitlines()[0] == delimiter.join(["0", "3"])


def test_label_list_ids_width_from_data(tmp_path, labels):
    write_label_list(tmp_path / "a.txt", labels)
    got, _ = read_label_list(tmp_path / "a.txt")
    assert got.shape == (5, 4)  # column 4 is never used


def test_label_list_names_round_trip(tmp_path, labels):
    names = ["dog", "cat", "clip art", "zebra", "ant"]
    path = tmp_path / "names.txt.gz"
    write_label_list(path, labels, label_names=names)
    got, got_names = read_label_list(path)
    assert got_names == sorted(["dog", "cat", "clip art", "zebra"])  # 'ant' never used
    expect = [{names[j] for j in np.flatnonzero(row)} for row in labels.toarray()]
    found = [{got_names[j] for j in np.flatnonzero(row)} for row in got.toarray()]
    assert found == expect


def test_label_list_empty_sets_and_text(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("a, b\n\nb,b\n\n")
    m, names = read_label_list(path)
    assert names == ["a", "b"]
    assert m.toarray().tolist() == [[1, 1], [0, 0], [0, 1], [0, 0]]
    write_label_list(tmp_path / "y.txt", [[], [1, 0]])
    assert (tmp_path / "y.txt").read_text() == "\n0,1\n"


def test_label_list_names_vs_ids(tmp_path):
    path = tmp_path / "n.txt"
    path.write_text("10,2\n7\n")
    ids, names = read_label_list(path)
    assert names is None and ids.shape == (2, 11)
    as_names, names = read_label_list(path, ids=False)
    assert names == ["10", "2", "7"]
    assert as_names.toarray().tolist() == [[1, 1, 0], [0, 0, 1]]
    path.write_text("1,2\nfoo\n")
    _, names = read_label_list(path)
    assert names == ["1", "2", "foo"]
    with pytest.raises(ValueError, match=r"n\.txt:2: .*'foo'"):
        read_label_list(path, ids=True)
    path.write_text("1\n2\n9\n")
    with pytest.raises(ValueError, match=r"n\.txt:3: label id 9 >= n_labels=5"):
        read_label_list(path, n_labels=5)


def test_label_list_malformed(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a,b\nc,,d\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: empty label"):
        read_label_list(path)


def test_label_list_whitespace_delimiter_collapses(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("a  b\n\tc \n")
    m, names = read_label_list(path, delimiter=" ")
    assert names == ["a", "b", "c"]
    assert m.toarray().tolist() == [[1, 1, 0], [0, 0, 1]]
    m2, _ = read_label_list(path, delimiter=None)
    _same(m, m2)


def test_write_label_list_rejects_bad_names(tmp_path, labels):
    names = ["a", "b,c", "d", "e", "f"]
    with pytest.raises(ValueError, match="cannot be written"):
        write_label_list(tmp_path / "z.txt", labels, label_names=names)
    with pytest.raises(ValueError, match="has no name"):
        write_label_list(tmp_path / "z.txt", labels, label_names=["a"])
    assert not os.listdir(tmp_path)  # nothing left behind


def test_write_is_atomic_and_replaces(tmp_path, labels):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    write_label_list(path, labels)
    assert os.listdir(tmp_path) == ["out.txt"]
    assert path.read_text().splitlines()[0] == "0,3"


# ------------------------------------------------------------------------------- XC


def _features():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(5, 7)).astype(np.float32) * (rng.random((5, 7)) < 0.4)
    dense[2] = 0  # a sample with no features
    return sp.csr_matrix(dense)


@pytest.mark.parametrize("name", ["d.txt", "d.txt.gz"])
def test_xc_round_trip(tmp_path, labels, name):
    x = _features()
    write_xc(tmp_path / name, x, labels)
    fx, fy = read_xc(tmp_path / name)
    assert fx.dtype == np.float32 and fx.shape == (5, 7)
    assert fy.shape == (5, 5)
    np.testing.assert_array_equal(fx.toarray(), x.toarray())  # float32 exact
    _same(fy, labels)


def test_xc_text_layout(tmp_path):
    x = sp.csr_matrix(np.array([[0, 0.5, 0], [2, 0, 0], [0, 0, 0]], dtype=np.float32))
    write_xc(tmp_path / "t.txt", x, [[1, 0], [], [2]])
    assert (tmp_path / "t.txt").read_text() == "3 3 3\n0,1 1:0.5\n 0:2.0\n2\n"
    fx, fy = read_xc(tmp_path / "t.txt")
    assert fy.toarray().tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    np.testing.assert_array_equal(fx.toarray(), x.toarray())


def test_xc_reads_repository_style_lines(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("3 4 5\n4,1 0:1 3:0.25\n 2:1.5\n0\n")
    fx, fy = read_xc(path)
    assert fy.toarray().tolist() == [[0, 1, 0, 0, 1], [0] * 5, [1, 0, 0, 0, 0]]
    assert fx.toarray().tolist() == [[1, 0, 0, 0.25], [0, 0, 1.5, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("3 4\n", 1, "n_samples n_features n_labels"),
        ("", 1, "empty file"),
        ("2 4 5\n1 0:1\n1,x 0:1\n", 3, "bad label 'x'"),
        ("2 4 5\n1 0:1\n1 0=1\n", 3, "bad feature token"),
        ("2 4 5\n1 0:1\n1 0:abc\n", 3, "bad feature value"),
        ("2 4 5\n1 9:1\n1 0:1\n", 2, "feature 9 >= n_features=4"),
        ("2 4 5\n7 0:1\n1 0:1\n", 2, "label 7 >= n_labels=5"),
        ("3 4 5\n1 0:1\n1 0:1\n", 3, "found 2 sample lines"),
        ("1 4 5\n1 0:1\n1 0:1\n", 3, "more sample lines"),
    ],
)
def test_xc_malformed(tmp_path, text, line, what):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        read_xc(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}: ")
    assert what in msg


def test_write_xc_checks_rows(tmp_path):
    with pytest.raises(ValueError, match="rows"):
        write_xc(tmp_path / "x.txt", sp.csr_matrix((2, 3)), [[0]])
