"""Sparse input features: SparseLinear vs densifying each batch.

Figures (``LABELEMB_BENCH=full``; the small sizes run in CI in seconds):

* A training step and an epoch of an MLP 1024 wide over 100,000 samples with 10^5 columns
  and 3 or 50 non-zeros per row (columns drawn uniformly: the most distinct rows per batch,
  the worst case for the sparse layer): ``mlp(F, [1024], sparse=True)`` on CSR batches
  (SparseLinear with its row-sparse gradient, SparseAdamW as ``fit`` builds it) against the
  same MLP with ``nn.Linear`` on each batch densified (AdamW). Steps are timed interleaved
  on the same batches; the epoch of the densified model is its median step times the
  steps of an epoch, the sparse one is also measured end to end with ``fit``.
* 10^6 columns: the peak resident memory of ``fit`` for one epoch, in a fresh process,
  against the CSR matrix plus the model's parameters (densifying the data set would take
  100,000 x 10^6 x 4 bytes = 400 GB), with ``"adamw"`` (two moments per parameter) and
  plain SGD (no optimizer state).
* Dense rows: ``mlp(F, [1024], sparse=True)`` against ``mlp(F, [1024])``, for the choice
  of ``mlp``'s default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
from _util import RESULTS, bench_size, compare, machine

torch = pytest.importorskip("torch")

from labelemb.torch import SparseLabels, fit, make_model, mlp  # noqa: E402
from labelemb.torch.losses import sparse_bce_with_logits  # noqa: E402
from labelemb.torch.sparse import SparseAdamW, csr_batch  # noqa: E402

FULL = bench_size() == "full"
N = 100_000 if FULL else 2_000
COLUMNS = (100_000, 1_000_000) if FULL else (5_000, 50_000)
NNZ = (3, 50)
WIDTH = 1024 if FULL else 64
L = 1_000 if FULL else 50
LABELS_PER_SAMPLE = 3
BATCH = 256
LR = 1e-3


@pytest.fixture(scope="module", autouse=True)
def threads():
    n = torch.get_num_threads()
    default = min(2, os.cpu_count() or 1) if FULL else 1
    torch.set_num_threads(int(os.environ.get("LABELEMB_BENCH_TORCH_THREADS", default)))
    yield
    torch.set_num_threads(n)


def sparse_data(n: int, columns: int, nnz: int, seed: int = 0):
    """``n`` TF-IDF-like rows (``nnz`` uniform columns, positive values, unit length) and
    ``LABELS_PER_SAMPLE`` random labels of ``L`` per row."""
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.integers(0, columns, size=(n, nnz), dtype=np.int64), axis=1)
    vals = rng.exponential(size=(n, nnz)).astype(np.float32)
    vals /= np.linalg.norm(vals, axis=1, keepdims=True)
    X = sp.csr_matrix((vals.ravel(), cols.ravel().astype(np.int32),
                       np.arange(0, n * nnz + 1, nnz)), shape=(n, columns))
    X.sum_duplicates()
    labels = rng.integers(0, L, size=(n, LABELS_PER_SAMPLE))
    Y = sp.csr_matrix((np.ones(labels.size, np.float32), labels.ravel(),
                       np.arange(0, labels.size + 1, LABELS_PER_SAMPLE)), shape=(n, L))
    Y.sum_duplicates()
    Y.data[:] = 1.0
    return X, Y


def csr_bytes(X) -> int:
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def model_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def stepper(model, opt, X, Y, to_input):
    """One training step per call, on the next batch of a fixed shuffled order."""
    order = np.random.default_rng(1).permutation(X.shape[0])
    state = {"at": 0}

    def step():
        s = state["at"] % max(1, X.shape[0] - BATCH)
        state["at"] += BATCH
        idx = np.sort(order[s:s + BATCH])
        y = SparseLabels.from_scipy(Y[idx])
        loss = sparse_bce_with_logits(model(to_input(X[idx])), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _models(columns: int):
    torch.manual_seed(0)
    sparse = make_model(mlp(columns, [WIDTH], sparse=True), WIDTH, "bce", n_labels=L)
    torch.manual_seed(0)
    dense = make_model(mlp(columns, [WIDTH]), WIDTH, "bce", n_labels=L)
    return sparse, dense


@pytest.mark.parametrize("nnz", NNZ)
def test_epoch_sparse_vs_densified(benchmark, nnz):
    columns = COLUMNS[0]
    X, Y = sparse_data(N, columns, nnz)
    sparse, dense = _models(columns)
    funcs = {
        "SparseLinear on CSR batches": stepper(
            sparse, SparseAdamW(sparse.parameters(), lr=LR, weight_decay=0.0), X, Y,
            csr_batch),
        "nn.Linear on densified batches": stepper(
            dense, torch.optim.AdamW(dense.parameters(), lr=LR, weight_decay=0.0), X, Y,
            lambda rows: torch.from_numpy(rows.toarray())),
    }
    steps = -(-N // BATCH)
    med = compare(f"sparse first layer step n{N} f{columns} nnz{nnz} width{WIDTH} L{L}",
                  funcs, repeats=9 if FULL else 3)
    a, b = (med[k] for k in funcs)
    torch.manual_seed(0)
    model = make_model(mlp(columns, [WIDTH], sparse=True), WIDTH, "bce", n_labels=L)
    h = fit(model, (X, Y), epochs=1, lr=LR, batch_size=BATCH, device="cpu", progress=False)
    epoch = h.epochs[0]["train_time"]
    print(f"  epoch of {steps} steps: sparse {a * steps:.1f} s from the median step, "
          f"{epoch:.1f} s measured with fit; densified {b * steps:.1f} s from the median "
          f"step; densified / sparse = {b / a:.1f}x per step, {b * steps / epoch:.1f}x "
          f"against fit's epoch")
    _save(f"sparse_epoch_f{columns}_nnz{nnz}", {
        "step_seconds": med, "steps_per_epoch": steps, "fit_epoch_seconds": epoch,
        "ratio_per_step": b / a, "setup": dict(n=N, columns=columns, nnz=nnz, width=WIDTH,
                                                L=L, batch=BATCH)})
    benchmark.pedantic(funcs["SparseLinear on CSR batches"], rounds=3)


_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    sys.path.insert(0, {bench_dir!r})
    import torch
    from labelemb.torch import fit, make_model, mlp
    from test_bench_sparse import L, WIDTH, BATCH, LR, csr_bytes, model_bytes, sparse_data

    def rss(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

    torch.set_num_threads({threads})
    start = rss("VmRSS")
    X, Y = sparse_data({n}, {columns}, {nnz})
    torch.manual_seed(0)
    model = make_model(mlp({columns}, [WIDTH], sparse=True), WIDTH, "bce", n_labels=L)
    ready = rss("VmRSS")
    opt = "adamw" if {optimizer!r} == "adamw" else (
        lambda groups, lr: torch.optim.SGD(groups, lr=lr))
    h = fit(model, (X, Y), epochs=1, lr=LR, batch_size=BATCH, device="cpu", optimizer=opt,
            progress=False)
    print(json.dumps(dict(start=start, ready=ready, peak=rss("VmHWM"), csr=csr_bytes(X),
                          labels=csr_bytes(Y), model=model_bytes(model),
                          epoch=h.epochs[0]["train_time"])))
""")


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
@pytest.mark.parametrize("nnz", NNZ if FULL else NNZ[:1])  # a fresh process costs seconds
def test_peak_memory_million_columns(nnz, optimizer):
    columns = COLUMNS[1]
    # the weight, and for AdamW its two moments, all dense (in_features x width float32)
    need = columns * WIDTH * 4 * (3 if optimizer == "adamw" else 1) + 2**30
    with open("/proc/meminfo") as f:
        available = next(int(line.split()[1]) * 1024 for line in f
                         if line.startswith("MemAvailable:"))
    if available < need:
        pytest.skip(f"needs about {need / 2**30:.1f} GiB free, {available / 2**30:.1f} GiB "
                    "available")
    code = _CHILD.format(bench_dir=os.path.dirname(os.path.abspath(__file__)), n=N,
                         columns=columns, nnz=nnz, optimizer=optimizer,
                         threads=torch.get_num_threads())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONWARNINGS": "error"})
    r = json.loads(out.stdout.strip().splitlines()[-1])
    budget = 2 * (r["csr"] + r["model"])
    gib = 2.0**30
    print(f"\n== peak memory, fit one epoch n{N} f{columns} nnz{nnz} width{WIDTH} L{L} "
          f"optimizer={optimizer} [{bench_size()} sizes; {machine()}]")
    print(f"  CSR {r['csr'] / gib:.3f} GiB, parameters {r['model'] / gib:.3f} GiB, "
          f"process before the data {r['start'] / gib:.3f} GiB; peak RSS {r['peak'] / gib:.3f} "
          f"GiB = {r['peak'] / (r['csr'] + r['model']):.2f}x (CSR + parameters), "
          f"{'below' if r['peak'] < budget else 'ABOVE'} 2x; epoch {r['epoch']:.1f} s; "
          f"densified data set: {N * columns * 4 / gib:.0f} GiB")
    _save(f"sparse_memory_f{columns}_nnz{nnz}_{optimizer}", r)
    assert r["peak"] > r["model"]  # the measurement saw the model


