"""Decoding and evaluation (steps 6-7): the top-k labels of a model's outputs, by nearest
label vectors or by logits, and the ranking metrics of those top-k lists.

:func:`predict`, :func:`evaluate` and the validation pass of :func:`~labelemb.torch.fit`
share one decoding loop (:func:`decode_source`) over a prepared data source.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .._validation import check_int, check_k
from ..topk import topk as _topk
from .device import autocast, resolve_device
from .distributed import DistContext
from .recipes import ModelParts, Recipe, model_parts
from .sources import inference_source, is_labelled
from .sparse import check_source

__all__ = ["Decoder", "decode_source", "evaluate", "predict", "validate"]


class Decoder:
    """Top-k labels of a batch of model outputs, by nearest label vectors or by logits.

    Parameters
    ----------
    recipe : Recipe
        Its ``decode`` picks the rule.
    vectors : ndarray (L, d) float32 or None
        The label vectors (needed for ``decode="nearest"``).
    device : torch.device
        Where the outputs are; on CUDA the vectors are copied there once.
    """

    def __init__(self, recipe: Recipe, vectors: Optional[np.ndarray], device: torch.device):
        self.nearest = recipe.decode == "nearest"
        if self.nearest and vectors is None:
            raise ValueError("this model is decoded by nearest labels; pass embedding=")
        self.vectors = vectors
        if self.nearest and device.type == "cuda":
            self.vectors = torch.as_tensor(vectors, device=device)

    def __call__(self, out: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
        out = out.float()
        if not self.nearest:
            s, i = torch.topk(out, k, dim=1)
            return i, s
        if out.device.type == "cpu":  # the C++ decoder (blocked sgemm + selection)
            i, s = _topk(out.numpy(), self.vectors, k, num_threads=torch.get_num_threads())
            return torch.from_numpy(i.astype(np.int64)), torch.from_numpy(s)
        i, s = _topk(out, self.vectors, k)
        return i.long(), s


def check_output(out: torch.Tensor, width: int, recipe: Recipe) -> None:
    """A clear error when the model's outputs do not have the width ``recipe`` needs."""
    if out.dim() != 2 or out.shape[1] != width:
        what = "the embedding dimension d" if recipe.objective == "cosine" else \
            "the number of labels L"
        raise ValueError(f"the model outputs shape {tuple(out.shape)}, but recipe "
                         f"{recipe.name!r} needs (batch, {width}) ({what}); check the head")


