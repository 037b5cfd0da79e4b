"""Replays the fuzz corpus and a deterministic random sweep over the native entry points.

A crash of the interpreter fails the whole run; an exception other than an input error
fails this test. (The atheris campaign itself runs in CI for a bounded time.)
"""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fuzz"))

import targets  # noqa: E402

CORPUS = os.path.join(os.path.dirname(__file__), "fuzz", "corpus")


def test_corpus_replays():
    files = sorted(os.listdir(CORPUS))
    assert files, "the fuzz corpus is empty"
    for name in files:
        with open(os.path.join(CORPUS, name), "rb") as f:
            targets.run_one(f.read())


def test_random_sweep():
    rng = np.random.default_rng(12345)
    n_targets = len(targets.TARGETS) + len(targets.extra_targets())
    for i in range(1000):
        data = bytes([i % n_targets]) + rng.bytes(int(rng.integers(0, 200)))
        targets.run_one(data)


@pytest.mark.skipif(os.name != "posix" or "asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="needs ulimit -v (POSIX), which AddressSanitizer excludes")
def test_random_sweep_under_an_address_space_limit():
    """The sweep (num_threads varied, up to past the limit) in a process limited to 1.5 GB
    of address space: allocations that fail raise MemoryError; a crash fails the test."""
    import subprocess
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.join(os.path.dirname(__file__), "fuzz")!r})
        import numpy as np, targets
        rng = np.random.default_rng(99)
        n = len(targets.TARGETS) + len(targets.extra_targets())
        for i in range(600):
            targets.run_one(bytes([i % n]) + rng.bytes(int(rng.integers(0, 200))))
        # 2 x 10^7-label counters (160 MB) per thread, up to 64 threads: some must fail cleanly
        for nt in (1, 2, 8, targets.THREAD_LIMIT):
            try:
                targets._core.cooccurrence(np.array([0, 2], np.int64),
                                           np.array([0, 1], np.int32), 2 * 10**7, nt)
            except MemoryError:
                pass
        print("swept")
    """)
    r = subprocess.run(["bash", "-c", 'ulimit -v 1500000 && exec "$0" -c "$1"', sys.executable,
                        code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "swept" in r.stdout, (r.returncode, r.stderr[-3000:])


def test_public_api_sweep():
    """Random calls of the public entry points (``fuzz/api_targets.py``): results or the
    documented argument errors only, and a fair share of results."""
    import api_targets

    ok = api_targets.run(seed=31, n_calls=400)
    assert ok >= 40, ok


@pytest.mark.parametrize("target", targets.TARGETS, ids=lambda t: t.__name__)
def test_target_reaches_its_kernel(target):
    """Each target gets past the bindings' checks on a fair share of random inputs (a
    target whose every input is refused would fuzz nothing), and `only` routes to it."""
    rng = np.random.default_rng(7)
    reached = 0
    for _ in range(100):
        try:
            target(targets.Reader(rng.bytes(int(rng.integers(0, 300)))))
            reached += 1
        except targets.ALLOWED:
            pass
    assert reached >= 5, reached
    targets.run_one(rng.bytes(50), only=target.__name__.removeprefix("target_"))


def test_sum_counts_zero_and_cancelling_counts():
    """Found by fuzzing: repeated columns whose counts were 0 (or summed to 0) made the fill
    pass write more entries than it had sized, past the end of the output."""
    from labelemb import _core

    ip = np.array([0, 3, 3], np.int64)
    for data in ([0, 0, 0], [1, -1, 1], [0, 2, 0]):
        indptr, indices, counts = _core.sum_counts(
            [ip, ip], [np.array([1, 1, 1], np.int32)] * 2, [np.array(data, np.int64)] * 2, 2, 2)
        np.testing.assert_array_equal(indptr, [0, 1, 1])
        np.testing.assert_array_equal(indices, [1])
        np.testing.assert_array_equal(counts, [2 * sum(data)])


@pytest.mark.parametrize("n_labels", [2**63 - 1, -1])
def test_sizes_near_the_limit_are_refused(n_labels):
    """Found by fuzzing under UBSan: n_labels + 1 overflowed."""
    from labelemb import _core

    one = [np.zeros(1, np.int64)], [np.zeros(0, np.int32)], [np.zeros(0, np.int64)]
    with pytest.raises(ValueError, match="n_labels"):
        _core.sum_counts(*one, n_labels)
    with pytest.raises(ValueError, match="n_labels"):
        _core.cooccurrence(np.zeros(1, np.int64), np.zeros(0, np.int32), n_labels)


def test_huge_oversample_is_clamped():
    from labelemb import _core

    A = np.diag(np.arange(1, 5, dtype=np.float64))
    values, vectors = np.empty(2), np.empty((4, 2), np.float32)
    _core.eigh_dense(A, 2, 2**63 - 1, 1, True, 0, values, vectors)
    np.testing.assert_allclose(values, [4, 3])
