"""Ctrl-C during a long native call stops it promptly with KeyboardInterrupt."""

import os
import signal
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

import labelemb


def _heavy_labels():
    # 150,000 samples x 80 labels out of 1,000: ~500M pair updates, seconds of work.
    rng = np.random.default_rng(0)
    n, k, L = 150_000, 80, 1000
    idx = np.sort(rng.choice(L, size=(n, k)), axis=1)
    Y = sp.csr_matrix((np.ones(n * k, dtype=np.float32), idx.ravel(),
                       np.arange(0, n * k + 1, k)), shape=(n, L))
    Y.sum_duplicates()
    return Y


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_stops_cooccurrence():
    Y = _heavy_labels()
    t0 = time.perf_counter()
    labelemb.cooccurrence(Y[:15_000])
    small = time.perf_counter() - t0
    assert small * 10 > 0.5, "input too small to interrupt meaningfully"
    # Python's own handler, even when the test runner was started with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            labelemb.cooccurrence(Y)
        elapsed = time.perf_counter() - t0
        timer.join()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert elapsed < min(small * 10, 0.3 + 1.5), (elapsed, small * 10)
    # the handler is restored and the kernel still works afterwards
    assert labelemb.cooccurrence([[0, 1]]).n_pairs == 1
