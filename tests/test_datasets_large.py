"""Tests for the large-label text sets: WordNet nouns, Debian dependencies, the TextDataset form.

The loaders run on a few hand-written ``data.noun`` / ``index.noun`` lines and apt
records, with a fake command runner in place of apt and dpkg-deb: they need no network
and no apt. One test loads the embedded WordNet copy with sockets disabled.
"""

import os
import socket
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("sklearn", reason="the text data sets need scikit-learn (extra 'data')")

from labelemb.datasets import (  # noqa: E402
    TextDataset,
    _debian,
    as_text_dataset,
    debian_deps,
    debtags,
    load_debian_deps,
    load_wordnet,
    text,
    wordnet,
)

# ---------------------------------------------------------------------------- fixtures


def _lines(lines):
    """The lines of a WordNet file: each ends in two spaces, as in the real files."""
    return "".join(line + "  \n" for line in lines)


DATA_NOUN = _lines([
    "  1 This software and database is being provided to you, the LICENSEE, by",
    "  2 Princeton University under the following license.",
    "00001740 03 n 01 entity 0 001 ~ 00002000 n 0000 | that which exists",
    "00002000 03 n 01 animal 0 002 @ 00001740 n 0000 ~ 00003000 n 0000 "
    "| a living organism that moves",
    "00003000 05 n 02 dog 0 domestic_dog 0 003 @ 00002000 n 0000 + 01234567 v 0101 "
    "~ 00005000 n 0000 "
    '| a domesticated canid; "the dog barked"',
    "00004000 05 n 01 cat 0 001 @ 00002000 n 0000 | a feline pet",
    "00005000 18 n 01 Rex 0 001 @i 00003000 n 0000 | a famous dog",
    "00006000 03 n 01 plant 0 001 @ 00001740 n 0000 | a living organism without locomotion",
    "00007000 20 n 01 tree 0 001 @ 00006000 n 0000 | a tall perennial woody plant",
    "00008000 18 n 02 frump 0 Dog 0 001 @ 00009000 n 0000 | a dull unattractive woman",
    "00009000 03 n 01 person 0 001 @ 00001740 n 0000 | a human being",
    "00010000 05 n 01 pet_dog 0 002 @ 00003000 n 0000 @ 00011000 n 0000 | a dog kept as a pet",
    "00011000 03 n 01 pet 0 001 @ 00002000 n 0000 | a domesticated animal kept for companionship",
    "00012000 18 n 02 frumpy_person 0 frump 0 001 @ 00009000 n 0000 | someone frumpy",
])

INDEX_NOUN = _lines([
    "  1 This software and database is being provided to you, the LICENSEE, by",
    "dog n 2 1 @ 2 1 00003000 00008000",
    "frump n 2 1 @ 2 0 00012000 00008000",
    "entity n 1 1 ~ 1 1 00001740",
])

PARENTS = {  # the direct hypernyms above, by first lemma
    "entity": [], "animal": ["entity"], "dog": ["animal"], "cat": ["animal"],
    "Rex": ["dog"], "plant": ["entity"], "tree": ["plant"], "frump": ["person"],
    "person": ["entity"], "pet_dog": ["dog", "pet"], "pet": ["animal"],
    "frumpy_person": ["person"],
}


def ancestors_by_hand(name):
    out, todo = set(), list(PARENTS[name])
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(PARENTS[p])
    return out


@pytest.fixture(scope="module")
def small_corpus():
    return wordnet.corpus_from_arrays(wordnet.build_wordnet(DATA_NOUN, INDEX_NOUN))


