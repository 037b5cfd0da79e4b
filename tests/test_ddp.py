"""labelemb.torch.fit under DistributedDataParallel: 2 CPU processes (gloo) match one
process on the same global batch."""

import os
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

import labelemb  # noqa: E402
from labelemb.torch import fit, make_model, mlp  # noqa: E402

N, L, F, D = 384, 30, 12, 8
GLOBAL_BATCH = 64
EPOCHS = 2
HEADS = ("paper", "bce")


def _data():
    data = labelemb.make_topic_labels(N + 96, L, n_features=F, seed=3)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((L, D)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    X, Y = data.features, data.labels
    return (X[:N], Y[:N]), (X[N:], Y[N:]), vectors


def _model(head, vectors):
    torch.manual_seed(0)
    return make_model(mlp(F, [16]), 16, head, embedding=vectors, n_labels=L)


def _train(head, batch_size, checkpoint_dir=None):
    train, valid, vectors = _data()
    model = _model(head, vectors)
    emb = vectors if head == "paper" else None
    h = fit(model, train, emb, valid=valid, epochs=EPOCHS, lr=1e-2, batch_size=batch_size,
            optimizer="sgd", device="cpu", progress=False, checkpoint_dir=checkpoint_dir)
    return [p.detach().numpy().copy() for p in model.parameters()], h.epochs


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    try:
        for head in HEADS:  # one spawn for both (starting processes costs seconds)
            d = os.path.join(out_dir, head)
            params, epochs = _train(head, GLOBAL_BATCH // world, checkpoint_dir=d)
            np.savez(os.path.join(d, f"rank{rank}.npz"), *params)
            with open(os.path.join(d, f"rank{rank}.txt"), "w") as f:
                f.write(repr(epochs))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
def test_two_processes_match_one(tmp_path, one_thread):
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for head in HEADS:
        _check_head(tmp_path / head, head)


def _check_head(tmp_path, head):
    ref, ref_epochs = _train(head, GLOBAL_BATCH)
    for rank in range(2):
        got = np.load(tmp_path / f"rank{rank}.npz")
        for i, p in enumerate(ref):
            np.testing.assert_allclose(got[f"arr_{i}"], p, rtol=1e-4, atol=1e-5)
    epochs = eval((tmp_path / "rank0.txt").read_text())
    for a, b in zip(epochs, ref_epochs):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["p@5"] == pytest.approx(b["p@5"], abs=1e-9)  # gathered: the same samples
        assert a["steps"] == b["steps"]
    # only rank 0 wrote the log and the checkpoints
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-00001.pt", "checkpoint-00002.pt",
                                            "history.jsonl", "rank0.npz", "rank0.txt",
                                            "rank1.npz", "rank1.txt"]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
@pytest.mark.parametrize("features, options", [
    ("X.npy", ("--objective", "lowrank")),
    # sparse rows (the SparseLinear all-reduces row-sparse gradients) and a sampled
    # softmax (its label vectors' gradients stay dense under DDP)
    ("X.npz", ("--objective", "lowrank-softmax", "--sampled-labels", "30", "--batch-size", "8"))])
def test_cli_train_under_torchrun(tmp_path, features, options):
    """The README's launch line: `torchrun ... -m labelemb train` with 2 CPU processes;
    only rank 0 prints and writes the model, which then evaluates like any other."""
    import subprocess
    import sys

    import scipy.sparse as sp

    data = labelemb.make_topic_labels(600, 40, n_features=F, seed=1)
    X = data.features.astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    sp.save_npz(tmp_path / "X.npz", sp.csr_matrix(np.maximum(X, 0.0)))
    sp.save_npz(tmp_path / "Y.npz", data.labels.tocsr())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(_free_port()), "-m", "labelemb", "train", features, "Y.npz",
           "-o", "model.pt", *options, "--dim", "8", "--epochs", "2",
           "--hidden", "16", "--no-progress"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("saved to model.pt") == 1, out.stdout
    ev = subprocess.run([sys.executable, "-m", "labelemb", "evaluate", "model.pt", features,
                         "Y.npz", "--json"], cwd=tmp_path, capture_output=True, text=True,
                        timeout=120)
    assert ev.returncode == 0, ev.stderr[-3000:]
    import json

    assert json.loads(ev.stdout)["precision@1"] > 0.2, ev.stdout


def test_count_in_waits_for_every_rank_and_survives_a_gone_store():
    """The teardown's store counter: it adds one, waits until the count is reached (or
    the time is up), and a store whose host has left ends the wait instead of raising."""
    import time

    from labelemb.torch._cli import _count_in

    store = dist.HashStore()
    _count_in(store, "left", 1)
    assert store.add("left", 0) == 1
    t = time.monotonic()
    _count_in(store, "left", 3, timeout=0.2)  # only two ranks ever count in
    assert store.add("left", 0) == 2
    assert 0.2 <= time.monotonic() - t < 5.0

    class Gone:
        def add(self, key, n):
            raise RuntimeError("Connection reset by peer")

    _count_in(Gone(), "left", 2)  # returns
