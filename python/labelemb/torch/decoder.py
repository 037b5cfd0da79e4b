"""Exact decoding of a trained model: the top-k labels without the dense outputs.

Every head's scores are inner products of a per-sample query with fixed label vectors: a
logit head's ``W h + b`` is ``[h, 1] · [W, b]``, the low-rank head's ``s · normalize(W h) ·
Eᵀ + b`` is ``[z, 1] · [s E, b]`` (plus ``[h] · [R]`` for its residual), the paper's head's
prediction ``p`` ranks labels by ``p · E``. So the top-k of a batch runs through
:func:`labelemb.topk` (selection inside the blocked sgemm, no ``n x L`` matrix) or a pruned
:class:`labelemb.TopkIndex` over those vectors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..embedding import LabelEmbedding
from ..topk import TopkIndex, topk
from .heads import EmbeddingHead, LogitHead, LowRankHead, find_head

__all__ = ["ExactDecoder"]

# From this many labels on, label vectors are decoded through a pruned TopkIndex (built
# once per model), as long as it skips more than this share of the scores.
INDEX_MIN_LABELS = 4096
MAX_SCORED_FRACTION = 0.8


class ExactDecoder:
    """Exact top-k of a ``nn.Sequential(backbone, head)`` model's scores, without the
    dense ``n x L`` outputs.

    Parameters
    ----------
    model : nn.Sequential
        ``(backbone, head)`` as :func:`~labelemb.torch.make_model` builds it, in eval mode.
    embedding : LabelEmbedding
        The label vectors of an :class:`~labelemb.torch.EmbeddingHead` (the paper's head).
    device : torch.device
    num_threads : int
        CPU threads of the top-k (0: all cores).

    Calling the decoder on a batch of inputs ``x`` returns ``(indices, scores)``, (n, k)
    int64 and float32 arrays, best first: the same labels as ``torch.topk`` of the model's
    outputs (scores exact, see :func:`labelemb.topk`).

    On the CPU, label vectors (the low-rank and the paper's heads) of at least
    ``INDEX_MIN_LABELS`` labels go through a :class:`~labelemb.TopkIndex` (dropped if it
    scores more than ``MAX_SCORED_FRACTION`` of the labels), everything else through
    :func:`~labelemb.topk`; on CUDA, the torch path of :func:`~labelemb.topk` runs on the
    device.
    """

    def __init__(self, model: nn.Module, emb: LabelEmbedding, device: torch.device,
                 num_threads: int):
        self.device = device
        self.num_threads = num_threads
        head = find_head(model)
        if not isinstance(model, nn.Sequential) or len(model) != 2 or model[1] is not head:
            raise ValueError("the model must be nn.Sequential(backbone, head) as make_model "
                             "builds it")
        self.backbone, self.head = model[0], head
        with torch.no_grad():
            if isinstance(head, LogitHead):
                V = torch.cat([head.linear.weight, head.linear.bias[:, None]], dim=1)
            elif isinstance(head, LowRankHead):
                # the scale goes with the label vectors (queries [z, 1] of norm sqrt(2)):
                # k-means then clusters by direction, and the index's bound |q| |v - c|
                # stays tight
                parts = [head.scale * head.label_vectors]
                if head.residual is not None:
                    parts.append(head.residual.weight)
                V = torch.cat(parts + [head.bias[:, None]], dim=1)
            elif isinstance(head, EmbeddingHead):
                V = torch.as_tensor(emb.vectors)
            else:  # pragma: no cover - find_head returns one of the three
                raise TypeError(f"unknown head {type(head).__name__}")
        V = V.detach().float()
        self.index = None
        if device.type == "cuda":
            self.vectors = V.to(device).contiguous()
            return
        self.vectors = np.ascontiguousarray(V.cpu().numpy())
        # The rows of a full logit head do not cluster (a pruned index scores ~all of them);
        # label vectors do. The index is dropped if it stops skipping labels.
        if not isinstance(head, LogitHead) and self.vectors.shape[0] >= INDEX_MIN_LABELS:
            self.index = TopkIndex(self.vectors, num_threads=num_threads)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone(x).float()
        head = self.head
        one = torch.ones((h.shape[0], 1), dtype=h.dtype, device=h.device)
        if isinstance(head, LogitHead):
            return torch.cat([h, one], dim=1)
        if isinstance(head, LowRankHead):
            z = F.normalize(head.linear(h), dim=-1)
            parts = [z] + ([h] if head.residual is not None else [])
            return torch.cat(parts + [one], dim=1)
        return head.linear(h)

    def __call__(self, x: torch.Tensor, k: int):
        q = self.queries(x)
        if self.device.type == "cuda":
            i, s = topk(q, self.vectors, k)
            return i.long().cpu().numpy(), s.cpu().numpy()
        q = q.numpy()
        if self.index is not None:
            i, s = self.index.search(q, k, num_threads=self.num_threads)
            if self.index.last_scored_fraction_ > MAX_SCORED_FRACTION:
                self.index = None
        else:
            i, s = topk(q, self.vectors, k, num_threads=self.num_threads)
        return i.astype(np.int64, copy=False), s
