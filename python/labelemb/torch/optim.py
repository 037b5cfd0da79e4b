"""The optimiser and the per-step learning-rate schedule of ``fit``."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_choice
from .sparse import SparseAdamW, sparse_grad_parameters

__all__ = ["OPTIMIZERS", "SCHEDULES", "make_optimizer", "make_schedule", "optimizer_name"]

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine")


def optimizer_name(optimizer) -> str:
    """How ``optimizer`` (a name or a callable) is recorded in a checkpoint's settings."""
    if isinstance(optimizer, str):
        return optimizer
    return getattr(optimizer, "__qualname__", type(optimizer).__name__)


def make_optimizer(optimizer, model: nn.Module, lr: float, weight_decay: float):
    """``optimizer`` over ``model``'s parameters: "adamw", "adam", "sgd" (momentum 0.9) or a
    callable ``(param_groups, lr=) -> Optimizer``. Biases (they hold the prior odds),
    scales and label vectors get no weight decay."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and not name.endswith("label_vectors") else plain).append(p)
    groups = [g for g in ({"params": decay, "weight_decay": weight_decay},
                          {"params": plain, "weight_decay": 0.0}) if g["params"]]
    if sparse_grad_parameters(model) and optimizer in ("adamw", "adam", "sgd"):
        # SparseLinear(sparse_grad=True): torch's AdamW/Adam refuse sparse gradients, and
        # SGD's momentum buffer would grow with every step's rows
        if optimizer == "sgd":
            raise ValueError("optimizer='sgd' (momentum 0.9) cannot train the row-sparse "
                             "gradients of a SparseLinear(sparse_grad=True) (mlp(..., "
                             "sparse=True)); use 'adamw' or 'adam', or a callable such as "
                             "lambda groups, lr: torch.optim.SGD(groups, lr=lr)")
        return SparseAdamW(groups, lr=lr, decoupled=optimizer == "adamw")
    if optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    if callable(optimizer) and not isinstance(optimizer, str):
        return optimizer(groups, lr=lr)
    raise ValueError(f"optimizer must be 'adamw', 'adam', 'sgd' or a callable "
                     f"(param_groups, lr=) -> Optimizer, got {optimizer!r}")


def make_schedule(schedule, opt, total_steps: int, warmup_steps: int):
    """A per-step ``LambdaLR``: linear warm-up over ``warmup_steps``, then constant or
    cosine decay to 0 at ``total_steps``; None when the rate never changes."""
    check_choice("constant" if schedule is None else schedule, "schedule", SCHEDULES)
    if schedule in (None, "constant") and warmup_steps == 0:
        return None

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "cosine":
            t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
