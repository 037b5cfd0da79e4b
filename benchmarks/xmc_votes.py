"""How neighbour votes were set: one trained network per data set (the default recipe on a
sparse MLP, seed 0), then every (k, temperature, weight) of a small grid scored on the
validation split (the choice) and on test (for the record), and a two-seed ensemble of
networks beside it for scale.

Usage::

    LABELEMB_BENCH=full python benchmarks/xmc_votes.py wordnet
    LABELEMB_BENCH=full python benchmarks/xmc_votes.py debian-deps

Writes ``results/xmc_votes_<size>_<data>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xmc  # noqa: E402
import xmc_recipes as xr  # noqa: E402
from _util import RESULTS, bench_size  # noqa: E402

KS = (10, 20, 50, 100)
TEMPERATURES = (0.02, 0.05, 0.1, 0.2)
WEIGHTS = (0.3, 0.5, 0.7)


def train(split, seed: int, hidden: int, epochs: int):
    """The default network of ``xmc_recipes`` (no votes), trained for ``epochs``."""
    import torch

    import labelemb
    from labelemb.torch import fit

    torch.set_num_threads(xr.THREADS)
    L = split.Y_train.shape[1]
    spec = xr.spec("lowrank-softmax", 2e-3, seed, epochs=epochs, hidden=hidden,
                   schedule="cosine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(split.Y_train, dim=min(256, L - 1), n_labels=L,
                                      seed=seed, num_threads=xr.THREADS)
    model = xr.build(split, spec, emb)
    fit(model, (split.X_train, split.Y_train), emb, epochs=epochs, lr=2e-3, batch_size=256,
        device="cpu", seed=seed, progress=False, schedule="cosine")
    return model.eval(), emb


def outputs(model, X, batch: int = 2048):
    """``(points in the head's space, logits)`` of every row of ``X``."""
    import torch

    from labelemb.torch.neighbours import head_space
    from labelemb.torch.sparse import csr_batch

    pts, logits = [], []
    with torch.no_grad(), head_space(model) as seen:
        for a in range(0, X.shape[0], batch):
            logits.append(model(csr_batch(X[a:a + batch])))
            pts.append(seen.pop())
    return torch.cat(pts), torch.cat(logits)


def map100(split, scores, Y) -> float:
    import torch

    idx = torch.topk(scores, min(xmc.K, scores.shape[1]), dim=1).indices.numpy()
    return xmc.score(idx, Y, split.counts, split.X_train.shape[0])["map@100"]


def fused(votes, logits, points, batch: int = 2048):
    import torch

    return torch.cat([votes.fuse(logits[a:a + batch], points[a:a + batch])
                      for a in range(0, len(points), batch)])


def grid(data: str, hidden: int = 2048, epochs: int = 6) -> dict:
    import torch

    from labelemb.torch.neighbours import NeighbourVotes

    split = xr.load(data)
    out = {"data": data, "hidden": hidden, "epochs": epochs, "grid": []}
    models = [train(split, seed, hidden, epochs)[0] for seed in (0, 1)]
    keys, _ = outputs(models[0], split.X_train)
    parts = {"valid": (split.X_valid, split.Y_valid), "test": (split.X_test, split.Y_test)}
    seen = {p: outputs(models[0], X) for p, (X, _) in parts.items()}
    for p, (X, Y) in parts.items():
        out[f"alone_{p}"] = map100(split, seen[p][1], Y)
        other = outputs(models[1], X)[1]
        out[f"ensemble2_{p}"] = map100(split, torch.softmax(seen[p][1], 1) +
                                       torch.softmax(other, 1), Y)
    for k in KS:
        for t in TEMPERATURES:
            votes = NeighbourVotes(keys.numpy(), split.Y_train, k=k, temperature=t)
            for w in WEIGHTS:
                votes.weight = w
                row = {"k": k, "temperature": t, "weight": w}
                for p, (_, Y) in parts.items():
                    pts, logits = seen[p]
                    row[p] = map100(split, fused(votes, logits, pts), Y)
                out["grid"].append(row)
                print(json.dumps(row), flush=True)
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", choices=tuple(xr.DATA))
    ap.add_argument("--hidden", type=int, default=2048)
    a = ap.parse_args(argv)
    res = grid(a.data, a.hidden)
    best = max(res["grid"], key=lambda r: r["valid"])
    print(f"network alone: valid {res['alone_valid']:.4f} test {res['alone_test']:.4f}; "
          f"best votes on valid: {best}")
    path = os.path.join(RESULTS, f"xmc_votes_{bench_size()}_{a.data}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
