"""Training with label embeddings vs the sigmoid baseline (issue: training in PyTorch).

Figures:

* a small MLP trained both ways on the synthetic topic set (features from the topics,
  with noise; fixed seed), same epochs, optimizer, learning rate and batch size, on the
  CPU: validation P@5 and MAP@100 at every epoch, training time per epoch, and the
  epochs each model needs to reach the other's best, whatever the outcome;
* the output layer's cost per step: EmbeddingHead (d = 256) + cosine proximity vs
  LogitHead (L = 20,000) + BCE (and the LowRankHead), forward + backward + AdamW step,
  targets included, printed as a ratio;
* bf16 autocast vs float32 on this CPU (why ``amp=True`` stays float32 on the CPU).
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from _util import RESULTS, bench_size, compare, machine, scaled

import labelemb
import labelemb.metrics

torch = pytest.importorskip("torch")

from labelemb.torch import (  # noqa: E402
    CosineProximityLoss,
    EmbeddingHead,
    EmbeddingTargets,
    LogitHead,
    LowRankHead,
    SparseLabels,
    fit,
    make_model,
    mlp,
    sparse_bce_with_logits,
)

FULL = bench_size() == "full"
N_TRAIN = 100_000 if FULL else 3_000
N_VALID = 10_000 if FULL else 600
L = 20_000 if FULL else 300
N_FEATURES = 256 if FULL else 64
HIDDEN = 512 if FULL else 128
DIM = 256 if FULL else 32
EPOCHS = 8 if FULL else 3
BATCH = 256
LR = 1e-3


@pytest.fixture(scope="module", autouse=True)
def threads():
    # torch's intra-op threads: 2 at full size; 1 for the small (CI) run, where OpenMP
    # waits on a core busy with other work would swamp the tiny ops.
    # LABELEMB_BENCH_TORCH_THREADS overrides.
    n = torch.get_num_threads()
    default = min(2, os.cpu_count() or 1) if FULL else 1
    torch.set_num_threads(int(os.environ.get("LABELEMB_BENCH_TORCH_THREADS", default)))
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def topic_features():
    d = labelemb.make_topic_labels(N_TRAIN + N_VALID, L, n_features=N_FEATURES,
                                   feature_noise=1.0, seed=0)
    X, Y = d.features, d.labels
    return (X[:N_TRAIN], Y[:N_TRAIN]), (X[N_TRAIN:], Y[N_TRAIN:])


def _reach(history, key, target):
    e = history.epochs_to_reach(key, target)
    return f"epoch {e}" if e is not None else f"not within {len(history)} epochs"


def test_training_curves(benchmark, topic_features, tmp_path):
    train, valid = topic_features
    with warnings.catch_warnings():  # rare labels absent from the training split
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(train[1], dim=DIM, seed=0)
    # The decoder's ceiling: P@5 / MAP of the true targets themselves, decoded by nearest
    # labels (what a perfect cosine regression would score).
    with warnings.catch_warnings():  # empty label sets encode to zero rows
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        oracle, _ = labelemb.topk(emb.encode(valid[1]), emb.vectors, min(100, L))
    ceiling = (labelemb.metrics.precision_at_k(oracle, valid[1], 5),
               labelemb.metrics.map_at_k(oracle, valid[1], min(100, L)))
    runs = {}
    for name, head in ((f"embedding (cosine, d={DIM})", "paper"),
                       (f"sigmoid BCE (L={L})", "bce")):
        torch.manual_seed(0)
        model = make_model(mlp(N_FEATURES, [HIDDEN]), HIDDEN, head, embedding=emb,
                           n_labels=L)
        runs[name] = fit(model, train, emb if head == "paper" else None, valid=valid,
                         epochs=EPOCHS, lr=LR, batch_size=BATCH, device="cpu", progress=False,
                         seed=0)
    (ename, eh), (bname, bh) = runs.items()
    print(f"\n== training curves n_train={N_TRAIN} n_valid={N_VALID} L={L} "
          f"features={N_FEATURES} hidden={HIDDEN} d={DIM} batch={BATCH} lr={LR} AdamW "
          f"[{bench_size()} sizes; {machine()}]")
    print(f"  labels: {L}, {int((np.abs(emb.vectors).sum(1) == 0).sum())} without a vector "
          f"(absent from the training split); {train[1].nnz / N_TRAIN:.2f} labels/sample")
    print(f"  decoding ceiling (true targets decoded by nearest labels): P@5 {ceiling[0]:.4f}, "
          f"MAP@100 {ceiling[1]:.4f}")
    print(f"  {'epoch':>5s} | {'emb P@5':>8s} {'emb MAP@100':>11s} {'emb s':>7s} | "
          f"{'bce P@5':>8s} {'bce MAP@100':>11s} {'bce s':>7s}")
    mk = "map@100" if L >= 100 else f"map@{L}"
    for a, b in zip(eh.epochs, bh.epochs):
        print(f"  {a['epoch']:5d} | {a['p@5']:8.4f} {a[mk]:11.4f} {a['train_time']:7.2f} | "
              f"{b['p@5']:8.4f} {b[mk]:11.4f} {b['train_time']:7.2f}")
    ratio = np.median(bh["train_time"]) / np.median(eh["train_time"])
    print(f"  median epoch time: bce / embedding = {ratio:.2f}x")
    for key in ("p@5", mk):
        print(f"  {key}: best embedding {eh.best(key):.4f}, best bce {bh.best(key):.4f}; "
              f"embedding reaches bce's best at {_reach(eh, key, bh.best(key))}; "
              f"bce reaches embedding's best at {_reach(bh, key, eh.best(key))}")
    os.makedirs(RESULTS, exist_ok=True)
    stem = os.path.join(RESULTS, f"{bench_size()}_training_n{N_TRAIN}_l{L}")
    with open(stem + ".json", "w") as f:
        json.dump({"machine": machine(), "size": bench_size(),
                   "setup": dict(n_train=N_TRAIN, n_valid=N_VALID, L=L, features=N_FEATURES,
                                 hidden=HIDDEN, d=DIM, epochs=EPOCHS, batch=BATCH, lr=LR),
                   "decoding_ceiling": {"p@5": ceiling[0], "map@100": ceiling[1]},
                   "runs": {k: v.epochs for k, v in runs.items()}}, f, indent=1)
    try:
        from labelemb import plot

        print(f"  curves: {plot.history(runs, stem + '.png', metrics=('p@5', mk))}")
    except ImportError:
        pass
    # pytest-benchmark: one more epoch of the embedding model
    torch.manual_seed(0)
    model = make_model(mlp(N_FEATURES, [HIDDEN]), HIDDEN, "paper", embedding=emb)
    benchmark.pedantic(fit, args=(model, train, emb), kwargs=dict(
        epochs=1, lr=LR, batch_size=BATCH, device="cpu", progress=False), rounds=1)
    assert len(eh) == len(bh) == EPOCHS


def test_output_layer_cost(benchmark):
    """One step of the output layer alone: (batch x hidden) activations -> loss -> AdamW."""
    n_labels, dim, hidden = scaled(20_000), 256, 512
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n_labels, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    Y = labelemb.make_topic_labels(BATCH, n_labels, seed=1).labels
    y = SparseLabels.from_scipy(Y)
    h = torch.randn(BATCH, hidden)
    targets = EmbeddingTargets(vectors)
    cosine = CosineProximityLoss()

    def stepper(head, loss_fn):
        opt = torch.optim.AdamW(head.parameters(), lr=1e-3)

        def step():
            loss = loss_fn(head(h), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    logit = LogitHead(hidden, n_labels)
    funcs = {
        f"EmbeddingHead d={dim} + cosine": stepper(EmbeddingHead(hidden, vectors),
                                                   lambda out, y: cosine(out, targets(y))),
        f"LogitHead L={n_labels} + BCE": stepper(logit, sparse_bce_with_logits),
        f"LowRankHead d={dim}, L={n_labels} + BCE": stepper(LowRankHead(hidden, vectors),
                                                            sparse_bce_with_logits),
    }
    med = compare(f"output layer step batch={BATCH} hidden={hidden} L={n_labels} d={dim}",
                  funcs, repeats=7 if FULL else 3)
    names = list(funcs)
    print(f"  cost per step, LogitHead / EmbeddingHead: {med[names[1]] / med[names[0]]:.1f}x "
          f"(output widths {n_labels} / {dim} = {n_labels / dim:.0f}x)")
    benchmark.pedantic(funcs[names[0]], rounds=3)


def test_cpu_bf16_autocast(benchmark):
    """A training step of the MLP + EmbeddingHead in float32 vs under bf16 autocast."""
    torch.manual_seed(0)
    vectors = np.eye(scaled(20_000), DIM, dtype=np.float32)
    model = make_model(mlp(N_FEATURES, [HIDDEN]), HIDDEN, "bce", n_labels=vectors.shape[0])
    x = torch.randn(BATCH, N_FEATURES)
    y = SparseLabels.from_scipy(labelemb.make_topic_labels(BATCH, vectors.shape[0],
                                                           seed=2).labels)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(bf16):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x)
            loss = sparse_bce_with_logits(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return run

    med = compare(f"cpu training step float32 vs bf16 autocast L={vectors.shape[0]}",
                  {"float32": step(False), "bf16 autocast": step(True)},
                  repeats=5 if FULL else 3)
    print(f"  bf16 / float32 step time: {med['bf16 autocast'] / med['float32']:.2f}x")
    benchmark.pedantic(step(False), rounds=3)
