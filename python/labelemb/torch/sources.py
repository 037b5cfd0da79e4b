"""Training and inference data behind one small interface (a *source*).

``fit``, ``predict`` and ``evaluate`` accept several forms of data: dense arrays and
tensors (:class:`ArraySource`), scipy sparse matrices (:class:`CSRSource`) and map-style
Datasets (:class:`DatasetSource`). :func:`as_source` picks the source class by the input's
type, once, and everything after it only uses the interface below. Adding an input type
is one class and one branch of ``_inputs`` (or of :func:`as_source` for a container).

The interface of a source
-------------------------
``len(source)``
    The number of samples.
``source.n_labels``
    The label columns when known without a pass over the data (arrays), else None.
``source.label_counts() -> (counts (L,), n_samples)``
    For the output biases' prior odds.
``source.truth() -> scipy.sparse.csr_matrix (n, L)``
    The true label sets, in sample order, for the metrics.
``source.to(device) -> source``
    Move what fits to ``device`` once, before the first epoch.
``source.train_batches(epoch, batch_size, seed, ctx, device)``
    Yield ``(inputs, SparseLabels)`` on ``device``, shuffled by ``(seed, epoch)``; under
    ``torchrun`` each rank's share of one global batch of ``batch_size * world`` samples.
``source.eval_batches(batch_size, ctx, device)``
    Yield ``(inputs, SparseLabels)`` in sample order (this rank's contiguous shard).
``source.steps(batch_size, ctx) -> int``
    Batches per epoch on each rank.
"""

from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from .data import LabelCollate, SparseLabels, as_label_csr
from .distributed import DistContext
from .sparse import as_csr_inputs, csr_batch

__all__ = ["ArraySource", "CSRSource", "DatasetSource", "as_inputs", "as_source",
           "inference_source"]


def as_inputs(x, name: str) -> torch.Tensor:
    """Dense inputs as a tensor, one row per sample (float64 -> float32), checked finite."""
    if sp.issparse(x):
        raise TypeError(f"{name} inputs are a sparse matrix; pass a dense array or tensor "
                        "(for example .toarray())")
    if not isinstance(x, torch.Tensor):
        a = np.asarray(x)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} inputs have dtype {a.dtype}; pass numbers (features or "
                            "images)")
        if a.dtype.kind == "f":
            a = np.ascontiguousarray(a, dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(a))
    elif x.is_floating_point() and x.dtype != torch.float32:
        x = x.float()
    if x.dim() == 0:
        raise ValueError(f"{name} inputs must have one row per sample, got a scalar")
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} inputs contain NaN or Inf; remove or fix those rows")
    return x


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _mix(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 1) % (2**63 - 1)


def shuffled(n: int, epoch: int, seed: int, ctx: DistContext) -> torch.Tensor:
    """The epoch's order of ``n`` samples; under ``torchrun`` wrapped around (as
    ``DistributedSampler``) so that every rank gets equal batches."""
    g = torch.Generator().manual_seed(_mix(seed, epoch))
    perm = torch.randperm(n, generator=g)
    if ctx.active and n % ctx.world:
        perm = torch.cat([perm, perm[: ctx.world - n % ctx.world]])
    return perm


def rank_batches(perm: torch.Tensor, batch_size: int, ctx: DistContext) -> Iterator:
    """This rank's share of each global batch of ``batch_size * world`` indices."""
    step = batch_size * ctx.world
    for s in range(0, len(perm), step):
        global_batch = perm[s:s + step]
        m = len(global_batch) // ctx.world
        yield global_batch[ctx.rank * m:(ctx.rank + 1) * m]