def random_corpus(n=600, n_labels=40, n_groups=150, seed=0):
    """Texts whose words name their labels, in random groups; a shared word 'common'."""
    rng = np.random.default_rng(seed)
    rows, cols, texts = [], [], []
    for i in range(n):
        labs = np.unique(rng.integers(0, n_labels, size=rng.integers(1, 4)))
        # label 0 is rare (a handful of samples) so min_count changes the label set
        labs = labs[(labs != 0) | (rng.random() < 0.02)]
        if not len(labs):
            labs = np.array([1])
        rows += [i] * len(labs)
        cols += list(labs)
        texts.append("common " + " ".join(f"word{j}" for j in labs))
    labels = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n_labels))
    group_names = [f"g{k:04d}" for k in range(n_groups)]
    return text.LabelledTexts(
        texts=texts, labels=labels, label_names=[f"L{j:02d}" for j in range(n_labels)],
        ids=[f"s{i}" for i in range(n)], groups=rng.integers(0, n_groups, n).astype(np.int32),
        group_names=group_names, source="random fixture 1.0",
    )


# ----------------------------------------------------------------------- wordnet parsing


def test_parse_data_noun_fields_and_pointers():
    recs = list(wordnet.parse_data_noun(DATA_NOUN))
    assert len(recs) == 12  # licence lines skipped
    off, lemmas, parents, gloss = recs[2]
    assert (off, lemmas, parents) == ("00003000", ["dog", "domestic_dog"], ["00002000"])
    assert gloss == 'a domesticated canid; "the dog barked"'
    assert recs[4][2] == ["00003000"]  # @i instance hypernym
    assert recs[9][2] == ["00003000", "00011000"]
    assert recs[0][2] == []  # ~ (hyponym) is not a hypernym
    with pytest.raises(ValueError, match="line 2"):
        list(wordnet.parse_data_noun("00001740 03 n 01 entity 0 000 | x\n00002 03 n 05 a 0 |"))


def test_synset_names_use_index_sense_numbers(small_corpus):
    names = dict(zip([t.split(":")[0] for t in small_corpus.texts], small_corpus.ids))
    assert names["dog, domestic dog"] == "dog.n.01"
    assert names["frump, Dog"] == "frump.n.02"
    assert names["frumpy person, frump"] == "frumpy_person.n.00012000"  # not in the index
    assert names["entity"] == "entity.n.01"
    assert names["Rex"] == "rex.n.00005000"


def test_hypernym_closure_matches_a_search_by_hand(small_corpus):
    first = {t.split(":")[0].split(", ")[0].replace(" ", "_"): i
             for i, t in enumerate(small_corpus.texts)}
    name_of = {small_corpus.ids[i]: n for n, i in first.items()}
    for name, i in first.items():
        got = {name_of[small_corpus.label_names[j]] for j in small_corpus.labels[i].indices}
        assert got == ancestors_by_hand(name), name
    # labels: every synset that is someone's ancestor, sorted by name; leaves are not labels
    assert small_corpus.label_names == sorted(small_corpus.label_names)
    assert {name_of[n] for n in small_corpus.label_names} == {
        "entity", "animal", "dog", "plant", "person", "pet"}
    assert small_corpus.labels.dtype == np.float32 and np.all(small_corpus.labels.data == 1)


def test_hypernym_closure_random_dag_and_cycle():
    rng = np.random.default_rng(1)
    n = 60
    parents = sp.lil_matrix((n, n), dtype=np.float32)
    for i in range(1, n):
        for p in rng.choice(i, size=min(i, rng.integers(1, 3)), replace=False):
            parents[i, p] = 1
    dense = parents.toarray() > 0
    reach = dense.copy()
    for _ in range(n):
        reach = reach | ((reach.astype(int) @ dense.astype(int)) > 0)
    got = wordnet.hypernym_closure(parents.tocsr())
    assert np.array_equal(got.toarray() > 0, reach)
    cyc = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [1, 2, 0])), shape=(3, 3))
    with pytest.raises(ValueError, match="cycle"):
        wordnet.hypernym_closure(cyc)


def test_lemma_groups_are_transitive_and_case_blind():
    groups, names = wordnet.lemma_groups(
        [["dog", "domestic_dog"], ["frump", "Dog"], ["frumpy_person", "frump"], ["cat"]])
    assert groups[0] == groups[1] == groups[2] != groups[3]
    assert names == sorted(names) and names[groups[0]] == "dog" and names[groups[3]] == "cat"