@pytest.mark.parametrize("nnz", NNZ)
def test_first_layer_kernels(benchmark, nnz):
    """Forward + backward of the first layer alone (batch 256, 10^5 columns): the kernels
    SparseLinear could use, on the same batch."""
    import warnings

    import torch.nn.functional as F

    columns = COLUMNS[0]
    X, _ = sparse_data(BATCH, columns, nnz)
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(columns, WIDTH) / columns**0.5)
    linear = torch.nn.Parameter(weight.detach().t().contiguous())  # nn.Linear's layout
    csr = csr_batch(X)
    crow, col, val = csr.crow_indices(), csr.col_indices(), csr.values()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's "beta" notes on sparse CSR
        coo = csr.to_sparse_coo()
    g = torch.randn(BATCH, WIDTH)

    def run(forward, param):
        def step():
            param.grad = None
            (forward() * g).sum().backward()
        return step

    def bag(sparse):
        return lambda: F.embedding_bag(col, weight, crow, mode="sum", sparse=sparse,
                                       per_sample_weights=val, include_last_offset=True)

    funcs = {
        "embedding_bag, row-sparse gradient": run(bag(True), weight),
        "embedding_bag, dense gradient": run(bag(False), weight),
        "torch.sparse.mm, CSR": run(lambda: torch.sparse.mm(csr, weight), weight),
        "torch.sparse.mm, COO": run(lambda: torch.sparse.mm(coo, weight), weight),
        "densified batch @ nn.Linear weight": run(
            lambda: torch.from_numpy(X.toarray()) @ linear.t(), linear),
    }
    compare(f"first layer kernels batch{BATCH} f{columns} nnz{nnz} width{WIDTH}", funcs,
            repeats=9 if FULL else 3)
    benchmark.pedantic(funcs["embedding_bag, row-sparse gradient"], rounds=3)