class ArraySource:
    """``(inputs, labels)`` held in memory; batches gathered by index tensors."""

    def __init__(self, inputs: torch.Tensor, csr: sp.csr_matrix):
        self.inputs = inputs
        self.csr = csr
        self.labels = SparseLabels.from_scipy(csr)
        self.n_labels = csr.shape[1]

    def __len__(self) -> int:
        return len(self.labels)

    def label_counts(self) -> Tuple[np.ndarray, int]:
        return np.bincount(self.csr.indices, minlength=self.csr.shape[1]), self.csr.shape[0]

    def truth(self) -> sp.csr_matrix:
        return self.csr

    def to(self, device: torch.device) -> ArraySource:
        # Inputs that fit comfortably go to the GPU once; batches are then gathered there.
        if device.type == "cuda" and self.inputs.nbytes < 2 * 1024**3:
            self.inputs = self.inputs.to(device)
            self.labels = self.labels.to(device)
        elif device.type == "cuda":
            self.inputs = self.inputs.pin_memory()
        return self

    def _batch(self, idx: torch.Tensor, device: torch.device):
        x = self.inputs[idx.to(self.inputs.device)].to(device, non_blocking=True)
        y = self.labels.rows(idx.to(self.labels.device)).to(device, non_blocking=True)
        return x, y

    def train_batches(self, epoch: int, batch_size: int, seed: int, ctx: DistContext,
                      device: torch.device) -> Iterator:
        for idx in rank_batches(shuffled(len(self), epoch, seed, ctx), batch_size, ctx):
            yield self._batch(idx, device)

    def eval_batches(self, batch_size: int, ctx: DistContext, device: torch.device) -> Iterator:
        start, stop = ctx.shard(len(self))
        for s in range(start, stop, batch_size):
            e = min(stop, s + batch_size)
            x = self.inputs[s:e].to(device, non_blocking=True)
            yield x, self.labels.slice(s, e).to(device)

    def steps(self, batch_size: int, ctx: DistContext) -> int:
        return _ceil_div(_ceil_div(len(self), ctx.world), batch_size)


class CSRSource(ArraySource):
    """Sparse inputs: a scipy CSR matrix (float32, sorted indices, from
    :func:`~.sparse.as_csr_inputs`) whose batches of rows reach the model as torch sparse
    CSR tensors, for a :class:`~.sparse.SparseLinear` first layer. Never densified: the
    matrix stays on the CPU and each batch's rows are copied to the device (through pinned
    memory to CUDA)."""

    sparse = True

    def __init__(self, inputs: sp.csr_matrix, csr: sp.csr_matrix):
        super().__init__(inputs, csr)
        self.pin = False

    def to(self, device: torch.device) -> CSRSource:
        self.pin = device.type == "cuda"
        if self.pin:
            self.labels = self.labels.to(device)
        return self

    def _batch(self, idx: torch.Tensor, device: torch.device):
        x = csr_batch(self.inputs[idx.numpy()], device, pin=self.pin)
        y = self.labels.rows(idx.to(self.labels.device)).to(device, non_blocking=True)
        return x, y

    def eval_batches(self, batch_size: int, ctx: DistContext, device: torch.device) -> Iterator:
        start, stop = ctx.shard(len(self))
        for s in range(start, stop, batch_size):
            e = min(stop, s + batch_size)
            x = csr_batch(self.inputs[s:e], device, pin=self.pin)
            yield x, self.labels.slice(s, e).to(device)