def test_wordnet_file_round_trip_and_format_check(tmp_path):
    arrays = wordnet.build_wordnet(DATA_NOUN, INDEX_NOUN, {"source_version": "9.9"})
    path = str(tmp_path / "wn.npz")
    wordnet.write_wordnet_file(path, arrays)
    back = wordnet.read_wordnet_file(path)
    assert set(back) == set(arrays)
    for k in arrays:
        assert np.array_equal(back[k], arrays[k]), k
    arrays["format_version"] = np.array("0")
    wordnet.write_wordnet_file(path, arrays)
    with pytest.raises(ValueError, match="format version"):
        wordnet.read_wordnet_file(path)


def test_build_wordnet_rejects_a_dangling_hypernym():
    with pytest.raises(ValueError, match="00000099"):
        wordnet.build_wordnet("00000001 03 n 01 a 0 001 @ 00000099 n 0000 | x\n")


# ----------------------------------------------------------------- the TextDataset form


def part_of_rows(ds):
    return {"train": ds.groups_train, "valid": ds.groups_valid, "test": ds.groups_test}


def test_split_is_by_group_and_covers_every_labelled_sample():
    corpus = random_corpus()
    ds = text.make_text_dataset(corpus, min_count=0, valid_fraction=0.2, test_fraction=0.25)
    g = part_of_rows(ds)
    assert not set(g["train"]) & set(g["test"])
    assert not set(g["train"]) & set(g["valid"])
    assert not set(g["valid"]) & set(g["test"])
    ids = ds.ids_train + ds.ids_valid + ds.ids_test
    assert sorted(ids) == sorted(corpus.ids)  # min_count=0: nothing dropped
    n = corpus.n_samples
    assert 0.12 < len(ds.ids_test) / n < 0.38
    assert 0.08 < len(ds.ids_valid) / (n - len(ds.ids_test)) < 0.32
    # each row is the corpus row of its id
    row = {s: i for i, s in enumerate(corpus.ids)}
    for ids_, y, texts in ((ds.ids_train, ds.Y_train, ds.texts_train),
                           (ds.ids_test, ds.Y_test, ds.texts_test)):
        rows = [row[s] for s in ids_]
        assert (y != corpus.labels[rows]).nnz == 0
        assert texts == [corpus.texts[i] for i in rows]
    # deterministic
    again = text.make_text_dataset(corpus, min_count=0, valid_fraction=0.2, test_fraction=0.25)
    assert again.ids_test == ds.ids_test and again.ids_valid == ds.ids_valid


def test_valid_fraction_zero_gives_an_empty_part_with_the_right_columns():
    ds = text.make_text_dataset(random_corpus(), valid_fraction=0.0)
    assert ds.X_valid.shape == (0, ds.n_features) and ds.Y_valid.shape == (0, ds.n_labels)
    assert ds.texts_valid == [] and ds.groups_valid.shape == (0,)


def test_min_count_counts_training_samples_only():
    corpus = random_corpus()
    full = text.make_text_dataset(corpus, min_count=0)
    assert full.label_names == corpus.label_names
    train_counts = np.asarray(full.Y_train.sum(axis=0)).ravel()
    for m in (1, 5, 12):
        ds = text.make_text_dataset(corpus, min_count=m)
        expect = [n for n, c in zip(corpus.label_names, train_counts) if c >= m]
        assert ds.label_names == expect
        assert np.asarray(ds.Y_train.sum(axis=0)).ravel().min() >= m
        for y in (ds.Y_train, ds.Y_valid, ds.Y_test):
            assert y.shape[1] == len(expect) and sp.isspmatrix_csr(y)
            assert y.dtype == np.float32
            assert np.diff(y.indptr).min() >= 1  # samples left without a label are dropped
    assert "L00" in full.label_names and "L00" not in text.make_text_dataset(
        corpus, min_count=12).label_names


