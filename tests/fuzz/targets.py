"""Fuzz targets over the native entry points, independent of the fuzzing engine.

Each target reads its arguments from a byte string (``Reader``) and calls one binding of
``labelemb._core`` directly, bypassing the Python validation, with arrays that may be
malformed in every way the bindings must catch: wrong lengths, unsorted or out-of-range
indices, negative or non-monotone offsets, odd shapes. Allowed outcomes: a result, or
ValueError / TypeError / IndexError / OverflowError. Anything else, or a crash of the
interpreter, is a bug. ``fuzz_core.py`` drives them with atheris; ``test_fuzz_corpus``
replays the saved corpus and a deterministic random sweep under pytest.
"""

from __future__ import annotations

import struct

import numpy as np

from labelemb import _core

ALLOWED = (ValueError, TypeError, IndexError, OverflowError)


class Reader:
    """Consumes a byte string as small integers and floats; yields zeros once empty."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def int_in(self, lo: int, hi: int) -> int:
        span = hi - lo + 1
        v = self.byte() | (self.byte() << 8)
        return lo + v % span

    def wild_int(self) -> int:
        """Mostly small, sometimes huge or negative (index-limit edge cases)."""
        kind = self.byte() % 8
        if kind == 0:
            return -self.int_in(1, 3)
        if kind == 1:
            return [2**31 - 1, 2**31, 2**32, 2**63 - 1][self.byte() % 4]
        return self.int_in(0, 12)

    def float_(self) -> float:
        kind = self.byte() % 10
        if kind == 0:
            return float("nan")
        if kind == 1:
            return float("inf")
        raw = bytes(self.byte() for _ in range(4))
        v = struct.unpack("<f", raw)[0]
        return 0.0 if not np.isfinite(v) else float(np.clip(v, -1e6, 1e6))

    def int_array(self, n: int, dtype) -> np.ndarray:
        info = np.iinfo(dtype)
        vals = [min(max(self.wild_int(), info.min), info.max) for _ in range(n)]
        return np.array(vals, dtype=dtype)


def _csr(r: Reader, index_dtype):
    n = r.int_in(0, 6)
    nnz = r.int_in(0, 16)
    if r.byte() % 3 == 0:  # a well-formed prefix most of the time
        indptr = r.int_array(n + 1, np.int64)
    else:
        cuts = np.sort(np.array([r.int_in(0, nnz) for _ in range(max(n - 1, 0))], dtype=np.int64))
        indptr = np.concatenate([[0], cuts, [nnz]]).astype(np.int64) if n else np.array(
            [0], dtype=np.int64)
    indices = r.int_array(nnz, index_dtype)
    return indptr, indices


def target_cooccurrence(r: Reader):
    indptr, indices = _csr(r, np.int32 if r.byte() % 2 else np.int64)
    n_labels = r.wild_int()
    if n_labels > 10**6:
        n_labels = 10**6 + r.int_in(0, 10)  # keep allocations bounded
    return _core.cooccurrence(indptr, indices, n_labels, r.int_in(1, 2))


def target_pmi(r: Reader):
    itype = np.int32 if r.byte() % 2 else np.int64
    indptr, indices = _csr(r, itype)
    counts = r.int_array(len(indices) + (r.byte() % 3 == 0), np.int64)
    L = len(indptr) - 1
    h = np.array([r.float_() for _ in range(max(L + (r.byte() % 5 == 0), 0))], dtype=np.float64)
    diag = None if r.byte() % 2 else np.array([r.float_() for _ in range(L)], dtype=np.float64)
    return _core.pmi(indptr, indices, counts, h, diag, r.float_(), abs(r.float_()),
                     r.wild_int(), bool(r.byte() % 2), r.int_in(1, 2))


TARGETS = [target_cooccurrence, target_pmi]


def extra_targets():
    """Targets of kernels that register themselves in ``targets_extra`` (optional)."""
    try:
        from targets_extra import TARGETS as MORE  # noqa: PLC0415
    except ImportError:
        return []
    return MORE


def run_one(data: bytes) -> None:
    targets = TARGETS + extra_targets()
    if not data:
        return
    r = Reader(data[1:])
    target = targets[data[0] % len(targets)]
    try:
        target(r)
    except ALLOWED:
        pass
