"""Tests for labelemb.datasets: the embedded Openclipart set and the debtags loader.

The debtags tests run on a few hand-written apt records and a fake command runner:
they need no network and no apt.
"""

import os
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp

from labelemb.datasets import debtags, load_debtags, load_openclipart

# ------------------------------------------------------------------------ openclipart


@pytest.fixture(scope="module")
def clipart():
    return load_openclipart()


def test_openclipart_shapes_and_dtypes(clipart):
    n = clipart.images.shape[0]
    assert n > 5000
    assert clipart.images.shape == (n, 32, 32, 3)
    assert clipart.images.dtype == np.uint8
    assert sp.isspmatrix_csr(clipart.labels)
    assert clipart.labels.dtype == np.float32
    assert clipart.labels.shape == (n, len(clipart.label_names))
    assert np.all(clipart.labels.data == 1)
    assert clipart.label_names == sorted(clipart.label_names)
    assert clipart.groups.shape == (n,) and clipart.groups.dtype == np.int32
    assert clipart.groups.max() < len(clipart.group_names)
    assert len(clipart.paths) == n
    assert clipart.meta["source_package"] == "openclipart-svg"
    assert clipart.meta["source_version"]
    assert clipart.meta["build_date"] and clipart.meta["script_version"]


def test_openclipart_label_counts(clipart):
    per_label = np.asarray(clipart.labels.sum(axis=0)).ravel()
    assert per_label.min() >= 5
    per_image = np.diff(clipart.labels.indptr)
    assert per_image.min() >= 1
    assert 2.0 < per_image.mean() < 10.0


def test_openclipart_split_is_grouped(clipart):
    n = clipart.images.shape[0]
    train, test = clipart.train_index, clipart.test_index
    assert len(train) + len(test) == n
    assert np.array_equal(np.union1d(train, test), np.arange(n))
    assert not set(clipart.groups[train]) & set(clipart.groups[test])
    assert 0.1 <= len(test) / n <= 0.3


def test_openclipart_split_and_float():
    full = load_openclipart()
    part = load_openclipart(split="test", as_float=True)
    assert part.images.shape == (len(full.test_index), 3, 32, 32)
    assert part.images.dtype == np.float32
    assert 0.0 <= part.images.min() and part.images.max() <= 1.0
    i = full.test_index[0]
    np.testing.assert_allclose(part.images[0], full.images[i].transpose(2, 0, 1) / 255.0)
    assert (part.labels != full.labels[full.test_index]).nnz == 0
    assert np.array_equal(part.test_index, np.arange(part.images.shape[0]))
    assert part.train_index.size == 0
    train = load_openclipart(split="train")
    assert train.images.shape[0] == len(full.train_index)
    with pytest.raises(ValueError):
        load_openclipart(split="validation")


def test_openclipart_returns_independent_copies():
    a = load_openclipart()
    a.images[0] = 0
    assert load_openclipart().images[0].max() > 0


# --------------------------------------------------------------------------- debtags

PACKAGES = """\
Package: foo-bin
Source: foo (1.0-1)
Version: 1.0-1
Description: foo tool
Description-md5: aaa1
Tag: role::program, use::editing,
 interface::commandline

Package: libfoo1
Source: foo
Description: foo library
Description-md5: aaa2
Tag: role::shared-lib, devel::library

Package: bar
Version: 2
Description: bar game
Description-md5: bbb1
Tag: game::arcade, role::program

Package: untagged
Description: no tags
Description-md5: ccc1

Package: bar
Version: 1
Description: older bar
Description-md5: bbb1
Tag: game::puzzle
"""

TRANSLATION = """\
Package: foo-bin
Description-md5: aaa1
Description-en: foo tool
 Foo edits files.
 .
 It has a second paragraph.

Package: libfoo1
Description-md5: aaa2
Description-en: foo library
 Shared library of foo.

Package: bar
Description-md5: bbb1
Description-en: bar game
 Bar is an arcade game.

Package: untagged
Description-md5: ccc1
Description-en: no tags
 Not used.
"""


def test_parse_deb822_and_description():
    recs = list(debtags.parse_deb822(PACKAGES))
    assert [r["Package"] for r in recs] == ["foo-bin", "libfoo1", "bar", "untagged", "bar"]
    assert debtags.parse_tags(recs[0]["Tag"]) == [
        "interface::commandline",
        "role::program",
        "use::editing",
    ]
    assert debtags.source_name(recs[0]) == "foo"
    assert debtags.source_name(recs[2]) == "bar"
    tr = debtags.parse_translations(TRANSLATION)
    assert tr["aaa1"] == "foo tool\nFoo edits files.\n\nIt has a second paragraph."
    with pytest.raises(ValueError, match="line 2"):
        list(debtags.parse_deb822("Package: x\nnot a field\n"))


