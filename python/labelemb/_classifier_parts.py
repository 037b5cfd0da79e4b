"""The pieces of :class:`labelemb.Classifier` that are not the estimator itself: batches
for the backbone, the width of a custom backbone, the best-epoch callback and a thread
setting for a block."""

from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .torch.sparse import csr_batch

__all__ = ["BestEpoch", "batch_tensor", "out_width", "threads"]


# ---------------------------------------------------------------- batches
def batch_tensor(X, a: int, b: int, dev: torch.device, sparse_layer: bool) -> torch.Tensor:
    """Rows ``a:b`` of ``X`` for the backbone: a torch sparse CSR tensor for a model whose
    first layer is a SparseLinear, else dense (a dense model's inputs are dense anyway)."""
    rows = X[a:b]
    if sp.issparse(rows):
        if sparse_layer:
            return csr_batch(rows, dev)
        rows = rows.toarray()
    return torch.from_numpy(np.ascontiguousarray(rows)).to(dev)


def out_width(net: nn.Module, inputs) -> int:
    probe = inputs[:2]
    if sp.issparse(probe):
        probe = probe.toarray()
    was = net.training
    net.eval()
    with torch.no_grad():
        out = net(torch.as_tensor(np.asarray(probe, dtype=np.float32)))
    net.train(was)
    if out.dim() != 2:
        raise ValueError(f"the backbone must map (batch, features) to (batch, width), got "
                         f"output shape {tuple(out.shape)}")
    return int(out.shape[1])


class BestEpoch:
    """Callback of ``labelemb.torch.fit``: keeps the weights of the best validation epoch
    (by the record's ``key``; missing or non-finite figures never count) and stops after
    ``patience`` epochs without improvement (None: never stops)."""

    def __init__(self, key: str, patience: Optional[int]):
        self.key, self.patience = key, patience
        self.best, self.epoch, self.state, self.bad = -np.inf, 0, None, 0

    def __call__(self, history, model) -> bool:
        rec = history.epochs[-1]
        value = rec.get(self.key)
        if value is not None and np.isfinite(value) and value > self.best:
            self.best, self.epoch, self.bad = value, int(rec["epoch"]), 0
            self.state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience


@contextlib.contextmanager
def threads(n: int):
    """torch's intra-op threads set to ``n`` (0: unchanged) for the block."""
    if n == 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

