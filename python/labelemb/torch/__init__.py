"""Training with label embeddings in PyTorch (the ``torch`` extra).

Step 5 of the method and its baseline, with one loop for both::

    import labelemb
    from labelemb.torch import fit, make_model, mlp, predict

    emb = labelemb.fit_embeddings(Y_train, dim=256)
    model = make_model(mlp(F, [512]), 512, embedding=emb)    # default: default_recipe
    paper = make_model(mlp(F, [512]), 512, "paper", embedding=emb)     # cosine proximity
    baseline = make_model(mlp(F, [512]), 512, "bce", n_labels=Y_train.shape[1])
    h = fit(model, (X_train, Y_train), emb, valid=(X_valid, Y_valid), epochs=10, lr=1e-3,
            batch_size=256)
    labels, scores = predict(model, X_test, emb, k=5)

Importing :mod:`labelemb` alone never imports torch; this module does.

Where each part lives: :mod:`~labelemb.torch.recipes` (the recipes by name: head, loss,
decoder), :mod:`~labelemb.torch.heads` and :mod:`~labelemb.torch.losses`,
:mod:`~labelemb.torch.data` (label sets as sparse batches and targets),
:mod:`~labelemb.torch.sources` (the inputs: arrays, tensors, Datasets),
:mod:`~labelemb.torch.train` (``fit`` and one epoch), :mod:`~labelemb.torch.inference`
(``predict``, ``evaluate``, the validation pass), :mod:`~labelemb.torch.checkpoint`
(settings, save, resume), :mod:`~labelemb.torch.history`, :mod:`~labelemb.torch.optim`,
:mod:`~labelemb.torch.device` and :mod:`~labelemb.torch.distributed` (``torchrun``).
"""

from __future__ import annotations

from .checkpoint import TrainSettings, load_checkpoint
from .data import EmbeddingTargets, LabelCollate, SparseLabels, collate_label_sets
from .heads import EmbeddingHead, LogitHead, LowRankHead, find_head, make_model, mlp
from .history import History
from .inference import evaluate, predict
from .losses import CosineProximityLoss, sparse_bce_with_logits, sparse_softmax_cross_entropy
from .neighbours import NeighbourVotes
from .recipes import RECIPES, Recipe, default_recipe
from .sparse import SparseAdamW, SparseLinear
from .train import fit

__all__ = [
    "RECIPES",
    "CosineProximityLoss",
    "EmbeddingHead",
    "EmbeddingTargets",
    "History",
    "LabelCollate",
    "LogitHead",
    "LowRankHead",
    "NeighbourVotes",
    "Recipe",
    "SparseAdamW",
    "SparseLabels",
    "SparseLinear",
    "TrainSettings",
    "collate_label_sets",
    "default_recipe",
    "evaluate",
    "find_head",
    "fit",
    "load_checkpoint",
    "make_model",
    "mlp",
    "predict",
    "sparse_bce_with_logits",
    "sparse_softmax_cross_entropy",
]
