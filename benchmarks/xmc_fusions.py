"""What else could be fused with the default's scores: one trained network per data set
(the default recipe on a sparse MLP, seed 0, as ``xmc_votes.py`` trains it), its neighbour
votes in the head's space (the shipped fusion), and three additions scored on validation
(the choice) and test (for the record):

* TF-IDF votes: the label sets of the 50 nearest training rows by cosine of their TF-IDF
  rows, as a third term beside the network and the head-space votes;
* label propagation: ``s + g * s P`` with ``P[l, l'] = P(l' | l)`` from co-occurrence;
* a prior rescaling: ``s * prior^b``.

With ``--peers``, only ensembles instead: the shipped scores mixed with an
extreme-classification tool's (``labelemb.peers``; its top-100 scores made a distribution
per row), ``(1 - c) s + c t``: how much a second, different model could still add.

Usage::

    LABELEMB_BENCH=full python benchmarks/xmc_fusions.py wordnet
    LABELEMB_BENCH=full python benchmarks/xmc_fusions.py debian-deps
    LABELEMB_BENCH=full python benchmarks/xmc_fusions.py wordnet --peers omikuji-bonsai knn

Writes ``results/xmc_fusions_<size>_<data>.json`` (``xmc_ensembles_...`` with ``--peers``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xmc_recipes as xr  # noqa: E402
import xmc_votes as xv  # noqa: E402
from _util import RESULTS, bench_size  # noqa: E402

K, TEMPERATURES = 50, (0.02, 0.05, 0.1)
SHARES = ((0.1, 0.3), (0.1, 0.4), (0.1, 0.5), (0.2, 0.3), (0.2, 0.4), (0.2, 0.5),
          (0.3, 0.3), (0.3, 0.4), (0.3, 0.5))  # (TF-IDF votes, head-space votes)
GAINS = (0.05, 0.1, 0.2, 0.4)
MIXES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)  # the tool's share in an ensemble
POWERS = (-0.3, -0.2, -0.1, 0.1)


def unit_rows(X) -> sp.csr_matrix:
    X = sp.csr_matrix(X, dtype=np.float32)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X)


def tfidf_votes(Xq, Xtr_t, Ytr, k: int, temperature: float, batch: int = 1024):
    """Dense (n, L) votes of the ``k`` training rows nearest by TF-IDF cosine."""
    import torch

    out = []
    for a in range(0, Xq.shape[0], batch):
        sim = torch.from_numpy((Xq[a:a + batch] @ Xtr_t).toarray())
        top, idx = sim.topk(k, dim=1)
        w = torch.softmax(top / temperature, dim=1).numpy()
        rows = np.repeat(np.arange(len(w)), k)
        W = sp.csr_matrix((w.ravel(), (rows, idx.numpy().ravel())),
                          shape=(len(w), Xtr_t.shape[1]))
        out.append(torch.from_numpy((W @ Ytr).toarray()))
    return torch.cat(out)


def shipped_scores(data: str, hidden: int, epochs: int):
    """The default network (seed 0) and its scores on valid and test: alone (softmax)
    and fused with its neighbour votes (the shipped predictor)."""
    import torch

    from labelemb.torch.neighbours import NeighbourVotes

    split = xr.load(data)
    model, _ = xv.train(split, 0, hidden, epochs)
    keys, _ = xv.outputs(model, split.X_train)
    votes = NeighbourVotes(keys.numpy(), split.Y_train)  # the shipped settings
    parts = {"valid": (split.X_valid, split.Y_valid), "test": (split.X_test, split.Y_test)}
    net, shipped = {}, {}
    for p, (X, _) in parts.items():
        pts, logits = xv.outputs(model, X)
        net[p] = torch.softmax(logits, dim=1)
        shipped[p] = xv.fused(votes, logits, pts)
    out = {"data": data, "hidden": hidden, "epochs": epochs}
    for p, (_, Y) in parts.items():
        out[f"alone_{p}"] = xv.map100(split, net[p], Y)
        out[f"shipped_{p}"] = xv.map100(split, shipped[p], Y)
    return split, parts, votes, net, shipped, out


def tool_distribution(peer, X, n_labels: int):
    """A tool's top-100 scores of every row of ``X`` as a dense distribution per row."""
    import torch

    idx, sc = peer.predict_topk(X, 100)
    sc = np.where(idx >= 0, np.maximum(sc, 0.0), 0.0).astype(np.float32)
    D = np.zeros((X.shape[0], n_labels), np.float32)
    np.put_along_axis(D, np.maximum(idx, 0), sc, axis=1)
    D /= np.maximum(D.sum(axis=1, keepdims=True), 1e-12)
    return torch.from_numpy(D)


