"""Sparse input features (TF-IDF, bags of features with 10^4-10^6 columns), never densified.

* :class:`SparseLinear` — a first layer that takes a batch of sparse rows (a torch sparse
  CSR or COO tensor) or dense rows. A sparse batch costs O(nnz · out_features) forward and
  backward, through ``embedding_bag(mode="sum", per_sample_weights=values)`` over the CSR's
  column indices and row pointers; the weight gradient is either dense (any optimizer) or
  only the touched rows (``sparse_grad=True``).
* :class:`SparseAdamW` — Adam / AdamW that also takes the row-sparse gradients of a
  ``SparseLinear(sparse_grad=True)``: their rows are updated lazily (moments and weight
  decay of a row move when a batch touches it), every dense parameter exactly as AdamW.
* The inputs: :func:`as_csr_inputs` checks a scipy sparse matrix and makes it CSR float32
  once; :func:`csr_batch` turns a block of its rows into a torch sparse CSR tensor on the
  training device. ``sources.CSRSource`` slices the batches with them, so that
  :func:`labelemb.torch.fit`, :func:`~labelemb.torch.predict` and
  :func:`~labelemb.torch.evaluate` take scipy sparse inputs; :func:`check_source` refuses
  what the model cannot take before any step.

Why ``embedding_bag``: it gathers one weight row per non-zero and, with a row-sparse
gradient, returns only those rows; ``torch.sparse.mm`` (CSR or COO batches) makes a dense
``in_features x out_features`` gradient every step. Forward + backward of the layer, batch
256, 10^5 columns, 1,024 outputs, on a quiet 2-core AMD EPYC: 0.19 ms (3 non-zeros per row)
and 15 ms (50) against 184-209 ms for ``torch.sparse.mm`` and 595-606 ms for the densified
batch (benchmarks/README.md, "Sparse input features"). On CUDA it is the operator PyTorch
tunes for bags of rows, on int32 and int64 indices.
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_bool, check_int

__all__ = ["SparseAdamW", "SparseLinear", "as_csr_inputs", "clip_grad_norm_", "csr_batch",
           "check_source", "dense_gradients_under_nccl", "first_sparse_layer",
           "sparse_grad_parameters"]


# ---------------------------------------------------------------- the layer
class SparseLinear(nn.Module):
    """``y = x W + b`` for sparse (or dense) rows ``x``, without densifying them.

    Parameters
    ----------
    in_features : int
        Columns of the inputs (``F``, up to millions).
    out_features : int
    bias : bool, default True
    sparse_grad : bool, default False
        False: ``weight.grad`` is dense (``in_features x out_features``, as an
        ``nn.Linear``'s), so any optimizer works. True: it is a sparse COO tensor holding
        only the rows of the columns the batch uses (O(nnz · out_features) memory and
        time); train with :class:`SparseAdamW` (what :func:`labelemb.torch.fit` builds for
        ``"adamw"``/``"adam"``) or another optimizer that takes sparse gradients
        (``torch.optim.SGD`` without momentum, ``SparseAdam``, ``Adagrad``). Under
        ``torchrun`` the gloo backend all-reduces them as they are; with NCCL (dense
        tensors only) ``fit`` switches the layer to dense gradients, with a warning.

    Attributes
    ----------
    weight : Parameter (in_features, out_features)
        The transpose of an ``nn.Linear``'s weight (``bag.weight`` in the state dict, an
        ``nn.EmbeddingBag``'s): a sample's non-zero columns gather contiguous rows.
        Initialised as ``nn.Linear`` does, uniform in ``±1/sqrt(in_features)``, as is the
        bias.
    bias : Parameter (out_features,) or None

    Input: a torch sparse CSR or COO tensor (batch, in_features) — the values are the
    features, the stored zeros count as zeros — or a dense (..., in_features) tensor.
    Output: dense (batch, out_features), the weight's dtype.

    Examples
    --------
    >>> import torch
    >>> from labelemb.torch import SparseLinear
    >>> layer = SparseLinear(1000, 8)
    >>> x = torch.sparse_coo_tensor([[0, 0, 1], [3, 999, 42]], [1.0, 0.5, 2.0], (2, 1000),
    ...                             check_invariants=True)
    >>> torch.allclose(layer(x), layer(x.to_dense()), atol=1e-6)
    True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 sparse_grad: bool = False):
        super().__init__()
        in_features = check_int(in_features, "in_features", lo=1)
        out_features = check_int(out_features, "out_features", lo=1)
        sparse_grad = check_bool(sparse_grad, "sparse_grad")
        self.in_features = in_features
        self.out_features = out_features
        # The weight lives in an EmbeddingBag of its own (the bias outside it): that is how
        # DistributedDataParallel knows to expect its sparse gradients and all-reduce them.
        # (An uninitialised weight is given so that it is drawn once, below.)
        self.bag = nn.EmbeddingBag(in_features, out_features, mode="sum", sparse=sparse_grad,
                                   include_last_offset=True,
                                   _weight=torch.empty(in_features, out_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @property
    def weight(self) -> nn.Parameter:
        """The ``(in_features, out_features)`` weight (``bag.weight`` in the state dict)."""
        return self.bag.weight

    @property
    def sparse_grad(self) -> bool:
        """Whether ``weight.grad`` is a sparse tensor of the batch's rows."""
        return self.bag.sparse

    def reset_parameters(self) -> None:
        # nn.Linear's kaiming_uniform_(a=sqrt(5)) on (out, in) is uniform(±1/sqrt(in)).
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, sparse_grad={self.sparse_grad}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"SparseLinear takes a torch tensor (sparse CSR/COO or dense), "
                            f"got {type(x).__name__}")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"the inputs have {x.shape[-1]} columns but this SparseLinear "
                             f"takes in_features={self.in_features}")
        if x.layout == torch.strided:
            y = torch.matmul(x.to(self.weight.dtype), self.weight)
            return y + self.bias if self.bias is not None else y
        if x.layout == torch.sparse_coo:
            x = _quiet_csr(lambda: x.coalesce().to_sparse_csr())
        elif x.layout != torch.sparse_csr:
            raise TypeError(f"SparseLinear takes sparse CSR or COO tensors, got {x.layout}")
        if x.dim() != 2:
            raise ValueError(f"a sparse batch must be 2-D (batch, in_features), got shape "
                             f"{tuple(x.shape)}")
        values = x.values()
        if values.dtype != self.weight.dtype:
            values = values.to(self.weight.dtype)
        return F.embedding_bag(x.col_indices(), self.weight, x.crow_indices(), mode="sum",
                               sparse=self.sparse_grad, per_sample_weights=values,
                               include_last_offset=True) + (
            self.bias if self.bias is not None else 0.0)


