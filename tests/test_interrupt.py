"""Ctrl-C during a long native call stops it promptly with KeyboardInterrupt.

Each test first times a tenth of the work, so that the interrupted call surely runs
long enough for the signal to land inside a kernel; "promptly" is within 2 s.
"""

import math
import os
import signal
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

import labelemb
from labelemb import LabelEmbedding

posix_only = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
DELAY = 0.3  # seconds from the call to the Ctrl-C


def _heavy_labels():
    # 150,000 samples x 80 labels out of 1,000: ~500M pair updates, seconds of work.
    rng = np.random.default_rng(0)
    n, k, L = 150_000, 80, 1000
    idx = np.sort(rng.choice(L, size=(n, k)), axis=1)
    Y = sp.csr_matrix((np.ones(n * k, dtype=np.float32), idx.ravel(),
                       np.arange(0, n * k + 1, k)), shape=(n, L))
    Y.sum_duplicates()
    return Y


@posix_only
def test_ctrl_c_stops_cooccurrence():
    Y = _heavy_labels()
    t0 = time.perf_counter()
    labelemb.cooccurrence(Y[:15_000])
    small = time.perf_counter() - t0
    # a fast idle machine: repeat the rows until the whole call takes over 0.6 s
    reps = max(1, math.ceil(0.6 / (small * 10)))
    if reps > 1:
        Y = sp.vstack([Y] * reps, format="csr")
        small *= reps
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


def _timed(call) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def _interrupted_after(delay: float, call) -> float:
    """Sends SIGINT to this process `delay` seconds into `call`; the seconds until
    KeyboardInterrupt came out of it."""
    # Python's own handler, even when the test runner was started with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
        t0 = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            call()
        elapsed = time.perf_counter() - t0
        timer.join()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    return elapsed


def _enough_iterations(small: float, delay: float = DELAY) -> int:
    """Power iterations (400 or more) for a call that `small` (40 iterations) says
    lasts well over `delay` + 1 s, however fast the machine."""
    return 400 * max(1, math.ceil((delay + 1.5) / (small * 10)))


def _check_prompt(small: float, big, delay: float = DELAY) -> None:
    """`small`: seconds of a tenth of the work of `big` (a call)."""
    assert small * 10 > delay + 1.0, "input too small to interrupt meaningfully"
    elapsed = _interrupted_after(delay, big)
    assert elapsed < min(small * 10, delay + 2.0), (elapsed, small * 10)


@pytest.fixture(scope="module")
def search_data():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((60_000, 64)).astype(np.float32)
    v = rng.standard_normal((50_000, 64)).astype(np.float32)
    return q, v


@posix_only
@pytest.mark.parametrize("kind", ["topk", "threshold", "index"])
def test_ctrl_c_stops_search(search_data, kind):
    q, v = search_data
    if kind == "topk":
        def run(x):
            return labelemb.topk(x, v, 10)
    elif kind == "threshold":
        def run(x):
            return labelemb.threshold(x, v, 40.0)
    else:
        # random vectors: the pruned search scores nearly everything, so it is long
        index = labelemb.TopkIndex(v, n_clusters=64, n_iter=1)

        def run(x):
            return index.search(x, 10)
    small = _timed(lambda: run(q[: len(q) // 10]))
    _check_prompt(small, lambda: run(q))
    # the handler is restored and the kernel still works afterwards
    assert run(q[:3]) is not None


@pytest.fixture(scope="module")
def counts():
    data = labelemb.make_topic_labels(20_000, 3000, seed=0)
    return labelemb.cooccurrence(data.labels)


@posix_only
@pytest.mark.filterwarnings("ignore::labelemb.EmbeddingWarning")
def test_ctrl_c_stops_fit_embeddings(counts):
    # The eigendecomposition dominates with many power iterations (n_iter + 3 sparse
    # products); Ctrl-C lands in a product or between two.
    small = _timed(lambda: labelemb.fit_embeddings(counts, dim=64, n_iter=40))
    n = _enough_iterations(small)
    _check_prompt(small * n / 400, lambda: labelemb.fit_embeddings(counts, dim=64, n_iter=n))
    assert labelemb.fit_embeddings(counts, dim=8, n_iter=1).dim == 8


@posix_only
@pytest.mark.filterwarnings("ignore::labelemb.EmbeddingWarning")
def test_ctrl_c_stops_randomized_eigh(counts):
    P = labelemb.pmi_matrix(counts)
    small = _timed(lambda: labelemb.randomized_eigh(P, 64, n_iter=40))
    n = _enough_iterations(small)
    _check_prompt(small * n / 400, lambda: labelemb.randomized_eigh(P, 64, n_iter=n))


@posix_only
def test_ctrl_c_while_saving_keeps_the_old_file(tmp_path, monkeypatch):
    """A real SIGINT in the middle of LabelEmbedding.save: the previous file stays whole and
    no temporary file is left behind."""
    rng = np.random.default_rng(0)
    v = rng.standard_normal((50, 4)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    path = tmp_path / "emb.npz"
    LabelEmbedding(v, [f"l{i}" for i in range(50)]).save(path)
    before = path.read_bytes()
    savez = np.savez

    def slow_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # KeyboardInterrupt is raised in here
            time.sleep(0.01)
        savez(f, **arrays)

    monkeypatch.setattr(np, "savez", slow_savez)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            LabelEmbedding(v[:, ::-1].copy(), None).save(path)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["emb.npz"]
    assert path.read_bytes() == before
    assert LabelEmbedding.load(path).dim == 4