def ensembles(data: str, names: Sequence[str], hidden: int = 2048, epochs: int = 6) -> dict:
    from labelemb import peers

    split, parts, _, _, shipped, out = shipped_scores(data, hidden, epochs)
    L = split.Y_train.shape[1]
    for name in names:
        peer = peers.make_peer(name, xr.THREADS).fit(split.X_train, split.Y_train)
        tool = {p: tool_distribution(peer, X, L) for p, (X, _) in parts.items()}
        peer.close()
        out[name] = []
        for c in MIXES:
            row = {"c": c}
            for p, (_, Y) in parts.items():
                row[p] = xv.map100(split, (1 - c) * shipped[p] + c * tool[p], Y)
            out[name].append(row)
            print(json.dumps({"peer": name, **row}), flush=True)
    return out


def fusions(data: str, hidden: int = 2048, epochs: int = 6) -> dict:
    import torch

    split, parts, votes, net, shipped, out = shipped_scores(data, hidden, epochs)
    Ytr = sp.csr_matrix(split.Y_train, dtype=np.float32)
    head = {p: (shipped[p] - (1 - votes.weight) * net[p]) / votes.weight for p in parts}

    Xtr_t = unit_rows(split.X_train).T.tocsr()
    rows = []
    for t in TEMPERATURES:
        tv = {p: tfidf_votes(unit_rows(X), Xtr_t, Ytr, K, t) for p, (X, _) in parts.items()}
        for c, b in SHARES:
            row = {"temperature": t, "tfidf": c, "head": b}
            for p, (_, Y) in parts.items():
                row[p] = xv.map100(split, (1 - b - c) * net[p] + b * head[p] + c * tv[p], Y)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out["tfidf_votes"] = rows

    counts = np.asarray(Ytr.sum(axis=0)).ravel()
    P = sp.csr_matrix(sp.diags(1.0 / np.maximum(counts, 1.0)) @ (Ytr.T @ Ytr))
    out["propagation"] = []
    for g in GAINS:
        row = {"gain": g}
        for p, (_, Y) in parts.items():
            s = shipped[p].numpy()
            row[p] = xv.map100(split, torch.from_numpy(s + g * (P.T @ s.T).T), Y)
        out["propagation"].append(row)
        print(json.dumps(row), flush=True)

    prior = torch.from_numpy((counts + 1.0) / (counts + 1.0).sum()).float()
    out["prior"] = []
    for b in POWERS:
        row = {"power": b}
        for p, (_, Y) in parts.items():
            row[p] = xv.map100(split, shipped[p] * prior.pow(b), Y)
        out["prior"].append(row)
        print(json.dumps(row), flush=True)
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", choices=tuple(xr.DATA))
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--peers", nargs="+", default=None,
                    help="ensembles with these tools only (labelemb.peers names)")
    a = ap.parse_args(argv)
    if a.peers:
        res, names, stem = ensembles(a.data, a.peers, a.hidden), a.peers, "xmc_ensembles"
    else:
        res, names = fusions(a.data, a.hidden), ("tfidf_votes", "propagation", "prior")
        stem = "xmc_fusions"
    for name in names:
        best = max(res[name], key=lambda r: r["valid"])
        print(f"{name}: best on valid {best}; shipped valid {res['shipped_valid']:.4f} "
              f"test {res['shipped_test']:.4f}")
    path = os.path.join(RESULTS, f"{stem}_{bench_size()}_{a.data}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)

if __name__ == "__main__":
    main()