@torch.no_grad()
def decode_source(net: nn.Module, source, decoder: Optional[Decoder], k: int, batch_size: int,
                  ctx: DistContext, device: torch.device, amp, step=None
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(indices int64, scores float32)`` of this rank's samples, in order, on ``device``;
    the model is put in eval mode meanwhile. ``step(x, k) -> (indices, scores)`` replaces
    ``decoder(net(x), k)`` for a batch (the neighbour votes' fused decoding)."""
    was = net.training
    net.eval()
    idx, scores = [], []
    try:
        with autocast(amp, device):
            for x, _ in source.eval_batches(batch_size, ctx, device):
                i, s = decoder(net(x), k) if step is None else step(x, k)
                idx.append(i.to(torch.int64))
                scores.append(s.float())
    finally:
        net.train(was)
    if not idx:
        return (torch.zeros((0, k), dtype=torch.int64, device=device),
                torch.zeros((0, k), dtype=torch.float32, device=device))
    return torch.cat(idx), torch.cat(scores)


def _metric_ks(n_labels: int) -> Tuple[int, int, int]:
    return min(1, n_labels), min(5, n_labels), min(100, n_labels)


def validate(net: nn.Module, source, decoder: Decoder, batch_size: int, ctx: DistContext,
             device: torch.device, amp, n_labels: int) -> Dict[str, float]:
    """The validation pass of one epoch: P@1, P@5, nDCG@5 and MAP@100 (k clipped to the
    number of labels). Under ``torchrun`` each rank decodes its shard and the top-k lists
    are gathered, so the figures equal a one-process run."""
    from .. import metrics

    k1, k5, K = _metric_ks(n_labels)
    idx, _ = decode_source(net, source, decoder, K, batch_size, ctx, device, amp)
    idx = ctx.gather_rows(idx).cpu().numpy()
    r = metrics.report(idx, source.truth(), ks=sorted({k1, k5, K}), n_labels=n_labels)
    return {f"p@{k1}": r[f"precision@{k1}"], f"p@{k5}": r[f"precision@{k5}"],
            f"ndcg@{k5}": r[f"ndcg@{k5}"], f"map@{K}": r[f"map@{K}"]}


def _inference_parts(model, embedding, recipe, device) -> Tuple[ModelParts, torch.device]:
    parts = model_parts(model, embedding, recipe)
    if device is None:
        p = next(parts.net.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
    else:
        dev = resolve_device(device)
    if parts.recipe.decode == "nearest" and parts.vectors is None:
        raise ValueError("this model is decoded by nearest labels; pass embedding=")
    parts.net.to(dev)
    return parts, dev


def _decode(parts: ModelParts, source, k: int, batch_size: int, dev, amp, neighbours):
    if neighbours is None:
        return decode_source(parts.net, source, Decoder(parts.recipe, parts.vectors, dev),
                             k, batch_size, DistContext(), dev, amp)
    from .neighbours import check_votes, decode_fused

    check_votes(neighbours, parts.n_labels)
    if parts.recipe.decode != "logits":
        raise ValueError(f"neighbours= fuses votes with logits; recipe "
                         f"{parts.recipe.name!r} is decoded by nearest label vectors")
    return decode_fused(parts.net, source, neighbours, k, batch_size, dev, amp)


def predict(model: nn.Module, data, embedding=None, k: int = 10, *, batch_size: int = 2048,
            device=None, amp=True, recipe=None, neighbours=None
            ) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k labels of each sample, decoded as the model was trained.

    Parameters
    ----------
    model : nn.Module
    data : array, tensor or scipy sparse matrix of inputs, (inputs, labels) pair, or Dataset
    embedding : LabelEmbedding, optional
        For nearest-label decoding (defaults to the head's).
    k : int
    batch_size, device, amp, recipe : as in :func:`~labelemb.torch.fit`; device defaults
        to the model's.
    neighbours : NeighbourVotes, optional
        Fuse the model's softmax with the votes of each sample's nearest training samples
        (:class:`~labelemb.torch.neighbours.NeighbourVotes`); recipes decoded by logits.

    Returns
    -------
    indices : ndarray (n, k) int64
    scores : ndarray (n, k) float32
        Inner products with the label vectors (embedding models), logits (the other
        recipes) or fused probabilities (with ``neighbours``), best first.

    Examples
    --------
    >>> import numpy as np
    >>> from labelemb.torch import make_model, mlp, predict
    >>> model = make_model(mlp(8, [16]), 16, "bce", n_labels=20)
    >>> idx, scores = predict(model, np.zeros((3, 8), np.float32), k=4)
    >>> idx.shape, idx.dtype.name, scores.dtype.name
    ((3, 4), 'int64', 'float32')
    """
    parts, dev = _inference_parts(model, embedding, recipe, device)
    source = inference_source(data, parts.n_labels if parts.n_labels is not None else 0,
                              parts.label_names)
    check_source(parts.net, source, "data")
    k = check_k(k, parts.n_labels, "the number of labels")
    batch_size = check_int(batch_size, "batch_size", lo=1)
    idx, scores = _decode(parts, source, k, batch_size, dev, amp, neighbours)
    return idx.cpu().numpy(), scores.cpu().numpy()


def evaluate(model: nn.Module, data, embedding=None, *, ks: Sequence[int] = (1, 5),
             map_k: int = 100, batch_size: int = 2048, device=None, amp=True,
             recipe=None, neighbours=None) -> Dict[str, float]:
    """Ranking metrics of ``model`` on ``data`` (an (inputs, labels) pair or Dataset),
    decoded as :func:`predict` does (``neighbours``: fused with neighbour votes).

    Returns ``labelemb.metrics.report`` at ``ks`` plus ``map@{map_k}`` (k clipped to L).
    """
    from .. import metrics

    parts, dev = _inference_parts(model, embedding, recipe, device)
    if not is_labelled(data):
        raise TypeError("data must be an (inputs, labels) pair or a Dataset of pairs")
    source = inference_source(data, parts.n_labels, parts.label_names)
    check_source(parts.net, source, "data")
    L = parts.n_labels if parts.n_labels is not None else source.truth().shape[1]
    ks = [check_k(k) for k in ks]
    map_k = check_k(map_k)
    batch_size = check_int(batch_size, "batch_size", lo=1)
    idx, _ = _decode(parts, source, min(max(ks + [map_k]), L), batch_size, dev, amp,
                     neighbours)
    return metrics.report(idx.cpu().numpy(), source.truth(),
                          ks=sorted({min(k, L) for k in ks} | {min(map_k, L)}), n_labels=L)
