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

# MemoryError: an allocation that fails (the campaigns run under a lowered address-space
# limit) must surface as MemoryError, never as an abort inside a parallel region.
ALLOWED = (ValueError, TypeError, IndexError, OverflowError, MemoryError)
THREAD_LIMIT = _core.thread_limit()


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

    def value(self) -> float:
        """Like float_, but NaN and +-Inf rarer, and 0.0 once the input is used up."""
        kind = self.byte() % 16
        if kind in (1, 2, 3):
            return [float("nan"), float("inf"), -float("inf")][kind - 1]
        raw = bytes(self.byte() for _ in range(4))
        v = struct.unpack("<f", raw)[0]
        return 0.0 if not np.isfinite(v) else float(np.clip(v, -1e6, 1e6))

    def float_array(self, shape, dtype=np.float32) -> np.ndarray:
        """Mostly finite values, sometimes NaN or Inf (the bindings do not check them)."""
        n = int(np.prod(shape))
        return np.array([self.value() for _ in range(n)], dtype=dtype).reshape(shape)

    def rarely(self, k: int) -> bool:
        """True one time in k; never once the input is used up (so short inputs stay
        well-formed and reach the kernels)."""
        return self.byte() % k == 1

    def threads(self) -> int:
        """num_threads: 1 or 2 mostly, now and then 0 (all cores), a few more than the cores,
        the limit, or past it (refused by every binding)."""
        kind = self.byte() % 32
        if kind == 1:
            return 0
        if kind == 2:
            return self.int_in(3, 8)
        if kind == 3:
            return [THREAD_LIMIT, THREAD_LIMIT + 1, 100_000, -1, 2**31 - 1][self.byte() % 5]
        return 1 + kind % 2

    def nudge(self, n: int) -> int:
        """`n` most of the time, else n - 1 or n + 1 (never negative): shapes that almost
        match."""
        kind = self.byte() % 8
        return max(n - 1, 0) if kind == 1 else n + 1 if kind == 2 else n


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
    return _core.cooccurrence(indptr, indices, n_labels, r.threads())


def target_pmi(r: Reader):
    itype = np.int32 if r.byte() % 2 else np.int64
    indptr, indices = _csr(r, itype)
    counts = r.int_array(len(indices) + (r.byte() % 3 == 0), np.int64)
    L = len(indptr) - 1
    h = np.array([r.float_() for _ in range(max(L + (r.byte() % 5 == 0), 0))], dtype=np.float64)
    diag = None if r.byte() % 2 else np.array([r.float_() for _ in range(L)], dtype=np.float64)
    return _core.pmi(indptr, indices, counts, h, diag, r.float_(), abs(r.float_()),
                     r.wild_int(), bool(r.byte() % 2), r.threads())


def target_sum_counts(r: Reader):
    itype = np.int64 if r.rarely(2) else np.int32
    n_labels = r.wild_int() if r.rarely(6) else r.int_in(1, 6)
    parts = r.nudge(r.int_in(1, 3))
    indptrs, indices, data = [], [], []
    for _ in range(parts):
        L = min(max(n_labels, 0), 1000)  # past that, the lengths do not match n_labels
        nnz = r.int_in(0, 16)
        # rows past the first 8 are empty (a huge n_labels stays cheap to build)
        cuts = np.sort(np.array([r.int_in(0, nnz) for _ in range(min(L - 1, 8))], np.int64))
        cuts = np.concatenate([cuts, np.full(max(L - 1 - len(cuts), 0), nnz, np.int64)])
        ip = np.concatenate([[0], cuts, [nnz]]).astype(np.int64) if L else np.zeros(1, np.int64)
        if r.rarely(6):
            ip = r.int_array(r.nudge(len(ip)), np.int64)
        # small counts, sometimes 0 or negative (they may cancel) or huge
        ix = np.array([r.int_in(0, L) if r.rarely(8) else r.int_in(0, max(min(L, 9) - 1, 0))
                       for _ in range(nnz)], dtype=itype)
        d = np.array([r.wild_int() if r.rarely(3) else r.int_in(1, 3)
                      for _ in range(r.nudge(nnz))], dtype=np.int64)
        indptrs.append(ip)
        indices.append(ix)
        data.append(d)
    if parts and r.rarely(8):
        data.pop()
    return _core.sum_counts(indptrs, indices, data, n_labels, r.threads())


