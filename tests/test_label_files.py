"""Label-list text files read the same way by every reader: separators, ids or names,
compression, encoding, damaged input, and the warning on a likely misread."""

import bz2
import gzip
import lzma
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import labelemb
from labelemb import LabelFileWarning, cooccurrence, read_labels
from labelemb.cli import main as cli_main
from labelemb.formats import read_label_list, read_xc

OPENERS = {"": open, ".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _sets(n=1500, L=80, seed=0):
    Y = labelemb.make_topic_labels(n, L, seed=seed).labels
    return Y, [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist() for i in range(n)]


def _write(path, rows, sep, suffix=""):
    with OPENERS[suffix](str(path), "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(sep.join(r) + "\n")


def _columns(m, names):
    """Label sets of a CSR matrix as sets of names (or ids)."""
    m = sp.csr_matrix(m)
    return [{names[j] if names is not None else int(j)
             for j in m.indices[m.indptr[i]:m.indptr[i + 1]]} for i in range(m.shape[0])]


# ------------------------------------------------------------------------ separators


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("sep", [",", "\t", ";", " "])
@pytest.mark.parametrize("kind", ["ids", "names"])
def test_each_separator_is_detected_and_read_right(tmp_path, sep, kind, suffix):
    Y, sets = _sets()
    rows = [[str(j) if kind == "ids" else f"tag-{j}" for j in s] for s in sets]
    path = tmp_path / f"labels.txt{suffix}"
    _write(path, rows, sep, suffix)

    reader = read_labels(path, chunk_size=333)
    assert reader.delimiter == sep and reader.delimiter_detected and reader.kind == kind
    got = cooccurrence(reader, n_labels=Y.shape[1] if kind == "ids" else None)
    want = cooccurrence(Y if kind == "ids" else rows)
    assert got == want

    m, names = read_label_list(path)
    assert (names is None) == (kind == "ids")
    assert _columns(m, names) == [set(r) if kind == "names" else set(map(int, r))
                                  for r in rows]


@pytest.mark.parametrize("suffix", [".bz2", ".xz"])
def test_other_compressions(tmp_path, suffix):
    Y, sets = _sets(300, 40, seed=1)
    path = tmp_path / f"l.txt{suffix}"
    _write(path, [[str(j) for j in s] for s in sets], "\t", suffix)
    assert cooccurrence(read_labels(path), n_labels=40) == cooccurrence(Y)
    # No suffix: the magic bytes say how the file is compressed.
    bare = tmp_path / "bare"
    bare.write_bytes(path.read_bytes())
    assert cooccurrence(read_labels(bare), n_labels=40) == cooccurrence(Y)


def test_space_separated_ids_scenario_needs_no_option(tmp_path):
    # The scenario of 1,000,000 samples over 20,000 ids at 1/50 of the size (the benchmark
    # runs the full one): every line "12 845 3", read with no option at all.
    n, L = 20_000, 2_000
    Y = labelemb.make_topic_labels(n, L, seed=5).labels
    path = tmp_path / "ids.txt"
    with open(path, "w") as f:
        for i in range(n):
            f.write(" ".join(map(str, Y.indices[Y.indptr[i]:Y.indptr[i + 1]])) + "\n")
    counts = cooccurrence(read_labels(path))
    assert counts.n_labels == L and counts.label_names is None
    C = (Y.T @ Y).tocsr()
    np.testing.assert_array_equal(counts.label_counts, C.diagonal())
    assert (counts.full() != C).nnz == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)  # a few ids never occur
        emb = labelemb.fit_embeddings(path, dim=8, seed=0)
    assert emb.vectors.shape == (L, 8) and emb.label_names is None


def test_an_explicit_delimiter_wins(tmp_path):
    path = tmp_path / "n.txt"
    path.write_text("clip art,new york\nnew york,sea\nclip art\n")
    for kw in ({"delimiter": ","}, {}):  # given, and detected (commas beat spaces)
        reader = read_labels(path, **kw)
        assert reader.delimiter == ","
        assert cooccurrence(reader).label_names == ["clip art", "new york", "sea"]
        _, names = read_label_list(path, **kw)
        assert names == ["clip art", "new york", "sea"]
    reader = read_labels(path, delimiter=" ")
    assert not reader.delimiter_detected
    assert sorted(cooccurrence(reader).label_names) == ["art", "art,new", "clip", "new", "york",
                                                        "york,sea"]


def test_indented_lines_do_not_make_a_tab_file(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("a  b\n\tc \n")
    assert read_labels(path).delimiter == " "
    m, names = read_label_list(path)
    assert names == ["a", "b", "c"] and m.toarray().tolist() == [[1, 1, 0], [0, 0, 1]]


def test_the_choice_is_reported_with_progress(tmp_path, capsys):
    path = tmp_path / "p.txt"
    path.write_text("1 2\n2 3\n")
    reader = read_labels(path, progress=True)
    cooccurrence(reader)
    err = capsys.readouterr().err
    assert "label ids separated by whitespace (detected" in err
    assert "commas (given)" in read_labels(path, delimiter=",", labels="ids").describe()


def test_delimiter_argument_checked(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("a\n")
    with pytest.raises(TypeError, match="delimiter must be a str"):
        read_labels(path, delimiter=1)
    with pytest.raises(ValueError, match="delimiter must be a non-empty"):
        read_label_list(path, delimiter="")


# ------------------------------------------------------------------------ misread warning


def _space_ids_file(path, n=400, L=300, seed=2):
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(" ".join(map(str, rng.choice(L, size=6, replace=False))) + "\n")


def test_warning_names_with_separators_inside(tmp_path):
    path = tmp_path / "ids.txt"
    _space_ids_file(path)
    with pytest.warns(LabelFileWarning, match=r"one label that contains whitespace.*"
                                              r"delimiter=' '"):
        reader = read_labels(path, delimiter=",")
    assert reader.kind == "names"
    with pytest.warns(LabelFileWarning, match="given separator: commas"):
        read_label_list(path, delimiter=",")
    # A semicolon file read as tab-separated: the other candidate is named.
    semi = tmp_path / "semi.txt"
    semi.write_text("".join(f"x{i};y{i % 7}\n" for i in range(50)))
    with pytest.warns(LabelFileWarning, match="delimiter=';'"):
        read_labels(semi, delimiter="\t")


def test_warning_almost_every_label_once(tmp_path):
    # Labels separated by "|", not a candidate: each line is one name, each seen once.
    path = tmp_path / "pipes.txt"
    rng = np.random.default_rng(3)
    path.write_text("".join("|".join(f"t{j}" for j in rng.choice(500, 4, replace=False)) + "\n"
                            for _ in range(300)))
    reader = read_labels(path)  # nothing to say from the first lines alone
    assert reader.kind == "names"
    with pytest.warns(LabelFileWarning, match=r"names occur only once.*delimiter="):
        cooccurrence(reader)
    with pytest.warns(LabelFileWarning, match="occur only once"):
        read_label_list(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        names = {t for line in path.read_text().splitlines() for t in line.split("|")}
        assert cooccurrence(read_labels(path, delimiter="|")).n_labels == len(names) > 400


def _zipf_file(path, names, n, per_line, seed):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(names) + 1) ** 1.1
    p /= p.sum()
    with open(path, "w") as f:
        for _ in range(n):
            k = rng.integers(1, per_line + 1)
            f.write(",".join(names[j] for j in sorted(set(rng.choice(len(names), k, p=p))))
                    + "\n")


@pytest.mark.parametrize("style", ["debtags", "wordnet", "long tail"])
def test_quiet_on_realistic_label_files(tmp_path, style):
    rng = np.random.default_rng(4)
    if style == "debtags":  # facet::tag, with hyphens, plus signs, dots
        facets = ["role", "implemented-in", "works-with", "uitoolkit", "interface", "use"]
        tags = ["program", "c++", "text", "gtk", "x11", "shared-lib", "python3.11",
                "commandline", "data:image", "TODO"]
        names = [f"{f}::{t}" for f in facets for t in tags]
        lines, per = 3000, 6
    elif style == "wordnet":  # synset names: dots, underscores, hyphens
        names = [f"{w}.n.{k:02d}" for w in ("entity", "physical_entity", "whole-body",
                                            "abstraction", "dog", "canine", "carnivore",
                                            "object", "living_thing", "organism")
                 for k in range(1, 40)]
        lines, per = 3000, 9
    else:  # many labels, half of them seen once (as Debian dependencies)
        names = [f"lib{i}-dev" for i in range(3000)]
        lines, per = 1500, 5
    path = tmp_path / f"{style}.txt"
    _zipf_file(path, names, lines, per, int(rng.integers(100)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kw in ({}, {"delimiter": ","}):
            reader = read_labels(path, chunk_size=500, **kw)
            assert reader.delimiter == "," and reader.kind == "names"
            cooccurrence(reader)
            read_label_list(path, **kw)
    if style == "long tail":
        once = (np.asarray(read_label_list(path)[0].sum(0)).ravel() == 1).mean()
        assert 0.3 < once < 0.9  # a long tail, below the warning's bar


def _real_label_sets(name):
    """(labels, label_names) of a real data set, or a skip when it is not on this machine."""
    from labelemb import datasets

    try:
        if name == "debtags":  # acquired from Debian's archive, then cached
            d = datasets.debtags.load_debtags()
            return d.labels, d.label_names
        if name == "wordnet":  # embedded in the package; its loader builds TF-IDF too
            pytest.importorskip("sklearn")
            d = datasets.wordnet.load_wordnet()
        else:
            d = datasets.debian_deps.load_debian_deps()
    except (OSError, ValueError, RuntimeError) as e:
        pytest.skip(f"{name} is not available here: {e}")
    return sp.vstack([d.Y_train, d.Y_valid, d.Y_test]).tocsr(), d.label_names


@pytest.mark.parametrize("name", ["debtags", "wordnet", "debian-deps"])
def test_quiet_on_real_label_files(tmp_path, name):
    Y, label_names = _real_label_sets(name)
    path = tmp_path / f"{name}.txt"
    labelemb.formats.write_label_list(path, Y, label_names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a LabelFileWarning fails the test
        reader = read_labels(path)
        assert reader.delimiter == "," and reader.kind == "names"
        counts = cooccurrence(reader)
        m, names = read_label_list(path)
    used = np.flatnonzero(np.asarray(Y.sum(0)).ravel())
    assert counts.n_labels == len(used) == len(names)
    assert sorted(counts.label_names) == names == sorted(label_names[j] for j in used)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_lines_longer_than_a_block(tmp_path, suffix):
    from labelemb._textfile import line_blocks

    want = ["a" * 100, "b,c", "", "\u00e9" * 40, "d" * 250]
    path = tmp_path / f"long.txt{suffix}"
    with OPENERS[suffix](str(path), "wt", encoding="utf-8", newline="") as f:
        f.write("\r\n".join(want))  # Windows line ends, no final one
    got, numbers = [], []
    for lineno, block, _ in line_blocks(str(path), 16):
        numbers.append((lineno, len(block)))
        got += block
    assert got == want
    assert all(a + n == b for (a, n), (b, _) in zip(numbers, numbers[1:]))


# ------------------------------------------------------------------------ damaged input


def _both(path, **kw):
    """Read a file with both readers (the streaming one to the end)."""
    yield lambda: cooccurrence(read_labels(path, **kw))
    yield lambda: read_label_list(path, **{k: v for k, v in kw.items() if k != "labels"})


def test_bom_does_not_turn_ids_into_names(tmp_path, capsys):
    path = tmp_path / "b.txt"
    path.write_bytes(b"\xef\xbb\xbf0,1\n1,2\n0,2\n")
    counts = cooccurrence(read_labels(path))
    assert counts.label_names is None and counts.n_labels == 3
    m, names = read_label_list(path)
    assert names is None and m.toarray().tolist() == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    named = tmp_path / "n.txt.gz"
    with gzip.open(named, "wb") as f:
        f.write(b"\xef\xbb\xbfsky,sea\r\nsea\r\n")
    assert read_label_list(named)[1] == ["sea", "sky"]
    assert cooccurrence(read_labels(named)).label_names == ["sea", "sky"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)  # 3 labels, dim 1
        assert cli_main(["fit", str(path), "--dim", "1", "-o", str(tmp_path / "o.npz"),
                         "--no-progress"]) == 0
    assert "L=3" in capsys.readouterr().out
    assert labelemb.LabelEmbedding.load(tmp_path / "o.npz").label_names is None


def test_utf8_errors_at_path_and_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"a,b\nc,d\ncaf\xe9,e\n")
    for read in _both(path):
        with pytest.raises(ValueError, match=r"latin\.txt:3: not UTF-8 text \(byte 0xe9 at "
                                             r"column 4\)"):
            read()


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_compressed_files(tmp_path, suffix, damage):
    rows = [[str(j) for j in range(i % 7, i % 7 + 3)] for i in range(3000)]
    path = tmp_path / f"l.txt{suffix}"
    _write(path, rows, ",", suffix)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[:len(data) // 2]
    else:
        mid = len(data) // 2
        data[mid:mid + 16] = bytes(16)
    path.write_bytes(bytes(data))
    for read in _both(path):
        with pytest.raises(ValueError, match=rf"l\.txt\{suffix}: the \w+ data is truncated or "
                                             "corrupt"):
            read()


def test_ids_beyond_the_index_dtype(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text(f"1,2\n3,{2**63}\n")
    with pytest.raises(ValueError, match=r"big\.txt:2: label id 9223372036854775808 is too "
                                         "large"):
        cooccurrence(read_labels(path))
    path.write_text("1,2\n3,99999999999999999999999999999999999999\n")
    with pytest.raises(ValueError, match=r"big\.txt:2: label id 9{20}"):
        cooccurrence(read_labels(path))
    path.write_text(f"1\n\n{2**31}\n")
    with pytest.raises(ValueError, match=r"big\.txt:3: label id 2147483648 is too large"):
        read_label_list(path)
    with pytest.raises(ValueError, match=r"big\.txt:3: label id 2147483648 is too large"):
        _read_like_the_cli(path)


def _read_like_the_cli(path):
    """The fit command's reading step, without the CLI's error printing."""
    from labelemb.cli import _read_label_file

    return _read_label_file(str(path), None)


def test_digits_that_are_not_ascii(tmp_path):
    # "²".isdigit() is True but int("²") fails: it is a name, never an id.
    path = tmp_path / "sup.txt"
    path.write_text("1,\u00b2\n2\n")
    assert cooccurrence(read_labels(path)).label_names == ["1", "2", "\u00b2"]
    assert read_label_list(path)[1] == ["1", "2", "\u00b2"]
    with pytest.raises(ValueError, match=r"sup\.txt:1: label '\u00b2' is not an integer id"):
        cooccurrence(read_labels(path, labels="ids"))
    with pytest.raises(ValueError, match=r"sup\.txt:1: label '\u00b2' is not an integer id"):
        read_label_list(path, ids=True)
    # Past the lines that decided "ids": reported where it is, not as StopIteration.
    path.write_text("1,2\n" * 1500 + "3,\u0661\n")
    with pytest.raises(ValueError, match=r"sup\.txt:1501: label '\u0661' is not an integer"):
        cooccurrence(read_labels(path, chunk_size=100))


def test_negative_and_empty_labels(tmp_path):
    path = tmp_path / "neg.txt"
    path.write_text("0,1\n2,-1\n")
    for read in _both(path):
        with pytest.raises(ValueError, match=r"neg\.txt:2: negative label id -1"):
            read()
    path.write_text("a,b\nc,,d\n")
    for read in _both(path):
        with pytest.raises(ValueError, match=r"neg\.txt:2: empty label in 'c,,d'"):
            read()


def test_damaged_npz_names_the_file(tmp_path):
    path = tmp_path / "y.npz"
    sp.save_npz(path, sp.csr_matrix(np.eye(4, dtype=np.float32)))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"y\.npz: .*scipy sparse \.npz"):
        cooccurrence(read_labels(path))


def test_xc_header_and_values(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text(f"1 3 {2**40}\n0 0:1.0\n")
    with pytest.raises(ValueError, match=r"x\.txt:1: n_features and n_labels must be below"):
        read_xc(path)
    path.write_text("2 3 2\n0 0:1.0\n1 2:nan\n")
    with pytest.raises(ValueError, match=r"x\.txt:3: feature value in '2:nan' is not a finite"):
        read_xc(path)
    path.write_text("1 3 2\n0 1:1e39\n")
    with pytest.raises(ValueError, match=r"x\.txt:2: .*not a finite float32"):
        read_xc(path)
    gz = tmp_path / "x.txt.gz"
    with gzip.open(gz, "wt") as f:
        f.write("1 3 2\n0,1 1:0.5\n")
    X, Y = read_xc(gz)
    assert Y.toarray().tolist() == [[1, 1]] and X.toarray().tolist() == [[0, 0.5, 0]]
    gz.write_bytes(gz.read_bytes()[:-6])
    with pytest.raises(ValueError, match=r"x\.txt\.gz: the gzip data is truncated"):
        read_xc(gz)


# ------------------------------------------------------------------------ paths as labels


def test_fit_embeddings_reads_paths_with_options(tmp_path):
    Y, sets = _sets(800, 50, seed=6)
    path = tmp_path / "t.tsv"
    _write(path, [[f"n{j}" for j in s] for s in sets], "\t")
    want = labelemb.fit_embeddings([[f"n{j}" for j in s] for s in sets], dim=6, seed=1)
    for labels, kw in ((path, {}), ([str(path)], {"read_kwargs": {"delimiter": "\t"}}),
                       (read_labels(path, chunk_size=64), {})):
        got = labelemb.fit_embeddings(labels, dim=6, seed=1, **kw)
        assert got.label_names == want.label_names
        np.testing.assert_array_equal(got.vectors, want.vectors)
    with pytest.raises(TypeError, match="read_kwargs applies to label files"):
        labelemb.fit_embeddings(Y, dim=4, read_kwargs={"delimiter": ","})
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['sep'\]"):
        labelemb.fit_embeddings(path, dim=4, read_kwargs={"sep": ","})
    with pytest.raises(ValueError, match="give those options to read_labels"):
        labelemb.fit_embeddings(read_labels(path), dim=4, read_kwargs={"delimiter": ","})
    with pytest.raises(FileNotFoundError, match=r"no such file 'cat' \(strings are read as"):
        labelemb.fit_embeddings(["cat", "dog"], dim=1)


# ------------------------------------------------------------------------ the fast id parser


def _slow_ids(lines, delimiter):
    from labelemb import _textfile as tf

    toks = [tf.split(line, delimiter) for line in lines]
    if any("" in t for t in toks) or not all(tf.is_id(x) for t in toks for x in t):
        return None
    return [len(t) for t in toks], [int(x) for t in toks for x in t]


@pytest.mark.parametrize("delimiter", [" ", ",", "\t", ";"])
def test_fast_id_parser_agrees_with_tokens(delimiter):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from labelemb._textfile import fast_ids

    line = st.text(alphabet=st.sampled_from(list("0123456789") * 3 + [" ", "\t", ",", ";", "x",
                                                                      "-", "\u00b2"]),
                   max_size=30)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(line, max_size=8))
    def check(lines):
        fast, slow = fast_ids(lines, delimiter), _slow_ids(lines, delimiter)
        if slow is None:
            assert fast is None
        elif all(len(x) <= 18 for line in lines for x in line.split()):
            assert fast is not None
            assert fast[0].tolist() == slow[0] and fast[1].tolist() == slow[1]

    check()
