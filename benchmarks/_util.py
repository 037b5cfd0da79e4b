"""Timing and reporting helpers shared by the benchmark files."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict

import numpy as np

RESULTS = os.path.join(os.path.dirname(__file__), "results")
SMALL = {1_000_000: 20_000, 4_000_000: 40_000, 20_000: 2_000, 50_000: 4_000, 100_000: 3_000}


def bench_size() -> str:
    return os.environ.get("LABELEMB_BENCH", "small")


def scaled(n: int) -> int:
    """``n`` in full mode, a small stand-in otherwise."""
    return n if bench_size() == "full" else SMALL.get(n, max(1, n // 100))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def synthetic_labels(n: int, L: int, seed: int = 0):
    """The shared synthetic topic set (cached on disk: generating 4M samples takes a while)."""
    import scipy.sparse as sp

    import labelemb

    n, L = scaled(n), scaled(L)
    cache = os.path.join(os.environ.get("LABELEMB_BENCH_CACHE", "/tmp/labelemb-bench"),
                         f"topic_{n}_{L}_{seed}.npz")
    if os.path.exists(cache):
        return sp.load_npz(cache).tocsr()
    Y = labelemb.make_topic_labels(n, L, seed=seed).labels
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    sp.save_npz(cache, Y, compressed=False)
    return Y


def timeit(fn: Callable, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def compare(title: str, funcs: Dict[str, Callable], repeats: int = 3, baseline: str = None,
            extra: dict = None) -> Dict[str, float]:
    """Time each function in turn (interleaved rounds, same run), print the medians and the
    ratio of each peer to ``baseline`` (default: the first entry), and save them as JSON."""
    names = list(funcs)
    baseline = baseline or names[0]
    for fn in funcs.values():
        fn()  # warm-up
    samples = {k: [] for k in names}
    for _ in range(repeats):
        for k in names:  # interleaved, so a noisy moment hits every contender
            gc.collect()
            t = time.perf_counter()
            funcs[k]()
            samples[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"\n== {title}  [{bench_size()} sizes; {machine()}]")
    for k in names:
        ratio = med[k] / med[baseline]
        print(f"  {k:<40s} {med[k] * 1e3:10.1f} ms   {ratio:6.2f}x {baseline}'s time")
    if extra:
        for k, v in extra.items():
            print(f"  {k}: {v}")
    os.makedirs(RESULTS, exist_ok=True)
    tag = title.lower().replace(" ", "_").replace(",", "").replace("=", "")
    with open(os.path.join(RESULTS, f"{bench_size()}_{tag}.json"), "w") as f:
        json.dump({"title": title, "size": bench_size(), "machine": machine(),
                   "median_seconds": med, "samples": samples, "extra": extra or {},
                   "env": {k: os.environ.get(k)
                           for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}},
                  f, indent=1, default=float)
    return med


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_memory(fn: Callable):
    """Run ``fn()`` once; return ``(result, peak extra resident bytes during the call)``.

    Resets the kernel's high-water mark (``/proc/self/clear_refs``, Linux) so the peak is
    that of this call alone, native allocations included (tracemalloc would miss them).
    """
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status("VmRSS")
    out = fn()
    return out, _status("VmHWM") - before


def array_bytes(*arrays) -> int:
    total = 0
    for a in arrays:
        if hasattr(a, "indptr"):
            total += a.indptr.nbytes + a.indices.nbytes + a.data.nbytes
        elif isinstance(a, np.ndarray):
            total += a.nbytes
    return total


def read_runs(path: str) -> Dict[str, dict]:
    """The finished runs of a JSON-lines cache, by their ``key`` (empty if no file yet)."""
    runs = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    runs[r["key"]] = r
    return runs