def _exclusions(r: Reader, n: int, L: int):
    if not r.rarely(3):
        return None, None
    counts = [r.int_in(0, 3) for _ in range(r.nudge(n))]
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if r.rarely(5):
        indptr = r.int_array(len(indptr), np.int64)
    # sorted unique ids in [0, L) mostly; repeats, unsorted or out-of-range ones sometimes
    rows = []
    for c in counts:
        row = np.array([r.int_in(0, L) if r.rarely(6) else r.int_in(0, max(L - 1, 0))
                        for _ in range(c)], dtype=np.int64)
        rows.append(row if r.rarely(5) else np.unique(row))
    indptr[1:] = np.minimum(indptr[1:], indptr[0] + np.cumsum([len(x) for x in rows]))
    indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    if r.rarely(6):
        return indptr, None
    return indptr, indices


def _queries_vectors(r: Reader):
    n, L, d = r.int_in(0, 6), r.int_in(1, 9), r.int_in(1, 5)
    q = r.float_array((n, d))
    v = r.float_array((L, r.nudge(d)))
    if r.rarely(10):
        q = q.reshape(-1)  # wrong number of dimensions
    if r.rarely(10):
        v = np.asfortranarray(v)  # a layout noconvert refuses (when it is not C order too)
    if r.rarely(10):
        q = q.astype(np.float64)  # a dtype noconvert refuses
    return q, v, n, L


def _k_and_blocks(r: Reader, L: int):
    k = r.wild_int() if r.rarely(6) else r.int_in(1, max(L, 1))
    qb = r.wild_int() if r.rarely(6) else r.int_in(0, 4)
    lb = r.wild_int() if r.rarely(6) else r.int_in(0, 4)
    return k, qb, lb


def _outputs(r: Reader, n: int, k: int, itype):
    kk = min(max(k, 0), 12)
    scores = np.empty((r.nudge(n), kk), dtype=np.float32)
    ids = np.empty((n, r.nudge(kk)), dtype=np.int64 if r.rarely(10) else itype)
    return scores, ids


def target_topk(r: Reader):
    q, v, n, L = _queries_vectors(r)
    k, qb, lb = _k_and_blocks(r, L)
    ex_indptr, ex_indices = _exclusions(r, n, L)
    scores, ids = _outputs(r, n, k, np.int64 if r.rarely(2) else np.int32)
    return _core.topk(q, v, k, ex_indptr, ex_indices, scores, ids, r.threads(), qb, lb)


def target_topk_clustered(r: Reader):
    q, v, n, L = _queries_vectors(r)
    d = v.shape[1]
    itype = np.int64 if r.rarely(2) else np.int32
    nc = r.nudge(r.int_in(1, 4))
    # A well-formed index (ids a permutation, delta non-increasing per cluster, offsets
    # from 0 to L), then now and then broken in one place.
    cuts = np.sort(np.array([r.int_in(0, L) for _ in range(max(nc - 1, 0))], dtype=np.int64))
    offsets = np.concatenate([[0], cuts, [L]]).astype(np.int64) if nc else np.zeros(1, np.int64)
    ids = np.argsort(np.array([r.byte() for _ in range(L)]), kind="stable").astype(itype)
    delta = np.abs(r.float_array((L,), np.float64))
    delta[~np.isfinite(delta)] = 1.0
    for c in range(nc):
        lo, hi = offsets[c], offsets[c + 1]
        delta[lo:hi] = np.sort(delta[lo:hi])[::-1]
    sorted_v = np.ascontiguousarray(v[ids.astype(np.int64)])
    centres = r.float_array((r.nudge(max(nc, 1)), d))
    if r.rarely(8):
        ids[r.int_in(0, L - 1)] = r.wild_int() % 2**31
    if r.rarely(8):
        delta[r.int_in(0, L - 1)] = [float("nan"), -1.0, 1e300, float("inf")][r.int_in(0, 3)]
    if r.rarely(8):
        offsets = r.int_array(r.nudge(len(offsets)), np.int64)
    if r.rarely(8):
        sorted_v = r.float_array((r.nudge(L), d))
    k, qb, lb = _k_and_blocks(r, L)
    ex_indptr, ex_indices = _exclusions(r, n, L)
    scores, out_ids = _outputs(r, n, k, itype)
    return _core.topk_clustered(q, v, sorted_v, ids, delta, offsets, centres, k, ex_indptr,
                                ex_indices, scores, out_ids, r.threads(), qb, lb)


def target_threshold(r: Reader):
    q, v, _, L = _queries_vectors(r)
    _, qb, lb = _k_and_blocks(r, L)
    return _core.threshold(q, v, r.float_() if r.rarely(8) else r.value() / 100, r.threads(),
                           qb, lb)