def test_build_debtags_from_text():
    ds = debtags.build_debtags(PACKAGES, TRANSLATION)
    assert ds.packages == ["bar", "foo-bin", "libfoo1"]  # sorted, first 'bar' wins
    assert ds.texts[0] == "bar game\nBar is an arcade game."
    assert ds.label_names == sorted(ds.label_names)
    assert "game::puzzle" not in ds.label_names
    dense = ds.labels.toarray()
    assert dense.dtype == np.float32
    names = [[ds.label_names[j] for j in np.flatnonzero(row)] for row in dense]
    assert names[0] == ["game::arcade", "role::program"]
    assert names[1] == ["interface::commandline", "role::program", "use::editing"]
    assert ds.group_names == ["bar", "foo"]
    assert list(ds.groups) == [0, 1, 1]
    assert ds.meta["tagged"] == 3


def test_debtags_split_by_source_is_grouped_and_deterministic():
    blocks_p, blocks_t = [], []
    for s in range(200):
        for b in range(3):
            md5 = f"m{s}x{b}"
            blocks_p.append(
                f"Package: p{s}-{b}\nSource: src{s} (1)\nDescription-md5: {md5}\n"
                f"Tag: role::program, t::{s % 7}\n"
            )
            blocks_t.append(
                f"Package: p{s}-{b}\nDescription-md5: {md5}\nDescription-en: s\n text {s}\n"
            )
    pk, tr = "\n".join(blocks_p), "\n".join(blocks_t)
    ds = debtags.build_debtags(pk, tr)
    assert ds.n_samples == 600 and len(ds.group_names) == 200
    assert not set(ds.groups[ds.train_index]) & set(ds.groups[ds.test_index])
    assert 0.1 < len(ds.test_index) / ds.n_samples < 0.3
    again = debtags.build_debtags(pk, tr)
    assert np.array_equal(ds.test_index, again.test_index)


def _fake_apt(packages, translation, calls):
    def run(cmd):
        calls.append(list(cmd))
        if cmd[0] == "apt-get":
            lists = next(c.split("=", 1)[1] for c in cmd if c.startswith("Dir::State::Lists="))
            name = "deb.example_dists_x_main_i18n_Translation-en.lz4"
            with open(os.path.join(lists, name), "w") as fh:
                fh.write("compressed")
            with open(os.path.join(lists, "deb.example_dists_x_InRelease"), "w") as fh:
                fh.write("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n")
                fh.write("Origin: Debian\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n")
            return ""
        if cmd[0].endswith("apt-helper"):
            assert cmd[1] == "cat-file" and cmd[2].endswith("Translation-en.lz4")
            return translation
        if cmd[0] == "apt-cache":
            assert cmd[-1] == "dumpavail"
            return packages
        raise AssertionError(cmd)

    return run


def test_load_debtags_runs_apt_and_caches(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(debtags, "_run_command", _fake_apt(PACKAGES, TRANSLATION, calls))
    ds = load_debtags(tmp_path)
    assert [c[0].rsplit("/", 1)[-1] for c in calls] == ["apt-get", "apt-helper", "apt-cache"]
    assert "update" in calls[0] and any("apt-lang.conf" in c for c in calls[0])
    assert ds.packages == ["bar", "foo-bin", "libfoo1"]
    assert ds.meta["index_date"] == "2026-07-11T10:16:37Z"
    assert {"debtags.json", "debtags.npz"} <= set(os.listdir(tmp_path))
    assert not [p for p in os.listdir(tmp_path) if p.startswith("apt-")]  # work dir removed

    def fail(cmd):
        raise AssertionError("cache not used")

    monkeypatch.setattr(debtags, "_run_command", fail)
    cached = load_debtags(tmp_path)
    assert cached.texts == ds.texts and cached.packages == ds.packages
    assert (cached.labels != ds.labels).nnz == 0
    assert np.array_equal(cached.test_index, ds.test_index)


def test_load_debtags_uses_files_in_cache_dir(tmp_path, monkeypatch):
    (tmp_path / "Packages").write_text(PACKAGES)
    (tmp_path / "Translation-en").write_text(TRANSLATION)

    def fail(cmd):
        raise AssertionError("apt should not run")

    monkeypatch.setattr(debtags, "_run_command", fail)
    assert load_debtags(tmp_path).n_samples == 3


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(2, "No such file or directory", "apt-get"),
        subprocess.CalledProcessError(100, ["apt-get", "update"], "", "E: Could not open lock"),
    ],
)
def test_load_debtags_clear_error_without_apt(tmp_path, monkeypatch, exc):
    def run(cmd):
        raise exc

    monkeypatch.setattr(debtags, "_run_command", run)
    with pytest.raises(RuntimeError) as info:
        load_debtags(tmp_path / "cache")
    msg = str(info.value)
    for needle in (
        "apt-get",
        "apt-lang.conf",
        "Dir::State::Lists",
        "apt-helper cat-file",
        "Translation-en",
        "apt-cache",
        "dumpavail > Packages",
        str(tmp_path),
    ):
        assert needle in msg
    assert not (tmp_path / "cache" / "debtags.json").exists()


def test_load_debtags_error_when_no_tags(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(debtags, "_run_command", _fake_apt("Package: x\n", TRANSLATION, calls))
    with pytest.raises(RuntimeError, match="dumpavail"):
        load_debtags(tmp_path)
