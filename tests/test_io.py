"""labelemb._io.atomic_write, and the writers that use it: all or nothing."""

import os
import stat

import numpy as np
import pytest

from labelemb import LabelEmbedding
from labelemb._io import atomic_write


def test_writes_binary_and_text(tmp_path):
    path = tmp_path / "a.bin"
    with atomic_write(path) as f:
        f.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    text = tmp_path / "b.txt"
    with atomic_write(str(text), "w", newline="\n") as f:
        f.write("é\n")
    assert text.read_bytes() == "é\n".encode()
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.txt"]


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt, OSError])
def test_error_mid_write_keeps_the_old_file(tmp_path, exc):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(exc):
        with atomic_write(path, "w") as f:
            f.write("half of the new")
            f.flush()
            raise exc("stop")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_error_mid_write_creates_nothing(tmp_path):
    with pytest.raises(ValueError):
        with atomic_write(tmp_path / "new.bin") as f:
            f.write(b"x")
            raise ValueError
    assert os.listdir(tmp_path) == []


def test_failed_rename_leaves_no_temp_file(tmp_path):
    target = tmp_path / "dir"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        with atomic_write(target) as f:
            f.write(b"x")
    assert os.listdir(tmp_path) == ["dir"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "a") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o640


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "a", "a"):
            pass
    with pytest.raises(ValueError, match="text mode"):
        with atomic_write(tmp_path / "a", "wb", encoding="utf-8"):
            pass
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "missing" / "a"):
            pass
    assert os.listdir(tmp_path) == []


def _embedding(d=4, eigenvalues=True):
    rng = np.random.default_rng(0)
    v = rng.standard_normal((20, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return LabelEmbedding(v, [f"l{i}" for i in range(20)],
                          eigenvalues=np.arange(d, 0, -1.0) if eigenvalues else None)


def test_embedding_save_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "emb.npz"
    _embedding().save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space"):
        _embedding(d=3).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["emb.npz"]
    assert path.read_bytes() == before
    assert LabelEmbedding.load(path).dim == 4


def test_embedding_without_eigenvalues_round_trips(tmp_path):
    path = tmp_path / "emb.npz"
    emb = _embedding(eigenvalues=False)
    emb.save(path)
    back = LabelEmbedding.load(path)
    np.testing.assert_array_equal(back.vectors, emb.vectors)
    assert back.eigenvalues.shape == (0,)


@pytest.mark.parametrize("name", ["d.txt", "d.txt.gz"])
def test_xc_failure_mid_write_keeps_the_old_file(tmp_path, monkeypatch, name):
    from labelemb import formats

    features = np.arange(1, 13, dtype=np.float32).reshape(6, 2)
    labels = [[0], [1, 2], [], [0], [2], [1]]
    path = tmp_path / name
    formats.write_xc(path, features, labels)
    before = path.read_bytes()
    calls = []

    def fmt(x):
        calls.append(x)
        if len(calls) == 5:  # lines already written to the temporary file
            raise KeyboardInterrupt
        return str(x)

    monkeypatch.setattr(formats, "_fmt", fmt)
    with pytest.raises(KeyboardInterrupt):
        formats.write_xc(path, features * 2, labels)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [name]