def _square_csr(r: Reader, itype, n: int):
    """A square CSR matrix (float32 values): symmetric with sorted rows, as a PMI matrix
    is, unless broken."""
    dense = np.zeros((n, n), dtype=np.float32)
    for _ in range(r.int_in(0, 12)):
        x = r.value()
        dense[r.int_in(0, n - 1), r.int_in(0, n - 1)] = x if np.isfinite(x) or r.rarely(4) else 0.5
    with np.errstate(all="ignore"):  # inf - inf
        dense = dense + dense.T
    nz = dense != 0
    indptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int64)
    indices = np.nonzero(nz)[1].astype(itype)
    data = dense[nz].astype(np.float32)
    if r.rarely(8):
        indptr = r.int_array(r.nudge(len(indptr)), np.int64)
    if r.rarely(8) and len(indices):
        indices[r.int_in(0, len(indices) - 1)] = r.wild_int() % 2**31
    if r.rarely(8):
        indices = indices[::-1].copy()  # unsorted rows
    if r.rarely(8):
        data = r.float_array((r.nudge(len(data)),))
    return indptr, indices, data


def target_eigh_csr(r: Reader):
    itype = np.int64 if r.rarely(2) else np.int32
    n = r.nudge(r.int_in(2, 7))
    indptr, indices, data = _square_csr(r, itype, max(n, 1))
    n = len(indptr) - 1
    k = r.wild_int() if r.rarely(6) else r.int_in(1, max(n - 1, 1))
    kk = min(max(k, 0), 8)
    values = np.empty(r.nudge(kk), dtype=np.float64)
    vectors = np.empty((r.nudge(max(n, 0)), kk), dtype=np.float32)
    oversample = r.wild_int() if r.rarely(6) else r.int_in(0, 4)
    n_iter = r.wild_int() if r.rarely(6) else r.int_in(0, 3)
    return _core.eigh_csr(indptr, indices, data, k, oversample, n_iter, not r.rarely(2),
                          r.int_in(0, 2**16), values, vectors, r.threads())


def target_csr_spmm(r: Reader):
    itype = np.int64 if r.rarely(2) else np.int32
    n_rows, n_cols = r.int_in(0, 6), r.int_in(0, 8)
    nnz = r.int_in(0, 16)
    cuts = np.sort(np.array([r.int_in(0, nnz) for _ in range(max(n_rows - 1, 0))], np.int64))
    indptr = (np.concatenate([[0], cuts, [nnz]]).astype(np.int64) if n_rows
              else np.zeros(1, np.int64))
    if r.rarely(8):
        indptr = r.int_array(r.nudge(len(indptr)), np.int64)
    indices = np.array([r.int_in(0, n_cols) if r.rarely(8) else r.int_in(0, max(n_cols - 1, 0))
                        for _ in range(nnz)], dtype=itype)
    data = r.float_array((r.nudge(nnz),))
    w = r.int_in(0, 60)  # past one 48-column panel now and then
    if r.rarely(8):
        n_cols = r.wild_int()
    xt = r.float_array((w, r.nudge(max(min(n_cols, 8), 0))), np.float64)
    yt = np.zeros((r.nudge(w), r.nudge(n_rows)), dtype=np.float64)
    return _core.csr_spmm(indptr, indices, data, n_cols, xt, yt, r.threads())


TARGETS = [target_cooccurrence, target_pmi, target_sum_counts, target_topk,
           target_topk_clustered, target_threshold, target_eigh_csr, target_csr_spmm]


def extra_targets():
    """Targets of kernels that register themselves in ``targets_extra`` (optional)."""
    try:
        from targets_extra import TARGETS as MORE  # noqa: PLC0415
    except ImportError:
        return []
    return MORE


def run_one(data: bytes, only: str | None = None) -> None:
    """The first byte picks the target, the rest are its arguments; with `only` (a
    target's name without ``target_``), every input goes to that target."""
    targets = TARGETS + extra_targets()
    if only:
        by_name = {t.__name__.removeprefix("target_"): t for t in targets}
        if only not in by_name:
            raise ValueError(f"no fuzz target {only!r}; there are {sorted(by_name)}")
        target, r = by_name[only], Reader(data)
    else:
        if not data:
            return
        r = Reader(data[1:])
        target = targets[data[0] % len(targets)]
    try:
        target(r)
    except ALLOWED:
        pass
