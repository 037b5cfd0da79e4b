"""Sampled softmax for the low-rank head: a training step scores a few thousand labels,
not all ``L``.

A :class:`~labelemb.torch.LowRankHead` costs ``O(d · L)`` per sample, which dominates a step
once ``L`` reaches tens of thousands. With ``fit(..., sampled_labels=C)`` each step scores
only ``C`` candidate labels, the same for the whole batch:

* every label of the batch's samples (each sample's positives, and the other samples'
  labels as negatives drawn from the label prior);
* the rest drawn uniformly from the labels not in the batch, each standing for
  ``(L - |batch labels|) / drawn`` labels: their logits get ``log`` of that added, so the
  softmax's normaliser over the candidates estimates the one over all labels.

Only the training steps sample; validation, prediction and the saved model use every label.
The head's label vectors, biases and scale keep their full shapes. Under
:class:`~labelemb.torch.sparse.SparseAdamW` (a sparse first layer) the label vectors get
row-sparse gradients, so a step updates only its candidates' rows; otherwise, and under
DistributedDataParallel, the rows outside a step's candidates get a zero gradient.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from .._validation import check_int
from .data import SparseLabels

__all__ = ["LabelSampler"]


class LabelSampler:
    """Draws a step's candidate labels and re-indexes its label sets onto them.

    Parameters
    ----------
    n_labels : int
        ``L``.
    n_candidates : int
        ``C``: labels scored per step (at least every label of the batch).
    seed : int
        Seeds the draws (a generator of its own, on the CPU); :meth:`start_epoch`
        reseeds them per epoch, so that a run resumed from a checkpoint draws what the
        uninterrupted run would have.

    Calling it on a batch's :class:`SparseLabels` returns ``(ids, offsets, labels)``:
    the candidate label ids (int64, ``(C',)``), the additive logit corrections (float32,
    ``(C',)``: 0 for the batch's labels, ``log(rest / drawn)`` for the drawn ones) and
    the batch's label sets over the ``C'`` candidates. ``C'`` is at least the number of
    the batch's labels and at most ``C`` otherwise (repeated draws are merged); every
    label, in order and uncorrected, when the draw would take every other label.

    Examples
    --------
    >>> import torch
    >>> from labelemb.torch import SparseLabels
    >>> y = SparseLabels(torch.tensor([0, 2, 3]), torch.tensor([5, 9, 5]), n_labels=100)
    >>> ids, offsets, sub = LabelSampler(100, 10, seed=0)(y)
    >>> ids[:2].tolist(), sub.n_labels, ids[sub.indices].tolist()
    ([5, 9], 10, [5, 9, 5])
    """

    def __init__(self, n_labels: int, n_candidates: int, seed: int = 0):
        self.n_labels = check_int(n_labels, "n_labels", lo=1)
        self.n_candidates = check_int(n_candidates, "sampled_labels", lo=1,
                                      hint=" (labels scored per training step)")
        self.seed = check_int(seed, "seed")
        self.generator = torch.Generator().manual_seed(self.seed)

    def start_epoch(self, epoch: int) -> None:
        """Reseed the draws for ``epoch`` (from 0)."""
        self.generator.manual_seed(self.seed + 1_000_003 * int(epoch))

    def __call__(self, labels: SparseLabels) -> Tuple[torch.Tensor, torch.Tensor,
                                                      SparseLabels]:
        dev = labels.device
        batch, inverse = torch.unique(labels.indices, sorted=True, return_inverse=True)
        rest = self.n_labels - batch.numel()
        want = min(max(self.n_candidates - batch.numel(), 0), rest)
        ids, offsets = batch, torch.zeros(batch.numel(), dtype=torch.float32, device=dev)
        if want == rest:  # every other label fits: no sampling, no correction
            ids = torch.arange(self.n_labels, device=dev)
            offsets = torch.zeros(self.n_labels, dtype=torch.float32, device=dev)
            inverse = batch[inverse]
        elif want > 0:
            # ranks among the labels outside the batch, drawn with replacement (O(C), not
            # O(L)) and made distinct; the rank-r label outside the sorted batch is
            # r + #{i : batch[i] - i <= r}
            ranks = torch.unique(torch.randint(rest, (want,), generator=self.generator))
            ranks = ranks.to(dev)
            gaps = batch - torch.arange(batch.numel(), device=dev)
            drawn = ranks + torch.searchsorted(gaps, ranks, right=True)
            ids = torch.cat([batch, drawn])
            offsets = torch.cat([offsets, torch.full((drawn.numel(),),
                                                     math.log(rest / drawn.numel()),
                                                     dtype=torch.float32, device=dev)])
        sub = SparseLabels(labels.indptr, inverse.reshape(-1), int(ids.numel()))
        return ids, offsets, sub


def check_sampled(sampled_labels: Optional[int], head, recipe) -> Optional[int]:
    """``fit``'s ``sampled_labels``: None, or an int >= 1 for a low-rank head trained with
    the softmax loss."""
    if sampled_labels is None:
        return None
    n = check_int(sampled_labels, "sampled_labels", lo=1,
                  hint=" (labels scored per training step), or None for all")
    from .heads import LowRankHead

    if not isinstance(head, LowRankHead) or recipe.objective != "softmax":
        raise ValueError(f"sampled_labels needs a low-rank head trained with the softmax "
                         f"loss (make_model(..., 'lowrank-softmax')); recipe "
                         f"{recipe.name!r} scores every label: leave sampled_labels=None")
    return n