def sparse_grad_parameters(model: nn.Module) -> list:
    """The parameters of ``model`` whose gradients are sparse (``SparseLinear`` weights
    with ``sparse_grad=True``)."""
    return [m.weight for m in model.modules()
            if isinstance(m, SparseLinear) and m.sparse_grad]


def first_sparse_layer(model: nn.Module) -> Optional[SparseLinear]:
    """The first :class:`SparseLinear` among ``model``'s modules, or None."""
    return next((m for m in model.modules() if isinstance(m, SparseLinear)), None)


# ---------------------------------------------------------------- the optimizer
class SparseAdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay (AdamW) that also takes row-sparse gradients.

    A dense gradient gets AdamW's update. A sparse COO gradient (from
    ``SparseLinear(sparse_grad=True)``) updates only the rows it holds: their two moments,
    their weight decay and their step, with the bias correction of the global step count
    (as ``torch.optim.SparseAdam``); rows no batch touches stay as they are. The moments
    take ``2 x`` the parameters' memory, as AdamW's.

    Parameters
    ----------
    params : iterable of parameters or param groups
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0.01
    decoupled : bool, default True
        True: AdamW (``p -= lr · wd · p``); False: Adam with L2 (``g += wd · p``).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: Tuple[float, float] = (0.9,
                 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 decoupled: bool = True):
        if not (lr > 0 and eps > 0 and weight_decay >= 0 and 0 <= betas[0] < 1 and
                0 <= betas[1] < 1):
            raise ValueError(f"SparseAdamW needs lr > 0, eps > 0, weight_decay >= 0 and betas "
                             f"in [0, 1), got lr={lr}, eps={eps}, weight_decay={weight_decay}, "
                             f"betas={betas}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled=decoupled))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            wd, decoupled = group["weight_decay"], group["decoupled"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p,
                                                           memory_format=torch.preserve_format)
                state["step"] += 1
                t = float(state["step"])
                step_size = lr / (1 - b1 ** t)
                bc2_sqrt = math.sqrt(1 - b2 ** t)
                if p.grad.is_sparse:
                    _sparse_rows_update(p, p.grad, state, lr, b1, b2, eps, wd, decoupled,
                                        step_size, bc2_sqrt)
                    continue
                g = p.grad
                if wd and decoupled:
                    p.mul_(1 - lr * wd)
                elif wd:
                    g = g.add(p, alpha=wd)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(m, v.sqrt().div_(bc2_sqrt).add_(eps), value=-step_size)
        return loss


