"""The training objectives: cosine proximity (step 5), sigmoid cross-entropy, and softmax
cross-entropy over all labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_choice
from .data import SparseLabels

__all__ = ["CosineProximityLoss", "sparse_bce_with_logits", "sparse_softmax_cross_entropy"]

_EPS2 = 1e-24  # squared norm below which a vector counts as zero


class CosineProximityLoss(nn.Module):
    """Mean of ``1 - cos(prediction, target)`` over the rows with a non-zero target.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` returns one value per row (0 for rows with a zero target).

    Rows whose target is the zero vector (an empty label set) carry no direction and are
    left out of the mean; when every row is empty the loss is 0 (with a zero gradient).
    A zero prediction gives cosine 0 (loss 1) and a finite gradient: norms are clamped
    on their squares, whose gradient is finite everywhere. Computed in float32 whatever
    the autocast dtype.

    Examples
    --------
    >>> import torch
    >>> from labelemb.torch import CosineProximityLoss
    >>> loss = CosineProximityLoss()
    >>> float(loss(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])))
    0.0
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum", "none"))

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if prediction.shape != target.shape or prediction.dim() != 2:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target "
                             f"{tuple(target.shape)} must both be (batch, d)")
        p, t = prediction.float(), target.float()
        pp = (p * p).sum(1)
        tt = (t * t).sum(1)
        cos = (p * t).sum(1) * torch.rsqrt(pp.clamp_min(_EPS2)) * torch.rsqrt(tt.clamp_min(_EPS2))
        valid = tt > _EPS2
        loss = torch.where(valid, 1.0 - cos, torch.zeros_like(cos))
        if self.reduction == "none":
            return loss
        total = loss.sum()
        if self.reduction == "sum":
            return total
        return total / valid.sum().clamp_min(1)


def sparse_bce_with_logits(logits: torch.Tensor, labels: SparseLabels) -> torch.Tensor:
    """Sigmoid cross-entropy against multi-hot targets, summed over labels, averaged
    over rows, without building the (batch x L) target matrix.

    ``BCE(z, y) = softplus(z) - z·y`` for ``y`` in {0, 1}, so the sum over a row is
    ``sum softplus(z) - sum of z at the row's labels``. Equal to
    ``F.binary_cross_entropy_with_logits(z, Y, reduction="sum") / batch``.
    """
    z = logits.float()
    if z.dim() != 2 or z.shape[1] != labels.n_labels or z.shape[0] != len(labels):
        raise ValueError(f"logits {tuple(z.shape)} must be (batch, n_labels) = "
                         f"({len(labels)}, {labels.n_labels})")
    pos = z[labels.row_ids(), labels.indices].sum()
    return (F.softplus(z).sum() - pos) / max(len(labels), 1)


def sparse_softmax_cross_entropy(logits: torch.Tensor, labels: SparseLabels) -> torch.Tensor:
    """Softmax cross-entropy over all labels against the row's label set as a uniform
    target distribution, averaged over the rows that have labels.

    For a row with label set ``Y``: ``logsumexp(z) - mean(z[Y])``, the cross-entropy of
    ``softmax(z)`` against ``1/|Y|`` on ``Y``. Rows without labels carry no target and are
    left out of the mean (0 when every row is empty). The labels compete for one unit of
    probability, which suits ranking (P@k, MAP) rather than calibrated per-label
    probabilities; decode by the logits as for the sigmoid heads. Computed in float32
    whatever the autocast dtype, without building the (batch x L) target matrix.

    Examples
    --------
    >>> import torch
    >>> from labelemb.torch import SparseLabels
    >>> from labelemb.torch.losses import sparse_softmax_cross_entropy
    >>> y = SparseLabels(torch.tensor([0, 2, 2]), torch.tensor([0, 1]), n_labels=3)
    >>> z = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    >>> round(float(sparse_softmax_cross_entropy(z, y)), 4)  # row 2 has no labels
    1.0986
    """
    z = logits.float()
    if z.dim() != 2 or z.shape[1] != labels.n_labels or z.shape[0] != len(labels):
        raise ValueError(f"logits {tuple(z.shape)} must be (batch, n_labels) = "
                         f"({len(labels)}, {labels.n_labels})")
    lengths = labels.lengths.to(z.device)
    valid = lengths > 0
    rows = labels.row_ids()
    weight = 1.0 / lengths.clamp_min(1).to(z.dtype)
    pos = (z[rows, labels.indices] * weight[rows]).sum()
    lse = torch.logsumexp(z, dim=1)
    total = torch.where(valid, lse, torch.zeros_like(lse)).sum() - pos
    return total / valid.sum().clamp_min(1)
