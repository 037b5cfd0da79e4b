"""``labelemb demo --data openclipart``: the whole idea on real images, against the sigmoid
baseline.

On the embedded Openclipart data set (32x32 clip art, 411 keyword labels, split by icon
set): fit the label embeddings on the training labels, show the nearest labels of a few
frequent ones, train the same small CNN once per recipe for the same number of epochs,
and report validation P@1, P@5, nDCG@5 and MAP@100 per epoch, time per epoch, and how
many epochs each model needs to reach the other's best P@5. Writes a learning-curve PNG
and a JSON report to the output folder.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Dict, Optional, Sequence

import numpy as np

from ._io import atomic_write
from ._recipes import RECIPES

RECIPE_TITLES = {name: r.title for name, r in RECIPES.items()}
# Learning rates per recipe (AdamW), each chosen from {1e-3, 3e-3, 1e-2} on a validation
# split carved out of the training data (benchmarks/recipes.py; benchmarks/README.md).
DEFAULT_LR = {name: r.lr for name, r in RECIPES.items()}
# After the default recipe (make_model's, read at run time): the low-rank PMI head, the
# paper's recipe and the baseline.
OTHER_RECIPES = ("lowrank", "paper", "bce")


def image_recipes(embedding, n_labels: int) -> tuple:
    """The recipes the image demo trains by default: make_model's default for this label
    set, then :data:`OTHER_RECIPES`."""
    from .demo import default_recipe

    first = default_recipe(embedding, n_labels)
    return (first,) + tuple(r for r in OTHER_RECIPES if r != first)


def small_cnn(width: int = 16, out_features: int = 256, *, augment: bool = False,
              dropout: float = 0.0):
    """A small CNN for 32x32 RGB images: three conv-BN-ReLU-pool blocks (``width``,
    ``2 width``, ``4 width`` channels) and a linear layer on the 4x4 map. About 3M
    multiply-adds per image at width 16, so an epoch of the demo takes seconds on a CPU.

    ``augment=True`` puts :func:`shift_flip` in front: random flips and shifts of each
    training batch (none in evaluation). ``dropout`` > 0 adds dropout on the output
    features (what the head sees)."""
    from torch import nn

    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))

    layers = [shift_flip()] if augment else []
    return nn.Sequential(*layers, block(3, width), block(width, 2 * width),
                         block(2 * width, 4 * width), nn.Flatten(),
                         nn.Linear(4 * width * 16, out_features), nn.ReLU(inplace=True),
                         *([nn.Dropout(dropout)] if dropout else []))


def shift_flip(max_shift: int = 2):
    """A module that, in training mode only, flips each image of a batch (N, C, H, W)
    left-right with probability 1/2 and shifts it by up to ``max_shift`` pixels each way
    (edge pixels repeated), drawn per image from torch's generator; the identity in
    evaluation mode."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ShiftFlip(nn.Module):
        def forward(self, x):
            if not self.training or x.dim() != 4:
                return x
            n, _, h, w = x.shape
            theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
            flip = torch.randint(0, 2, (n,), device=x.device).to(x.dtype) * 2 - 1
            theta[:, 0, 0] = flip
            theta[:, 1, 1] = 1
            shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), device=x.device)
            theta[:, 0, 2] = shifts[:, 0].to(x.dtype) * (2.0 / w)
            theta[:, 1, 2] = shifts[:, 1].to(x.dtype) * (2.0 / h)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            return F.grid_sample(x, grid, mode="nearest", padding_mode="border",
                                 align_corners=False)

    return ShiftFlip()


def _subsample(index: np.ndarray, limit: Optional[int], seed: int) -> np.ndarray:
    if limit is None or limit >= len(index):
        return index
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(index, size=limit, replace=False))


def _table(results: Dict[str, dict], recipes: Sequence[str]) -> str:
    cols = ["p@1", "p@5", "ndcg@5", "map@100"]
    head = f"{'recipe':<46s}" + "".join(f"{c:>9s}" for c in cols) + \
        f"{'s/epoch':>9s}  epochs to reach the other's best P@5"
    lines = [head, "-" * len(head)]
    for r in recipes:
        res = results[r]
        best = res["best"]
        reach = res["epochs_to_reach_other_best_p@5"]
        reach_s = ", ".join(f"{o}: {'never' if v is None else v}" for o, v in reach.items())
        lines.append(f"{RECIPE_TITLES.get(r, r):<46s}" + "".join(f"{best[c]:9.3f}" for c in cols)
                     + f"{res['seconds_per_epoch']:9.2f}  {reach_s}")
    lines.append("(each model's best value on the test images over its epochs: the demo has no "
                 "validation split, an optimistic bias shared by every recipe; time per epoch is "
                 "training only)")
    return "\n".join(lines)