def _sparse_rows_update(p, grad, state, lr, b1, b2, eps, wd, decoupled, step_size,
                        bc2_sqrt) -> None:
    grad = grad.coalesce()  # one row per touched column, duplicates summed
    rows = grad.indices()[0]
    g = grad.values()
    if rows.numel() == 0:
        return
    if wd:
        w = p.index_select(0, rows)
        if decoupled:  # p[rows] *= 1 - lr * wd
            p.index_add_(0, rows, w, alpha=-lr * wd)
        else:
            g = g.add(w, alpha=wd)
    m = state["exp_avg"].index_select(0, rows).lerp_(g, 1 - b1)
    state["exp_avg"].index_copy_(0, rows, m)
    v = state["exp_avg_sq"].index_select(0, rows).mul_(b2).addcmul_(g, g, value=1 - b2)
    state["exp_avg_sq"].index_copy_(0, rows, v)
    # m / (sqrt(v) / bc2 + eps) = bc2 · m / (sqrt(v) + eps · bc2), computed in m's and v's
    # buffers and added to the rows in place: the weight rows are never gathered
    p.index_add_(0, rows, m.div_(v.sqrt_().add_(eps * bc2_sqrt)),
                 alpha=-step_size * bc2_sqrt)


# ---------------------------------------------------------------- inputs
def as_csr_inputs(x, name: str) -> sp.csr_matrix:
    """Any scipy sparse matrix as CSR float32 with sorted, in-range column indices and
    finite values (a copy only where a conversion is needed; the caller's matrix is never
    modified). Raises ValueError/TypeError naming ``name``."""
    if not sp.issparse(x):
        raise TypeError(f"{name} inputs must be a scipy sparse matrix, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} inputs must be 2-D (samples x features), got shape "
                         f"{x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} inputs have dtype {x.dtype}; pass numbers")
    if x.format == "csr":
        _check_csr_structure(x, name)
    elif x.format == "coo":
        _check_coo_structure(x, name)
    # Arrays are shared with the caller's matrix only when it is CSR float32 already;
    # then it is copied once if it needs trimming or sorting, never changed in place.
    shared = x.format == "csr" and x.dtype == np.float32
    csr = sp.csr_matrix(x.tocsr().astype(np.float32, copy=False))
    nnz = csr.indptr[-1]
    if shared and (len(csr.indices) > nnz or not csr.has_sorted_indices):
        csr = sp.csr_matrix((csr.data[:nnz].copy(), csr.indices[:nnz].copy(),
                             csr.indptr.copy()), shape=csr.shape)
    elif len(csr.indices) > nnz:
        csr.indices, csr.data = csr.indices[:nnz], csr.data[:nnz]
    if not np.isfinite(csr.data).all():
        bad = int(np.searchsorted(csr.indptr, np.flatnonzero(~np.isfinite(csr.data))[0],
                                  side="right") - 1)
        raise ValueError(f"{name} inputs contain NaN or Inf (first in row {bad}); remove or "
                         "fix those values")
    if not csr.has_sorted_indices:
        csr.sort_indices()
    return csr


def _check_csr_structure(x, name: str) -> None:
    n, cols = x.shape
    indptr, indices = np.asarray(x.indptr), np.asarray(x.indices)
    if indptr.shape != (n + 1,) or indptr[0] != 0 or (np.diff(indptr) < 0).any() or \
            indptr[-1] > len(indices) or indptr[-1] > len(x.data):
        raise ValueError(f"{name} inputs are a malformed CSR matrix (indptr must rise from 0 "
                         f"to nnz, {n + 1} entries); rebuild it with scipy.sparse.csr_matrix")
    used = indices[:indptr[-1]]
    if used.size and (used.min() < 0 or used.max() >= cols):
        bad = int(used.min() if used.min() < 0 else used.max())
        raise ValueError(f"{name} inputs have column index {bad}, outside [0, {cols}) "
                         f"(the matrix's {cols} columns); fix the indices or the shape")


