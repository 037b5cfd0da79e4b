"""Replays the fuzz corpus and a deterministic random sweep over the native entry points.

A crash of the interpreter fails the whole run; an exception other than an input error
fails this test. (The atheris campaign itself runs in CI for a bounded time.)
"""

import os
import sys

import numpy as np

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
