"""The ``labelemb`` command under random argument lists and malformed files.

Every run must end with exit status 0 (it worked) or 2 (a user error: one line on stderr,
or argparse's usage message); an exception escaping ``main`` (a traceback) fails the test.
Runs in-process (a few seconds for a couple of hundred command lines); one subprocess
checks the real exit status and the single stderr line.
"""

import contextlib
import gzip
import io
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import labelemb
from labelemb import cli
from labelemb.formats import write_label_list

# LABELEMB_CLI_FUZZ=N,SEED runs a longer campaign (N command lines from seed SEED).
_CAMPAIGN = os.environ.get("LABELEMB_CLI_FUZZ", "200,2024").split(",")
N_CASES, SEED = int(_CAMPAIGN[0]), int(_CAMPAIGN[1])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_fuzz")
    Y = labelemb.make_topic_labels(120, 12, seed=0).labels
    good = d / "good.txt"
    write_label_list(good, Y)
    write_label_list(d / "good.txt.gz", Y)
    gz = (d / "good.txt.gz").read_bytes()
    emb = d / "emb.npz"
    status, err = _main(["fit", str(good), "--dim", "3", "-o", str(emb), "--no-progress"])
    assert status == 0, err
    raw = emb.read_bytes()
    x = np.random.default_rng(0).random((120, 4)).astype(np.float32)
    out = {
        "good": good, "good_gz": d / "good.txt.gz", "emb": emb,
        "missing": d / "missing.txt", "dir": d,
    }
    blobs = {
        "empty.txt": b"",
        "binary.txt": bytes(range(256)) * 4,
        "bom.txt": b"\xef\xbb\xbf0,1\n1,2\n0,2\n",
        "latin1.txt": "caf\xe9,th\xe9\n".encode("latin-1"),
        "big_id.txt": b"0,2147483648\n1,2\n",
        "neg.txt": b"0,-1\n1,2\n",
        "nul.txt": b"a,a\x00\nb\n",
        "blank.txt": b"\n\n\n",
        "commas.txt": b",,,\n,\n",
        "super.txt": "\u00b2,a\n".encode(),
        "trunc.txt.gz": gz[: len(gz) // 2],
        "corrupt.txt.gz": gz[:12] + bytes(20) + gz[32:],
        "notgz.txt.gz": b"plain text\n",
        "trunc.npz": raw[: len(raw) // 2],
        "garbage.npz": bytes(range(200)),
        "text.npz": b"hello\n",
    }
    for name, data in blobs.items():
        (d / name).write_bytes(data)
        out[name] = d / name
    with zipfile.ZipFile(emb) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["vectors.npy"] = members["vectors.npy"].replace(b"(12, 3)", b"(1125899906842624, 3)")
    with zipfile.ZipFile(d / "forged.npz", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    out["forged.npz"] = d / "forged.npz"
    np.save(d / "x.npy", x)
    np.save(d / "xi.npy", (x * 10).astype(np.int64))
    np.save(d / "x1d.npy", x[:, 0])
    np.save(d / "xs.npy", np.array(["a", "b"]))
    for name in ("x.npy", "xi.npy", "x1d.npy", "xs.npy"):
        out[name] = d / name
    return out


VALUES = ["nan", "inf", "-inf", "-1", "0", "1", "2", "3", "100000", "1e309", "1e-300",
          "99999999999999999999999", "abc", "", "0.5", "-0.0", "2147483648"]
FIT_FLAGS = ["--dim", "--pmi", "--shift", "--alpha", "--min-count", "--diagonal", "--power",
             "--which", "--n-iter", "--oversample", "--seed", "--threads", "--delimiter"]
CHOICES = {"--pmi": ["ppmi", "pmi", "x"], "--diagonal": ["self", "zero", "x"],
           "--which": ["LA", "LM", "x"], "--delimiter": [",", " ", "\t", "", ",,"]}


def _value(rng, flag):
    pool = CHOICES.get(flag, VALUES)
    return pool[int(rng.integers(len(pool)))]


def _file(rng, files):
    names = sorted(files)
    return str(files[names[int(rng.integers(len(names)))]])


def _argv(rng, files, out):
    kind = int(rng.integers(6))
    if kind <= 2:  # fit: a file or a synthetic set, random flags
        argv = ["fit"]
        if rng.random() < 0.3:
            argv += ["--synthetic", ["150x12", "5x2", "0x0", "x", "10x1", "300x40"][
                int(rng.integers(6))]]
        else:
            argv.append(_file(rng, files))
        argv += ["-o", out, "--no-progress"]
        for flag in rng.choice(FIT_FLAGS, size=int(rng.integers(0, 5)), replace=False):
            argv += [str(flag), _value(rng, flag)]
        if "--dim" not in argv:
            argv += ["--dim", "2"]
        return argv
    if kind == 3:  # neighbors
        label = ["0", "1", "-1", "99", "abc", "", "11"][int(rng.integers(7))]
        argv = ["neighbors", _file(rng, files), label]
        if rng.random() < 0.6:
            argv += ["-k", _value(rng, "-k")]
        return argv
    if kind == 4:  # argument lists that argparse itself refuses, or help
        pool = [[], ["fit"], ["nope"], ["fit", "--dim"], ["neighbors"], ["--version"],
                ["fit", "--help"], ["fit", str(files["good"]), "-o"], ["--debug"]]
        return pool[int(rng.integers(len(pool)))]
    # train / evaluate on files that must be refused before any training
    bad_x = ["x1d.npy", "xs.npy", "trunc.npz", "garbage.npz", "forged.npz", "missing"]
    x = str(files[bad_x[int(rng.integers(len(bad_x)))]])
    if rng.random() < 0.5:
        return ["train", x, str(files["good"]), "-o", out, "--epochs", "1", "-q",
                "--no-progress"]
    return ["evaluate", _file(rng, files), x, str(files["good"])]


def _main(argv):
    """(status, stderr) of one in-process run; an escaping exception propagates."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            status = cli.main(argv)
        except SystemExit as e:  # argparse: usage errors (2), --help / --version (0)
            status = e.code
    return status, err.getvalue()


def test_random_command_lines(files, tmp_path):
    rng = np.random.default_rng(SEED)
    out = str(tmp_path / "out.npz")
    seen = {0: 0, 2: 0}
    for _ in range(N_CASES):
        argv = _argv(rng, files, out)
        status, err = _main(argv)
        assert status in (0, 2), (argv, status, err)
        seen[status] += 1
        if status == 2 and err.startswith("labelemb "):
            lines = err.strip().splitlines()
            assert len(lines) == 1, (argv, err)
        assert "Traceback" not in err, (argv, err)
    assert seen[0] >= 10 and seen[2] >= 50, seen  # both outcomes are exercised


@pytest.mark.parametrize("name", ["trunc.txt.gz", "corrupt.txt.gz", "notgz.txt.gz", "binary.txt",
                                  "big_id.txt", "neg.txt", "trunc.npz", "forged.npz",
                                  "garbage.npz", "empty.txt", "missing"])
def test_malformed_label_files(files, tmp_path, name):
    status, err = _main(["fit", str(files[name]), "--dim", "2", "-o", str(tmp_path / "o.npz"),
                         "--no-progress"])
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and "error:" in err, err


@pytest.mark.parametrize("name", ["trunc.npz", "forged.npz", "garbage.npz", "text.npz",
                                  "good", "missing"])
def test_malformed_embedding_files(files, name):
    status, err = _main(["neighbors", str(files[name]), "1"])
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert str(files[name]) in err or "no such file" in err, err


def test_subprocess_exit_status_and_debug(files, tmp_path):
    """The real process: status 2 and one stderr line; --debug shows the traceback."""
    base = [sys.executable, "-m", "labelemb", "fit", str(files["trunc.txt.gz"]), "--dim", "2",
            "-o", str(tmp_path / "o.npz"), "--no-progress"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    r = subprocess.run(base, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("labelemb fit: error:"), r.stderr
    r = subprocess.run(base + ["--debug"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 1 and "Traceback" in r.stderr, r.stderr


def test_gz_fixture_is_gzip(files):
    with gzip.open(files["good_gz"], "rt") as f:  # the corrupt ones derive from a real one
        assert f.readline().strip()


@pytest.mark.parametrize("flags", [
    ["--shift", "nan"], ["--power", "inf"], ["--alpha", "nan"], ["--threads", "100000"],
    ["--min-count", "99999999999999999999999"], ["--oversample", "99999999999999999999999"],
    ["--dim", "99999999999999999999999"], ["--n-iter", "99999999999999999999999"],
    ["--seed", "-1"],
])
def test_bad_fit_options_are_one_line(files, tmp_path, flags):
    """Options that once ended in a traceback: refused in one line, or (a huge min-count or
    oversample, which only prunes or saturates) a clean run or refusal."""
    status, err = _main(["fit", str(files["good"]), "-o", str(tmp_path / "o.npz"),
                         "--no-progress"] + (["--dim", "2"] if flags[0] != "--dim" else [])
                        + flags)
    assert status in (0, 2), err
    if flags[0] not in ("--oversample",):
        assert status == 2 and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("features", ["xi.npy", "x.npy"])
def test_train_and_evaluate_take_integer_features(files, tmp_path, features):
    pytest.importorskip("torch")
    model = str(tmp_path / "m.pt")
    status, err = _main(["train", str(files[features]), str(files["good"]), "-o", model,
                         "--epochs", "1", "--hidden", "8", "--dim", "3", "-q", "--no-progress"])
    assert status == 0, err
    status, err = _main(["evaluate", model, str(files[features]), str(files["good"])])
    assert status == 0, err
