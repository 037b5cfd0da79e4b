"""Random calls of the public API with odd arguments, independent of the fuzzing engine.

Where ``targets.py`` calls the bindings directly, these go through the Python entry points
users call (``cooccurrence``, ``pmi_matrix``, ``fit_embeddings``, ``topk``, ``threshold``,
``randomized_eigh``, the metrics, ``LabelEmbedding``, the writers), with label inputs in
every accepted form and some malformed, integer arguments from bools to 10^30, NaN, and
``num_threads`` up to past the limit. Allowed outcomes: a result, or ValueError / TypeError
(the documented argument errors) / MemoryError / FileNotFoundError (a string is read as a
label file). Anything else is a bug.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np
import scipy.sparse as sp

import labelemb
from labelemb import _core, metrics
from labelemb.embedding import LabelEmbedding
from labelemb.formats import write_label_list, write_xc

ALLOWED = (ValueError, TypeError, MemoryError, FileNotFoundError)
_ODD_INTS = [0, 1, 2, 3, -1, 2**31, 2**63, 10**30, True, 1.5, np.int64(2), np.uint64(3), None,
             "2", float("nan")]


class Args:
    """Draws arguments from a numpy Generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def odd_int(self):
        return self.pick(_ODD_INTS)

    def threads(self):
        if self.rng.random() < 0.7:
            return int(self.rng.integers(0, 3))
        return self.pick([_core.thread_limit() + 1, 100_000, -1, 4, 2.0, None])

    def labels(self):
        r, kind = self.rng, int(self.rng.integers(9))
        if kind == 0:
            return [[int(x) for x in r.integers(0, 8, r.integers(0, 4))]
                    for _ in range(r.integers(0, 6))]
        if kind == 1:
            return [["a", "b", "c"][: r.integers(0, 4)] for _ in range(r.integers(0, 6))]
        if kind == 2:
            return sp.random(int(r.integers(0, 6)), int(r.integers(0, 6)), density=0.5,
                             format=self.pick(["csr", "csc", "coo"]),
                             random_state=int(r.integers(1000)))
        if kind == 3:
            return r.random((int(r.integers(0, 5)), int(r.integers(0, 5)))) > 0.5
        if kind == 4:
            return self.pick([[[1, "a"]], [[np.nan]], [["a", None]], [[-5], [1]], [[1.5]]])
        if kind == 5:
            return np.array([[1, 2], [3]], dtype=object)
        if kind == 6:
            return iter([[[0, 1]], [[1, 2]]])
        if kind == 7:
            return self.pick(["/nonexistent/labels.txt", 3, None, b"ab", {1: 2}])
        return [[int(x)] for x in r.integers(0, 2**40, 3)]

    def array(self, shapes=((2, 3), (0, 3), (3, 0), (4,), (1, 1), (3, 3))):
        a = self.rng.standard_normal(self.pick(shapes)).astype(self.pick(["f4", "f8", "i4"]))
        if self.rng.random() < 0.2 and a.size and a.dtype.kind == "f":
            a.flat[0] = self.pick([np.nan, np.inf, 1e30])
        return a


def _symmetric(args: Args):
    m = sp.random(6, 6, density=0.4, random_state=int(args.rng.integers(100)))
    return (m + m.T).tocsr()


def _calls(a: Args, tmp: str):
    emb = LabelEmbedding(np.eye(3, dtype=np.float32), ["a", "b", "c"])
    out = os.path.join(tmp, "o.txt")
    return [
        lambda: labelemb.cooccurrence(a.labels(), n_labels=a.pick([None, a.odd_int()]),
                                      num_threads=a.threads()),
        lambda: labelemb.pmi_matrix(a.labels(), kind=a.pick(["ppmi", "pmi", "x"]),
                                    shift=a.pick([0, 1, -1, np.nan]), min_count=a.odd_int(),
                                    num_threads=a.threads()),
        lambda: labelemb.fit_embeddings(a.labels(), dim=a.odd_int(), num_threads=a.threads()),
        lambda: labelemb.topk(a.array(), a.array(), a.odd_int(), num_threads=a.threads()),
        lambda: labelemb.threshold(a.array(), a.array(), a.pick([0.5, np.nan, 1e40]),
                                   num_threads=a.threads()),
        lambda: labelemb.randomized_eigh(_symmetric(a), a.odd_int(), oversample=a.odd_int(),
                                         n_iter=a.pick([0, 1, 4, -1, 10**6]),
                                         num_threads=a.threads()),
        lambda: metrics.precision_at_k(
            a.array(((2, 2), (2, 1), (0, 1), (2,))).astype(
                a.pick([np.int64, np.uint64, np.int32, np.float32])), a.labels(), a.odd_int()),
        lambda: metrics.report(np.array([[0, 1], [1, 2]]), a.labels(), ks=[a.odd_int()],
                               label_counts=[1, 2, 3], n_train=a.odd_int()),
        lambda: LabelEmbedding(a.array(), None).encode(a.labels()),
        lambda: emb.decode(a.array(), a.odd_int()),
        lambda: emb.neighbors(a.pick(["a", 0, 5, "z", -1, 1.0]), a.odd_int()),
        lambda: write_label_list(out, a.labels(), a.pick([None, ["a", "b"], ["a", "b", "c"]])),
        lambda: write_xc(out, a.array(), a.labels()),
    ]


def run(seed: int, n_calls: int) -> int:
    """``n_calls`` random calls; returns how many returned a result (not an error)."""
    a = Args(np.random.default_rng(seed))
    ok = 0
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calls = _calls(a, tmp)
        for _ in range(n_calls):
            try:
                a.pick(calls)()
                ok += 1
            except ALLOWED:
                pass
    return ok
