"""Recipes in torch: each name's head class and loss, and the recipe a model trains with.

The table of recipes is :data:`labelemb._recipes.RECIPES` (readable without torch); this
module adds the head class of each (:data:`~labelemb.torch.heads.HEAD_CLASSES`), the loss,
chosen once before training (:func:`make_loss`), and the resolution of a model, an
embedding and an optional ``recipe=`` into the recipe, head and label vectors that
:func:`~labelemb.torch.fit`, :func:`~labelemb.torch.predict` and
:func:`~labelemb.torch.evaluate` share (:func:`model_parts`).

Examples
--------
>>> from labelemb.torch.recipes import RECIPES, head_class
>>> head_class(RECIPES["lowrank-softmax"]).__name__
'LowRankHead'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from .._recipes import (
    ALIASES,
    DECODERS,
    DEFAULT_RECIPE,
    LOGIT_OBJECTIVES,
    OBJECTIVES,
    RECIPES,
    Recipe,
    canonical_name,
    default_recipe,
)
from .data import SparseLabels, _vectors_of
from .heads import HEAD_CLASSES, find_head
from .losses import CosineProximityLoss, sparse_bce_with_logits, sparse_softmax_cross_entropy

__all__ = ["ALIASES", "DEFAULT_RECIPE", "RECIPES", "Recipe", "default_recipe", "get_recipe",
           "head_class", "make_loss", "model_parts"]

# The recipe inferred for each head class: the first of its kind in the table.
_INFERRED = {HEAD_CLASSES[kind]: next(r for r in RECIPES.values() if r.head == kind)
             for kind in HEAD_CLASSES}

Loss = Callable[[torch.Tensor, SparseLabels], Tuple[torch.Tensor, torch.Tensor]]


def head_class(recipe: Recipe) -> Optional[type]:
    """The head class :func:`~labelemb.torch.make_model` builds for ``recipe`` (None for a
    recipe without a head kind)."""
    return HEAD_CLASSES.get(recipe.head)


def get_recipe(recipe: Union[str, Recipe], what: str = "recipe") -> Recipe:
    """A recipe by name (former names warn) or a :class:`Recipe` checked for sense."""
    if isinstance(recipe, str):
        return RECIPES[canonical_name(recipe, what, stacklevel=4)]
    if not isinstance(recipe, Recipe):
        raise TypeError(f"{what} must be a str or a Recipe, got {type(recipe).__name__}")
    if recipe.objective not in OBJECTIVES or recipe.decode not in DECODERS:
        raise ValueError(f"recipe {recipe.name!r}: objective must be one of {OBJECTIVES} and "
                         f"decode one of {DECODERS}")
    return recipe


def _fits(recipe: Recipe, inferred: Recipe) -> bool:
    # A logit head may be trained with any logit objective; the paper's head with cosine.
    return recipe.decode == inferred.decode and (
        recipe.objective == inferred.objective
        or {recipe.objective, inferred.objective} <= set(LOGIT_OBJECTIVES))


def resolve_recipe(recipe, head: Optional[nn.Module], embedding) -> Recipe:
    """The recipe to train or decode ``head`` with: ``recipe`` if given (it must fit the
    head), else the one ``make_model`` recorded on the head, else the one inferred from its
    class, else "paper" with an embedding and "bce" without."""
    inferred = None
    if head is not None:
        name = getattr(head, "recipe", None)
        inferred = _INFERRED[type(head)]
        if name in RECIPES and RECIPES[name].head == inferred.head:
            inferred = RECIPES[name]
    if recipe is None:
        if inferred is not None:
            return inferred
        return RECIPES["paper" if embedding is not None else "bce"]
    recipe = get_recipe(recipe)
    if inferred is not None and not _fits(recipe, inferred):
        raise ValueError(f"recipe={recipe.name!r} does not fit the model's "
                         f"{type(head).__name__}; use make_model(..., head={recipe.name!r}) or "
                         f"leave recipe=None")
    return recipe


@dataclass
class ModelParts:
    """What training and inference need to know about a model.

    Attributes
    ----------
    net : nn.Module
        The model, unwrapped from ``DistributedDataParallel``.
    head : nn.Module or None
        Its labelemb head (:func:`~labelemb.torch.find_head`).
    embedding : LabelEmbedding, array or None
        The one given, else the head's.
    recipe : Recipe
    vectors : ndarray (L, d) float32 or None
        The embedding's label vectors.
    n_labels : int or None
        The label space: the embedding's, else the head's.
    label_names : list of str or None
        The embedding's vocabulary, else the one ``fit`` stored on the head.
    """

    net: nn.Module
    head: Optional[nn.Module]
    embedding: object
    recipe: Recipe
    vectors: Optional[np.ndarray]
    n_labels: Optional[int]
    label_names: Optional[list]


def model_parts(model: nn.Module, embedding, recipe) -> ModelParts:
    """Resolve ``model``, ``embedding`` and ``recipe=`` into :class:`ModelParts`."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    net = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    head = find_head(net)
    if embedding is None and head is not None and hasattr(head, "embedding"):
        embedding = head.embedding
    recipe = resolve_recipe(recipe, head, embedding)
    vectors = _vectors_of(embedding) if embedding is not None else None
    n_labels = vectors.shape[0] if vectors is not None else getattr(head, "n_labels", None)
    names = getattr(embedding, "label_names", None) if embedding is not None else None
    if names is None:
        names = getattr(head, "label_names", None)
    return ModelParts(net, head, embedding, recipe, vectors, n_labels, names)


def make_loss(recipe: Recipe, targets: Optional[Callable] = None) -> Loss:
    """The training loss of ``recipe``: ``loss(outputs, labels) -> (mean loss, rows)``,
    where ``rows`` (a tensor) weighs the batch in the epoch's mean loss.

    ``targets`` (an :class:`~labelemb.torch.EmbeddingTargets`) encodes the label sets for
    the cosine objective; rows without labels do not count there (they have no target).
    """
    if recipe.objective == "cosine":
        if targets is None:
            raise ValueError("the cosine objective needs the embedding's targets")
        cosine = CosineProximityLoss(reduction="none")

        def loss(out, y):
            rows = (y.lengths > 0).sum()
            return cosine(out, targets(y)).sum() / rows.clamp_min(1), rows
    elif recipe.objective == "softmax":
        def loss(out, y):
            return sparse_softmax_cross_entropy(out, y), (y.lengths > 0).sum()
    elif recipe.objective == "hybrid":
        def loss(out, y):
            return (sparse_bce_with_logits(out, y) + sparse_softmax_cross_entropy(out, y),
                    torch.tensor(len(y), device=out.device))
    else:
        def loss(out, y):
            return sparse_bce_with_logits(out, y), torch.tensor(len(y), device=out.device)
    return loss