def run_image_demo(out_dir: str = "labelemb-demo", *, epochs: int = 8, device: str = "auto",
                   limit: Optional[int] = None, recipes: Optional[Sequence[str]] = None,
                   dim: int = 64, batch_size: int = 64, lr: Optional[Dict[str, float]] = None,
                   width: int = 16, seed: int = 0, schedule: str = "constant",
                   weight_decay: float = 0.0, augment: bool = False, progress: bool = True,
                   echo=print) -> dict:
    """Run the demo; returns the report (also written to ``out_dir/report.json``).

    Parameters
    ----------
    out_dir : str
        Folder for ``report.json``, ``curves.png`` and the training logs.
    epochs : int
        Epochs per recipe (the same budget for each).
    device : str
        "auto" (CUDA when present), "cpu" or "cuda".
    limit : int, optional
        Use at most this many training and test images (a quick look).
    recipes : sequence of {"paper", "bce", "lowrank", "softmax", "lowrank-softmax", "hybrid",
        "lowrank-hybrid"}, optional
        Default: :func:`image_recipes`.
    schedule, weight_decay
        Of :func:`labelemb.torch.fit` (the same for every recipe).
    augment : bool
        Random flips and shifts of the training images (:func:`shift_flip`). On these
        icons it did not change the picture (every recipe still peaks in the first
        epochs), so it is off by default.
    """
    import torch

    from . import fit_embeddings
    from .datasets import load_openclipart
    from .embedding import EmbeddingWarning
    from .torch import fit, make_model

    for r in recipes or ():
        if r not in RECIPE_TITLES:
            raise ValueError(f"unknown recipe {r!r}; choose from {sorted(RECIPE_TITLES)}")
    lrs = dict(DEFAULT_LR, **(lr or {}))
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    data = load_openclipart(as_float=True)
    tr = _subsample(data.train_index, limit, seed)
    te = _subsample(data.test_index, limit, seed + 1)
    X, Y = data.images, data.labels
    echo(f"Openclipart 32x32: {len(tr)} training and {len(te)} test images, {Y.shape[1]} labels, "
         f"{Y[tr].nnz / len(tr):.2f} labels per image; the split keeps each icon set on one side.")

    unseen = int((np.asarray(Y[tr].sum(axis=0)).ravel() == 0).sum())
    with warnings.catch_warnings():  # labels seen only in the test images: reported below
        warnings.simplefilter("ignore", EmbeddingWarning)
        emb = fit_embeddings(Y[tr], dim=dim, seed=seed, progress=False)
    if unseen:
        echo(f"({unseen} labels occur only in test images: they get zero vectors)")
    emb.label_names = list(data.label_names)
    recipes = image_recipes(emb, Y.shape[1]) if recipes is None else tuple(recipes)
    echo(f"\nLabel embedding: {emb!r}")
    counts = np.asarray(Y[tr].sum(axis=0)).ravel()
    echo("Nearest labels of the most frequent ones (cosine):")
    for i in np.argsort(-counts, kind="stable")[:5]:
        nb = emb.neighbors(int(i), k=5)
        shown = ", ".join(f"{name} {cos:.2f}" for name, cos in nb)
        echo(f"  {data.label_names[i]:<14s} -> {shown}")

    results: Dict[str, dict] = {}
    histories = {}
    for r in recipes:
        torch.manual_seed(seed)
        model = make_model(small_cnn(width, augment=augment), 256, r,
                           embedding=emb, n_labels=Y.shape[1])
        echo(f"\nTraining: {RECIPE_TITLES[r]} ({epochs} epochs, lr {lrs[r]:g})")
        h = fit(model, (X[tr], Y[tr]), emb, valid=(X[te], Y[te]), epochs=epochs, lr=lrs[r],
                batch_size=batch_size, device=device, seed=seed, progress=progress,
                schedule=schedule, weight_decay=weight_decay,
                recipe=r, log_path=os.path.join(out_dir, f"train-{r}.jsonl"))
        histories[r] = h
        times = [e["train_time"] for e in h.epochs]
        results[r] = {"title": RECIPE_TITLES[r], "lr": lrs[r], "epochs": h.epochs,
                      "best": {k: h.best(k) for k in ("p@1", "p@5", "ndcg@5", "map@100")},
                      "seconds_per_epoch": float(np.median(times))}
    for r in recipes:
        results[r]["epochs_to_reach_other_best_p@5"] = {
            o: histories[r].epochs_to_reach("p@5", results[o]["best"]["p@5"])
            for o in recipes if o != r}
    table = _table(results, recipes)
    echo("\n" + table)
    png = os.path.join(out_dir, "curves.png")
    try:
        from .plot import history as plot_history

        plot_history({RECIPE_TITLES[r]: histories[r] for r in recipes}, png,
                     metrics=("p@5", "map@100"))
    except ImportError as e:  # matplotlib missing
        echo(f"(no plot: {e})")
        png = None
    report = {"format": "labelemb-demo-report", "format_version": 1,
              "data": {"train": int(len(tr)), "test": int(len(te)), "labels": int(Y.shape[1])},
              "embedding": {"dim": int(emb.vectors.shape[1]), **{k: v for k, v in
                                                                 emb.params.items()
                                                                 if isinstance(v, (int, float,
                                                                                   str))}},
              "settings": {"epochs": epochs, "batch_size": batch_size, "device": device,
                           "seed": seed, "limit": limit, "width": width,
                           "schedule": schedule, "weight_decay": weight_decay,
                           "augment": augment},
              "results": results, "table": table, "plot": png,
              "wall_seconds": time.perf_counter() - t0}
    path = os.path.join(out_dir, "report.json")
    with atomic_write(path, "w") as f:
        json.dump(report, f, indent=1, default=float)
    echo(f"\nWrote {path}" + (f" and {png}" if png else "") +
         f" ({report['wall_seconds']:.0f} s in all).")
    return report