def test_max_label_fraction_drops_frequent_labels(small_corpus):
    ds = text.make_text_dataset(small_corpus, min_count=0, test_fraction=0.0,
                                valid_fraction=0.0, tfidf={"min_df": 1, "max_df": 1.0})
    capped = text.make_text_dataset(small_corpus, min_count=0, test_fraction=0.0,
                                    valid_fraction=0.0, max_label_fraction=0.5,
                                    tfidf={"min_df": 1, "max_df": 1.0})
    assert "entity.n.01" in ds.label_names and "entity.n.01" not in capped.label_names
    counts = np.asarray(capped.Y_train.sum(axis=0)).ravel()
    full = np.asarray(ds.Y_train.sum(axis=0)).ravel()  # the fraction is of all training rows
    assert counts.max() <= 0.5 * ds.Y_train.shape[0]
    assert capped.label_names == [n for n, c in zip(ds.label_names, full)
                                  if c <= 0.5 * ds.Y_train.shape[0]]


def test_tfidf_is_fitted_on_the_training_texts_only():
    corpus = random_corpus()
    corpus.texts = list(corpus.texts)
    ds0 = text.make_text_dataset(corpus, min_count=0)
    test_ids = set(ds0.ids_test)
    for i, s in enumerate(corpus.ids):  # a word in every test text, twice, and nowhere else
        if s in test_ids:
            corpus.texts[i] += " zebraword zebraword"
    ds = text.make_text_dataset(corpus, min_count=0)
    assert ds.ids_test == ds0.ids_test
    assert "zebraword" not in ds.feature_names
    assert ds.feature_names == ds0.feature_names
    assert (ds.X_test != ds0.X_test).nnz == 0
    for x in (ds.X_train, ds.X_valid, ds.X_test):
        assert sp.isspmatrix_csr(x) and x.dtype == np.float32 and x.shape[1] == ds.n_features
    # sublinear tf, l2 rows: each training row has unit length
    norms = np.sqrt(np.asarray(ds.X_train.multiply(ds.X_train).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)
    assert np.array_equal(ds.vectorizer.transform(ds.texts_test[:3]).toarray(),
                          ds.X_test[:3].toarray())


def test_a_giant_group_stays_in_training():
    corpus = random_corpus(n=400, n_groups=100)
    corpus.groups = corpus.groups.copy()
    corpus.groups[:100] = 7  # a quarter of the samples in one group
    for seed_salt in ("a", "b", "c", "d"):
        ds = text.make_text_dataset(corpus, min_count=0, salt=seed_salt, test_fraction=0.5)
        assert 7 in set(ds.groups_train)


def test_bad_options_are_refused_by_name():
    corpus = random_corpus(n=50)
    for kwargs, exc, word in [
        ({"min_count": -1}, ValueError, "min_count"),
        ({"min_count": 2.5}, TypeError, "min_count"),
        ({"valid_fraction": 1.0}, ValueError, "valid_fraction"),
        ({"test_fraction": -0.1}, ValueError, "test_fraction"),
        ({"max_label_fraction": 0.0}, ValueError, "max_label_fraction"),
        ({"tfidf": "min_df=2"}, TypeError, "tfidf"),
        ({"test_mask": np.zeros(3, bool)}, ValueError, "test_mask"),
    ]:
        with pytest.raises(exc, match=word):
            text.make_text_dataset(corpus, **kwargs)
    with pytest.raises(ValueError, match="source"):
        load_wordnet(source="internet")


def test_loaders_check_their_options_before_running_apt(tmp_path, monkeypatch):
    def fail(cmd, cwd=None):
        raise AssertionError("apt ran before the options were checked")

    monkeypatch.setattr(_debian, "run_command", fail)
    with pytest.raises(ValueError, match="valid_fraction"):
        load_debian_deps(tmp_path, valid_fraction=2.0)
    with pytest.raises(ValueError, match="min_count"):
        load_wordnet(source="debian", cache_dir=tmp_path, min_count=-1)
    with pytest.raises(TypeError, match="tfidf"):
        load_wordnet(source="debian", cache_dir=tmp_path, tfidf=["min_df"])
    assert os.listdir(tmp_path) == []


def test_describe_and_repr_give_the_counts():
    ds = text.make_text_dataset(random_corpus(), name="fixture")
    out = ds.describe()
    assert "fixture" in out and "random fixture 1.0" in out
    for part, y in (("train", ds.Y_train), ("valid", ds.Y_valid), ("test", ds.Y_test)):
        line = next(line for line in out.splitlines() if line.strip().startswith(part))
        assert f"{y.shape[0]} samples" in " ".join(line.split())
    r = repr(ds)
    assert r.startswith("TextDataset(") and f"{ds.n_labels} labels" in r
    assert f"{ds.Y_train.shape[0]}/{ds.Y_valid.shape[0]}/{ds.Y_test.shape[0]}" in r


# ------------------------------------------------------------- wordnet from Debian (fake)


def fake_dpkg(calls, version="1:3.0-99"):
    def run(cmd, cwd=None):
        calls.append(list(cmd))
        if cmd[:2] == ["apt-get", "download"]:
            with open(os.path.join(cwd, "wordnet-base_3.0-99_all.deb"), "wb") as fh:
                fh.write(b"not really a deb")
            return ""
        if cmd[:2] == ["dpkg-deb", "-f"]:
            return version + "\n"
        if cmd[:2] == ["dpkg-deb", "-x"]:
            wn = os.path.join(cmd[3], "usr", "share", "wordnet")
            os.makedirs(wn)
            with open(os.path.join(wn, "data.noun"), "w") as fh:
                fh.write(DATA_NOUN)
            with open(os.path.join(wn, "index.noun"), "w") as fh:
                fh.write(INDEX_NOUN)
            doc = os.path.join(cmd[3], "usr", "share", "doc", "wordnet-base")
            os.makedirs(doc)
            with open(os.path.join(doc, "copyright"), "w") as fh:
                fh.write(COPYRIGHT)
            return ""
        raise AssertionError(cmd)

    return run


def test_wordnet_from_debian_package_is_cached_with_its_version(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(_debian, "run_command", fake_dpkg(calls))
    opts = {"min_count": 0, "test_fraction": 0.0, "valid_fraction": 0.0,
            "tfidf": {"min_df": 1, "max_df": 1.0}}
    ds = load_wordnet(source="debian", cache_dir=tmp_path, **opts)
    assert [c[:2] for c in calls] == [["apt-get", "download"], ["dpkg-deb", "-f"],
                                      ["dpkg-deb", "-x"]]
    assert "1:3.0-99" in ds.source and ds.meta["source_version"] == "1:3.0-99"
    assert len(ds.meta["source_sha256"]) == 64
    assert sorted(os.listdir(tmp_path)) == ["wordnet-base_3.0-99_all.deb", "wordnet30.npz"]
    assert len(ds.ids_train) == 11 and "dog.n.01" in ds.label_names  # entity has no label

    def fail(cmd, cwd=None):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(_debian, "run_command", fail)
    cached = load_wordnet(source="debian", cache_dir=tmp_path, **opts)
    assert cached.source == ds.source and cached.label_names == ds.label_names
    assert (cached.Y_train != ds.Y_train).nnz == 0 and cached.texts_train == ds.texts_train

    calls.clear()  # rebuild reuses the .deb that is there and unpacks it again
    monkeypatch.setattr(_debian, "run_command", fake_dpkg(calls, version="1:3.0-100"))
    again = load_wordnet(source="debian", cache_dir=tmp_path, rebuild=True, **opts)
    assert [c[:2] for c in calls] == [["dpkg-deb", "-f"], ["dpkg-deb", "-x"]]
    assert again.meta["source_version"] == "1:3.0-100"


COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: WordNet

Files: *
Copyright: 1996-2012 Cognitive Science Laboratory Princeton University
License: WordNet3.0
 Permission to use, copy, modify and distribute this software and
 database is hereby granted.
 .
 WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.

Files: debian/*
License: GPL-2+
 Not this one.
"""


def test_build_script_writes_the_data_file_and_the_licence(tmp_path, monkeypatch):
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "scripts", "build_wordnet.py")
    spec = importlib.util.spec_from_file_location("build_wordnet", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(_debian, "run_command", fake_dpkg([]))
    out = tmp_path / "out"
    out.mkdir()
    assert script.main(["--workdir", str(tmp_path / "work"), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == [wordnet.LICENSE_FILE, wordnet.DATA_FILE]
    notice = (out / wordnet.LICENSE_FILE).read_text()
    assert "1:3.0-99" in notice and "hereby granted." in notice
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in notice
    assert "GPL" not in notice and "\n.\n" not in notice
    arrays = wordnet.read_wordnet_file(str(out / wordnet.DATA_FILE))
    assert str(arrays["source_version"]) == "1:3.0-99"
    corpus = wordnet.corpus_from_arrays(arrays)
    assert corpus.n_samples == 12 and "dog.n.01" in corpus.label_names


@pytest.mark.parametrize("exc", [
    FileNotFoundError(2, "No such file or directory", "apt-get"),
    subprocess.CalledProcessError(100, ["apt-get", "download", "wordnet-base"], "",
                                  "E: Unable to locate package wordnet-base"),
])
def test_wordnet_missing_package_says_how_to_fetch_it(tmp_path, monkeypatch, exc):
    def run(cmd, cwd=None):
        raise exc

    monkeypatch.setattr(_debian, "run_command", run)
    cache = tmp_path / "wn cache"
    with pytest.raises(RuntimeError) as info:
        load_wordnet(source="debian", cache_dir=cache)
    msg = str(info.value)
    for needle in ("wordnet-base", "apt-get update", "apt-get download wordnet-base",
                   f"cd '{cache}'", "load_wordnet(source='debian')"):
        assert needle in msg, needle
    assert not (cache / "wordnet30.npz").exists()


# ------------------------------------------------------------------- Debian dependencies

PACKAGES = """\
Package: foo-bin
Source: foo (1.0-1)
Version: 1.0-1
Depends: libc6 (>= 2.34), libfoo1 (= 1.0-1), python3:any | python3-minimal,
 perl [amd64]
Pre-Depends: dpkg (>= 1.15.6~)
Recommends: foo-doc <!nodoc>
Description: foo tool
Description-md5: aaa1

Package: libfoo1
Source: foo
Depends: libc6 (>= 2.14)
Description: foo library
Description-md5: aaa2

Package: bar
Version: 2
Depends: libc6, libbar-data
Description: bar game
Description-md5: bbb1

Package: nodeps
Description: nothing needed
Description-md5: ccc1

Package: nodesc
Depends: libc6
Description: short only
Description-md5: ddd1

Package: owndesc
Depends: libc6
Description: own description
 Long text kept in the Packages record.

Package: bar
Version: 1
Depends: oldlib
Description: older bar
Description-md5: bbb1
"""

TRANSLATION = """\
Package: foo-bin
Description-md5: aaa1
Description-en: foo tool
 Foo edits files.

Package: libfoo1
Description-md5: aaa2
Description-en: foo library
 Shared library of foo.

Package: bar
Description-md5: bbb1
Description-en: bar game
 Bar is an arcade game.

Package: nodeps
Description-md5: ccc1
Description-en: nothing needed
 Not used.
"""


def test_dependency_names_take_the_first_alternative_without_qualifiers():
    rec = next(debtags.parse_deb822(PACKAGES))
    assert debian_deps.dependency_names(rec) == [
        "dpkg", "foo-doc", "libc6", "libfoo1", "perl", "python3"]
    assert debian_deps.dependency_names({"Package": "x"}) == []


def test_join_dependencies_records_groups_and_counts():
    corpus = debian_deps.build_debian_deps(PACKAGES, TRANSLATION, "fixture index")
    assert corpus.ids == ["bar", "foo-bin", "libfoo1", "owndesc"]
    assert corpus.meta["with_dependency"] == 5 and corpus.meta["no_description"] == 1
    assert corpus.label_names == sorted(
        {"dpkg", "foo-doc", "libc6", "libfoo1", "perl", "python3", "libbar-data"})
    y = corpus.labels.toarray()
    col = {n: j for j, n in enumerate(corpus.label_names)}
    assert y[0, col["libbar-data"]] == 1 and y[0].sum() == 2  # first 'bar' record wins
    assert y[:, col["libc6"]].sum() == 4
    assert corpus.texts[0] == "bar game\nBar is an arcade game."
    assert corpus.texts[3] == "own description\nLong text kept in the Packages record."
    g = corpus.groups
    assert corpus.group_names == ["bar", "foo", "owndesc"]
    assert g[1] == g[2] == corpus.group_names.index("foo")


def fake_apt(packages, translation, calls):
    def run(cmd, cwd=None):
        calls.append(list(cmd))
        if cmd[0] == "apt-get":
            lists = next(c.split("=", 1)[1] for c in cmd if c.startswith("Dir::State::Lists="))
            with open(os.path.join(lists, "x_dists_y_main_i18n_Translation-en.lz4"), "w") as fh:
                fh.write("compressed")
            with open(os.path.join(lists, "x_dists_y_InRelease"), "w") as fh:
                fh.write("Origin: Debian\nDate: Sun, 12 Jul 2026 08:00:00 UTC\n")
            return ""
        if cmd[0].endswith("apt-helper"):
            return translation
        if cmd[0] == "apt-cache":
            return packages
        raise AssertionError(cmd)

    return run


def test_load_debian_deps_runs_apt_caches_and_splits_by_source(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(_debian, "run_command", fake_apt(PACKAGES, TRANSLATION, calls))
    opts = {"min_count": 1, "test_fraction": 0.0, "valid_fraction": 0.0,
            "tfidf": {"min_df": 1, "max_df": 1.0}}
    ds = load_debian_deps(tmp_path, **opts)
    assert [c[0].rsplit("/", 1)[-1] for c in calls] == ["apt-get", "apt-helper", "apt-cache"]
    assert "2026-07-12T08:00:00Z" in ds.source and ds.meta["index_date"] == "2026-07-12T08:00:00Z"
    assert sorted(ds.ids_train) == ["bar", "foo-bin", "libfoo1", "owndesc"]
    assert {"debian_deps.json", "debian_deps.npz"} <= set(os.listdir(tmp_path))
    assert not [p for p in os.listdir(tmp_path) if p.startswith("apt-")]

    def fail(cmd, cwd=None):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(_debian, "run_command", fail)
    cached = load_debian_deps(tmp_path, **opts)
    assert cached.source == ds.source and cached.ids_train == ds.ids_train
    assert (cached.Y_train != ds.Y_train).nnz == 0 and cached.label_names == ds.label_names


def test_debian_deps_split_keeps_a_source_on_one_side():
    pk, tr = [], []
    for s in range(60):
        for b in range(3):
            pk.append(f"Package: p{s}-{b}\nSource: src{s}\nDepends: dep{s % 7}, libc6\n"
                      f"Description: tool {s}\nDescription-md5: m{s}\n")
        tr.append(f"Package: p{s}-0\nDescription-md5: m{s}\n"
                  f"Description-en: tool {s}\n Tool number {s} uses dep{s % 7}.\n")
    corpus = debian_deps.build_debian_deps("\n".join(pk), "\n".join(tr), "fixture")
    ds = text.make_text_dataset(corpus, min_count=1, salt=debian_deps.SPLIT_SALT,
                                tfidf={"min_df": 1})
    src = {i: i.split("-")[0] for i in ds.ids_train + ds.ids_valid + ds.ids_test}
    train = {src[i] for i in ds.ids_train}
    assert len(ds.ids_test) > 0 and len(ds.ids_valid) > 0
    assert not train & {src[i] for i in ds.ids_test}
    assert not train & {src[i] for i in ds.ids_valid}


def test_debian_deps_error_without_apt(tmp_path, monkeypatch):
    def run(cmd, cwd=None):
        raise FileNotFoundError(2, "No such file or directory", "apt-get")

    monkeypatch.setattr(_debian, "run_command", run)
    with pytest.raises(RuntimeError) as info:
        load_debian_deps(tmp_path / "c")
    msg = str(info.value)
    for needle in ("load_debian_deps", "apt-lang.conf", "dumpavail > Packages",
                   "Translation-en", str(tmp_path)):
        assert needle in msg, needle


def test_debtags_in_the_text_dataset_form_keeps_its_test_split():
    dt = debtags.build_debtags(debtags_packages(), debtags_translation())
    ds = as_text_dataset(dt, valid_fraction=0.0, tfidf={"min_df": 1, "max_df": 1.0})
    assert isinstance(ds, TextDataset)
    assert sorted(ds.ids_test) == sorted(dt.packages[i] for i in dt.test_index)
    assert ds.label_names == [n for n in dt.label_names
                              if dt.labels[dt.train_index][:, dt.label_names.index(n)].nnz]
    with pytest.raises(TypeError, match="test part"):
        as_text_dataset(dt, test_fraction=0.5)


def debtags_packages():
    return "\n".join(f"Package: pkg{i}\nSource: s{i}\nDescription: d\nDescription-md5: m{i}\n"
                     f"Tag: role::program, use::t{i % 3}\n" for i in range(40))


def debtags_translation():
    return "\n".join(f"Package: pkg{i}\nDescription-md5: m{i}\nDescription-en: pkg {i}\n"
                     f" Does thing t{i % 3} well.\n" for i in range(40))


# --------------------------------------------------------------- the embedded WordNet


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_embedded_wordnet_loads_without_network(no_network, monkeypatch):
    monkeypatch.setattr(wordnet, "_embedded", {})  # read the packaged file, not a memo

    def no_commands(*args, **kwargs):
        raise AssertionError("the embedded copy must not run apt")

    monkeypatch.setattr(_debian, "run_command", no_commands)
    ds = load_wordnet(min_count=1)
    n = len(ds.ids_train) + len(ds.ids_valid) + len(ds.ids_test)
    assert n >= 80_000 and ds.n_labels >= 15_000
    assert 6.0 < ds.Y_train.nnz / ds.Y_train.shape[0] < 12.0
    assert ds.n_features >= 20_000
    for x, y in ((ds.X_train, ds.Y_train), (ds.X_valid, ds.Y_valid), (ds.X_test, ds.Y_test)):
        assert x.shape[0] == y.shape[0] and x.dtype == np.float32 and y.dtype == np.float32
    assert "wordnet-base" in ds.source and ds.meta["source_version"]
    parts = part_of_rows(ds)
    assert not set(parts["train"]) & set(parts["test"])
    assert 0.12 < len(ds.ids_test) / n < 0.3
    # a well-known synset carries its ancestors
    where = {"train": ds.ids_train, "valid": ds.ids_valid, "test": ds.ids_test}
    part = next(p for p, ids in where.items() if "dog.n.01" in ids)
    y = {"train": ds.Y_train, "valid": ds.Y_valid, "test": ds.Y_test}[part]
    row = y[where[part].index("dog.n.01")]
    got = {ds.label_names[j] for j in row.indices}
    assert {"canine.n.02", "carnivore.n.01", "mammal.n.01", "entity.n.01"} <= got


def test_embedded_wordnet_default_filter_and_licence():
    ds = load_wordnet()
    assert np.asarray(ds.Y_train.sum(axis=0)).ravel().min() >= 5
    assert 3_000 < ds.n_labels < 15_000
    lic = os.path.join(os.path.dirname(wordnet.__file__), "data", wordnet.LICENSE_FILE)
    with open(lic, encoding="utf-8") as fh:
        notice = fh.read()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in notice
    assert "Permission to use, copy, modify and distribute" in notice
