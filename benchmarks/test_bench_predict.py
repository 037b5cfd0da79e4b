"""labelemb.Classifier: exact decoding speed, and the one-call fit against the same pipeline
assembled by hand.

Figures (2 threads, medians of interleaved rounds in one run):

* ``Classifier.predict_topk`` on 100,000 samples of the WordNet set (TF-IDF inputs, every
  hypernym seen in training: L = 15,218 labels; the test rows, repeated) against decoding
  every label with the dense outputs of the same model + ``torch.topk`` (what
  ``labelemb.torch.predict`` does for logit heads), k = 5, for the default recipe
  (``hybrid``: a full logit head) and the low-rank head (``lowrank-hybrid``), each trained
  one epoch on 20,000 training samples; target >= 2x, identical top-k.
* ``Classifier().fit`` on debtags (``load_debtags_xmc``) and WordNet (``load_wordnet``)
  gives the same test metrics as ``fit_embeddings`` + ``make_model(mlp(...))`` + ``fit``
  with the same seed and settings (WordNet: 20,000 training samples); save + load gives
  identical predictions.

Small sizes by default (a synthetic set; CI checks that the file runs); ``LABELEMB_BENCH=full``
runs the sizes above.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _util import bench_size, compare, machine

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb import Classifier  # noqa: E402

FULL = bench_size() == "full"
THREADS = 2
N_QUERIES = 100_000 if FULL else 2_000
N_TRAIN = 20_000 if FULL else None  # WordNet training samples used (of 59,000)
K = 5


def _wordnet_or_synthetic(min_count: int, n_train=None):
    """(X_train, Y_train, X_valid, Y_valid, X_test, Y_test, name); ``n_train`` random
    training samples (all when None)."""
    if FULL:
        from labelemb.datasets import load_wordnet

        d = load_wordnet(min_count=min_count, max_label_fraction=0.3)
        Xtr, Ytr = d.X_train, d.Y_train
        if n_train is not None:
            keep = np.sort(np.random.default_rng(0).permutation(Xtr.shape[0])[:n_train])
            Xtr, Ytr = Xtr[keep], Ytr[keep]
        return (Xtr, Ytr, d.X_valid, d.Y_valid, d.X_test, d.Y_test,
                f"WordNet (min_count={min_count}, L={d.Y_train.shape[1]}, "
                f"{Xtr.shape[0]} training samples)")
    data = labelemb.make_topic_labels(2000, 200, n_features=32, seed=0)
    X = sp.csr_matrix(np.maximum(data.features, 0).astype(np.float32))
    Y = data.labels.tocsr()
    return (X[:1200], Y[:1200], X[1200:1500], Y[1200:1500], X[1500:], Y[1500:],
            "synthetic topic set (L=200)")


def _dense_topk(model, X, k: int, batch: int = 4096, at=None):
    """Every label scored by the model's dense outputs, then torch.topk (the baseline).

    With ``at`` (an (n, k) index array), also returns the dense outputs at those labels."""
    from labelemb.torch.sparse import csr_batch, first_sparse_layer

    sparse_layer = first_sparse_layer(model) is not None
    out_i = np.empty((X.shape[0], k), np.int64)
    out_s = np.empty((X.shape[0], k), np.float32)
    at_s = np.empty((X.shape[0], k), np.float32) if at is not None else None
    model.eval()
    with torch.no_grad():
        for a in range(0, X.shape[0], batch):
            rows = X[a:a + batch]
            x = csr_batch(rows) if sparse_layer else torch.from_numpy(rows.toarray())
            out = model(x)
            s, i = torch.topk(out, k, dim=1)
            out_i[a:a + len(i)], out_s[a:a + len(i)] = i.numpy(), s.numpy()
            if at is not None:
                at_s[a:a + len(i)] = out.gather(1, torch.from_numpy(at[a:a + len(i)])).numpy()
    return (out_i, out_s) if at is None else (out_i, out_s, at_s)


@pytest.mark.parametrize("recipe", ["hybrid", "lowrank-hybrid"])
def test_predict_against_dense_logits(recipe):
    torch.set_num_threads(THREADS)
    # the timings need a trained model, not the best one: a part of the training set
    Xtr, Ytr, Xv, Yv, Xte, _, name = _wordnet_or_synthetic(min_count=1, n_train=N_TRAIN)
    reps = -(-N_QUERIES // Xte.shape[0])
    Q = sp.vstack([Xte] * reps).tocsr()[:N_QUERIES]
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", labelemb.EmbeddingWarning)
        clf = Classifier(recipe=recipe, hidden=(1024,) if FULL else (64,),
                         dim=256 if FULL else 16, epochs=1, neighbours=0,
                         num_threads=THREADS).fit(Xtr, Ytr)
    fit_s = time.perf_counter() - t0
    for w in caught:
        print(f"  ({recipe} fit: {w.message})")
    got = {}

    def fast():
        got["fast"] = clf.predict_topk(Q, K)[0]

    def dense():
        _dense_topk(clf.model_, Q, K)

    med = compare(f"predict n={Q.shape[0]} L={len(clf.classes_)} {recipe} k={K}",
                  {"Classifier.predict_topk": fast,
                   "dense outputs + torch.topk": dense},
                  repeats=2 if FULL else 1,
                  extra={"data": name, "fit seconds": round(fit_s, 1)})
    # Labels with identical parameters (never seen in training, or always seen
    # together) tie exactly: torch.topk orders them arbitrarily, labelemb.topk by id.
    dense_i, dense_s, dense_at_fast = _dense_topk(clf.model_, Q, K, at=got["fast"])
    same = (got["fast"] == dense_i).all(axis=1)
    ties = ~same & (dense_at_fast == dense_s).all(axis=1)
    near = ~same & ~ties & np.isclose(dense_at_fast, dense_s, rtol=1e-6,
                                      atol=1e-6).all(axis=1)
    decoder = clf._cache["decoder"]
    index = decoder.index
    print(f"  rows with identical top-{K}: {same.mean():.6f}; the same up to the order of "
          f"exactly tied labels: {ties.mean():.6f}; up to float32 rounding of the dense "
          f"outputs (|diff| <= 1e-6): {near.mean():.6f}")
    print(f"  decoder: {'TopkIndex' if index is not None else 'topk'} on "
          f"{decoder.vectors.shape}" + (f", scored {index.last_scored_fraction_:.2f} of "
                                        "the scores" if index is not None else ""))
    ratio = med["dense outputs + torch.topk"] / med["Classifier.predict_topk"]
    print(f"  speed-up: {ratio:.2f}x")
    assert (same | ties | near).all()


def _hand_assembled(Xtr, Ytr, Xv, Yv, *, hidden, dim, epochs, seed):
    """The same model the Classifier builds, assembled from the public pieces."""
    from labelemb.torch import RECIPES, default_recipe, fit, make_model, mlp

    emb = labelemb.fit_embeddings(Ytr, dim=dim, seed=seed)
    recipe = default_recipe(Ytr.shape[1], sparse=sp.issparse(Xtr))  # the Classifier's
    torch.manual_seed(seed)
    model = make_model(mlp(Xtr.shape[1], hidden, sparse=True), hidden[-1], recipe,
                       embedding=emb)
    best = {"map": -1.0}

    def keep_best(history, net):
        rec = history.epochs[-1]
        key = [k for k in rec if k.startswith("map@")][0]
        if rec[key] > best["map"]:
            best["map"] = rec[key]
            best["state"] = {k: t.detach().clone() for k, t in net.state_dict().items()}

    lr, schedule = RECIPES[recipe].settings(sparse=True)  # the sparse first layer's pair
    fit(model, (Xtr, Ytr), emb, valid=(Xv, Yv), epochs=epochs, lr=lr, schedule=schedule,
        batch_size=256, seed=seed, progress=False, callbacks=[keep_best])
    model.load_state_dict(best["state"])
    return model, emb


@pytest.mark.parametrize("dataset", ["debtags", "wordnet"])
def test_fit_matches_the_hand_assembled_pipeline(dataset):
    torch.set_num_threads(THREADS)
    if FULL and dataset == "debtags":
        from labelemb.datasets import load_debtags_xmc

        d = load_debtags_xmc()
        parts = (d.X_train, d.Y_train, d.X_valid, d.Y_valid, d.X_test, d.Y_test)
        name = f"debtags (L={d.Y_train.shape[1]})"
    else:
        *parts, name = _wordnet_or_synthetic(min_count=5, n_train=N_TRAIN)
    Xtr, Ytr, Xv, Yv, Xte, Yte = parts
    settings = {"hidden": (1024,) if FULL else (32,), "dim": 256 if FULL else 16,
                "epochs": 3 if FULL else 2, "seed": 0}
    no_votes = {"neighbours": 0}  # the network alone, as the hand-assembled pipeline
    with warnings.catch_warnings(record=True) as caught:  # the same in both runs
        warnings.simplefilter("always", labelemb.EmbeddingWarning)
        t0 = time.perf_counter()
        clf = Classifier(**settings, **no_votes).fit(Xtr, Ytr, X_valid=Xv, Y_valid=Yv)
        t_clf = time.perf_counter() - t0
        t0 = time.perf_counter()
        model, _ = _hand_assembled(Xtr, Ytr, Xv, Yv, **settings)
        t_hand = time.perf_counter() - t0
    for w in caught:
        print(f"  (embedding: {w.message})")

    from labelemb.torch import evaluate

    L = Ytr.shape[1]
    ours = clf.score(Xte, Yte, ks=(1, 5), map_k=100)
    hand = evaluate(model, (Xte, Yte), ks=(1, 5), map_k=100, amp=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        clf.save(path)
        size = os.path.getsize(path)
        back = Classifier.load(path)
        round_trip = bool((back.predict_topk(Xte, K)[0] == clf.predict_topk(Xte, K)[0]).all())
    print(f"\n== Classifier().fit vs the hand-assembled pipeline, {name}  [{bench_size()} "
          f"sizes; {machine()}]")
    print(f"  settings: {settings}, recipe {clf._architecture['recipe']}; best epoch "
          f"{clf.best_epoch_}; fit {t_clf:.1f} s "
          f"(by hand {t_hand:.1f} s)")
    for key in ("precision@1", "precision@5", "ndcg@5", f"map@{min(100, L)}"):
        print(f"  {key:<12s} Classifier {ours[key]:.4f}   by hand {hand[key]:.4f}")
    print(f"  model file {size / 2**20:.1f} MiB; save + load gives identical top-{K}: "
          f"{round_trip}")
    same_weights = all(torch.equal(v, clf.model_.state_dict()[k].cpu())
                       for k, v in model.state_dict().items())
    print(f"  trained weights identical: {same_weights}")
    assert same_weights
    # The same weights; the metrics may differ in the last digits only where labels tie
    # (labels unseen in training share their parameters): torch.topk, which the
    # hand-assembled evaluation uses, orders ties arbitrarily, the exact decoder by id.
    for key in ("precision@1", "precision@5", "ndcg@5", f"map@{min(100, L)}"):
        assert ours[key] == pytest.approx(hand[key], abs=1e-5), key
    assert round_trip