def _check_coo_structure(x, name: str) -> None:
    cols = x.shape[1]
    for what, idx, size in (("row", x.row, x.shape[0]), ("column", x.col, cols)):
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            bad = int(idx.min() if idx.min() < 0 else idx.max())
            raise ValueError(f"{name} inputs have {what} index {bad}, outside [0, {size}); "
                             "fix the indices or the shape")


def csr_batch(rows: sp.csr_matrix, device=None, pin: bool = False) -> torch.Tensor:
    """A scipy CSR block (float32, from :func:`as_csr_inputs`) as a torch sparse CSR tensor
    on ``device``, sharing the index arrays on the CPU; ``pin`` copies through pinned memory
    so the transfer to a GPU is asynchronous."""
    crow, col = torch.from_numpy(rows.indptr), torch.from_numpy(rows.indices)
    if crow.dtype != col.dtype:  # scipy picks each index dtype on its own
        crow, col = crow.long(), col.long()
    val = torch.from_numpy(rows.data)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type != "cpu":
        if pin:
            crow, col, val = crow.pin_memory(), col.pin_memory(), val.pin_memory()
        crow, col, val = (t.to(dev, non_blocking=pin) for t in (crow, col, val))
    return _quiet_csr(lambda: torch.sparse_csr_tensor(crow, col, val, rows.shape,
                                                      check_invariants=False))


def _quiet_csr(make):
    with warnings.catch_warnings():
        # torch calls its CSR layout "beta" (once per process); the layer only reads one
        warnings.simplefilter("ignore", UserWarning)
        return make()


def clip_grad_norm_(parameters, max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` (2-norm) that also takes the sparse gradients of a
    ``SparseLinear(sparse_grad=True)`` (coalesced in place first: duplicates summed)."""
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return torch.zeros(())
    norms = []
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            norms.append(torch.linalg.vector_norm(p.grad.values()))
        else:
            norms.append(torch.linalg.vector_norm(p.grad))
    total = torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]))
    coef = (float(max_norm) / (total + 1e-6)).clamp(max=1.0)
    for p in params:
        if p.grad.is_sparse:
            p.grad.values().mul_(coef.to(p.grad.device))
        else:
            p.grad.mul_(coef.to(p.grad.device))
    return total


def check_source(model: nn.Module, source, name: str, train=None) -> None:
    """Refuse, before any step, sparse inputs that ``model`` cannot take and validation
    inputs of another kind than the training ones (``train``: the training source).

    A source with ``sparse = True`` (scipy sparse inputs) needs a :class:`SparseLinear`
    in ``model`` whose ``in_features`` is the matrix's column count."""
    sparse = getattr(source, "sparse", False)
    if train is not None and hasattr(train, "inputs") and hasattr(source, "inputs") and \
            getattr(train, "sparse", False) != sparse:
        kinds = ("a scipy sparse matrix", "dense") if sparse else ("dense",
                                                                  "a scipy sparse matrix")
        raise ValueError(f"{name} inputs are {kinds[0]} but the train inputs are {kinds[1]}; "
                         f"pass both in the same form")
    if not sparse:
        return
    layer = first_sparse_layer(model)
    if layer is None:
        raise TypeError(f"{name} inputs are a scipy sparse matrix but the model has no "
                        "SparseLinear layer to take them; build the backbone with "
                        "mlp(n_features, hidden, sparse=True), or densify the inputs "
                        "(.toarray())")
    columns = source.inputs.shape[1]
    if columns != layer.in_features:
        raise ValueError(f"{name} inputs have {columns} columns but the model's first layer "
                         f"takes {layer.in_features} (SparseLinear in_features); build the "
                         f"model with mlp({columns}, ..., sparse=True) or pass features of "
                         f"the model's vocabulary")


def dense_gradients_under_nccl(model: nn.Module, ctx, device: torch.device) -> None:
    """Under ``torchrun`` on CUDA with NCCL (which all-reduces dense tensors only), switch
    every ``SparseLinear(sparse_grad=True)`` of ``model`` to dense gradients, with a
    warning; call before wrapping the model in ``DistributedDataParallel``."""
    layers = [m for m in model.modules() if isinstance(m, SparseLinear) and m.sparse_grad]
    if not (layers and ctx.active and device.type == "cuda"):
        return
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_backend() != "nccl":
        return
    for m in layers:
        m.bag.sparse = False
    warnings.warn("NCCL cannot all-reduce the row-sparse gradients of SparseLinear: its "
                  "weight gets dense gradients in this run (slower steps, the inputs still "
                  "sparse); for sparse ones run torchrun with the gloo backend",
                  RuntimeWarning, stacklevel=3)