def test_dense_inputs_sparse_linear_vs_linear(benchmark):
    columns = 2_000 if FULL else 500
    rng = np.random.default_rng(0)
    Xd = sp.csr_matrix(rng.random((4 * BATCH, columns), dtype=np.float32))
    _, Y = sparse_data(4 * BATCH, 10, 1)
    sparse, dense = _models(columns)
    to_dense = lambda rows: torch.from_numpy(rows.toarray())  # noqa: E731
    funcs = {
        "nn.Linear (mlp), AdamW": stepper(
            dense, torch.optim.AdamW(dense.parameters(), lr=LR, weight_decay=0.0), Xd, Y,
            to_dense),
        "SparseLinear (mlp sparse=True), SparseAdamW": stepper(
            sparse, SparseAdamW(sparse.parameters(), lr=LR, weight_decay=0.0), Xd, Y,
            to_dense),
    }
    compare(f"dense inputs first layer step f{columns} width{WIDTH} L{L}", funcs,
            repeats=9 if FULL else 3)
    benchmark.pedantic(funcs["SparseLinear (mlp sparse=True), SparseAdamW"], rounds=3)


def _save(stem: str, record: dict) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{bench_size()}_{stem}.json"), "w") as f:
        json.dump({"machine": machine(), "size": bench_size(), **record}, f, indent=1,
                  default=float)