class DatasetSource:
    """A map-style ``Dataset`` of ``(input, label_set)`` pairs, through a DataLoader."""

    n_labels = None  # known only after a pass over the items

    def __init__(self, dataset, collate: LabelCollate, num_workers: int, name: str):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"{name} must be a map-style Dataset (with __len__ and "
                            "__getitem__) or an (inputs, labels) pair")
        self.dataset = dataset
        self.collate = collate
        self.num_workers = num_workers
        self.name = name
        self._truth: Optional[sp.csr_matrix] = None

    def __len__(self) -> int:
        return len(self.dataset)

    def label_counts(self) -> Tuple[np.ndarray, int]:
        labels = getattr(self.dataset, "labels", None)
        if labels is None:  # one pass over the items
            labels = [self.dataset[i][1] for i in range(len(self.dataset))]
        csr, _ = as_label_csr(list(labels) if not sp.issparse(labels) else labels,
                              self.name, n_labels=self.collate.n_labels,
                              label_names=self.collate.label_names)
        return np.bincount(csr.indices, minlength=csr.shape[1]), csr.shape[0]

    def truth(self) -> sp.csr_matrix:
        if self._truth is None:
            ys = [y for _, y in self.eval_batches(4096, DistContext(), torch.device("cpu"))]
            self._truth = sp.vstack([y.to_scipy() for y in ys]).tocsr()
        return self._truth

    def to(self, device) -> DatasetSource:
        return self

    def _loader(self, sampler, batch_size: int):
        from torch.utils.data import DataLoader

        return DataLoader(self.dataset, batch_size=batch_size, sampler=sampler,
                          collate_fn=self.collate, num_workers=self.num_workers,
                          pin_memory=False)

    def train_batches(self, epoch, batch_size, seed, ctx, device):
        from torch.utils.data import DistributedSampler, RandomSampler

        if ctx.active:
            sampler = DistributedSampler(self.dataset, ctx.world, ctx.rank, shuffle=True,
                                         seed=seed)
            sampler.set_epoch(epoch)
        else:
            g = torch.Generator().manual_seed(_mix(seed, epoch))
            sampler = RandomSampler(self.dataset, generator=g)
        for x, y in self._loader(sampler, batch_size):
            yield x.to(device, non_blocking=True), y.to(device)

    def eval_batches(self, batch_size, ctx, device):
        start, stop = ctx.shard(len(self))
        for x, y in self._loader(range(start, stop), batch_size):
            yield x.to(device, non_blocking=True), y.to(device)

    def steps(self, batch_size: int, ctx: DistContext) -> int:
        return _ceil_div(_ceil_div(len(self), ctx.world), batch_size)


def _inputs(x, name: str):
    """The inputs prepared, and the class of their source: the one place that tells input
    types apart (scipy sparse -> :class:`CSRSource`, dense -> :class:`ArraySource`)."""
    if sp.issparse(x):
        return as_csr_inputs(x, name), CSRSource
    return as_inputs(x, name), ArraySource


def as_source(data, name: str, *, n_labels: Optional[int] = None, label_names=None,
              num_workers: int = 0, build_vocabulary: bool = True):
    """The source for a data argument of ``fit``/``evaluate``, and the label names.

    Parameters
    ----------
    data : (inputs, labels) pair or map-style Dataset of (input, label_set) pairs
    name : str
        The argument's name, for messages ("train", "valid", "data").
    n_labels, label_names : the label space when known (the model's or the embedding's);
        ``label_names`` maps labels given by name.
    num_workers : DataLoader workers for a Dataset.
    build_vocabulary : bool
        Build ``label_names`` from labels given by name when none are known.

    Returns
    -------
    source, label_names
    """
    from torch.utils.data import Dataset, IterableDataset

    if isinstance(data, IterableDataset):
        raise TypeError(f"{name} is an IterableDataset; pass a map-style Dataset or an "
                        "(inputs, labels) pair")
    if isinstance(data, Dataset):
        return DatasetSource(data, LabelCollate(n_labels, label_names), num_workers,
                             name), label_names
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be an (inputs, labels) pair or a Dataset yielding "
                        f"(input, label_set) pairs, got {type(data).__name__}")
    x, source_class = _inputs(data[0], name)
    csr, label_names = as_label_csr(data[1], f"{name} labels", n_labels=n_labels,
                                    label_names=label_names, n_samples=x.shape[0],
                                    build_vocabulary=build_vocabulary)
    if csr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    return source_class(x, csr), label_names


def is_labelled(data) -> bool:
    """Whether ``data`` carries labels: an (inputs, labels) pair or a Dataset of pairs."""
    from torch.utils.data import Dataset

    return isinstance(data, Dataset) or (isinstance(data, (tuple, list)) and len(data) == 2)


def inference_source(data, n_labels: int, label_names):
    """The source for ``predict``: inputs alone, an (inputs, labels) pair, or a Dataset."""
    if is_labelled(data):
        return as_source(data, "data", n_labels=n_labels, label_names=label_names,
                         build_vocabulary=False)[0]
    x, source_class = _inputs(data, "data")
    return source_class(x, sp.csr_matrix((x.shape[0], n_labels), dtype=np.float32))
