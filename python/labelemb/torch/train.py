"""One training loop for the paper's recipe and the sigmoid baseline (step 5), with
evaluation by the decoder (steps 6-7), checkpoints, and ``torchrun`` support.

The head decides the recipe: :class:`EmbeddingHead` -> cosine proximity to the encoded
targets, decoded by nearest labels; :class:`LogitHead` / :class:`LowRankHead` -> sigmoid
cross-entropy on the binary targets, decoded by the logits. A model without a labelemb
head follows ``embedding``: given -> cosine proximity, None -> BCE.
"""

from __future__ import annotations

import glob
import json
import math
import numbers
import os
import re
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._io import atomic_write
from ..topk import topk as _topk
from .data import EmbeddingTargets, LabelCollate, SparseLabels, _vectors_of, as_label_csr
from .distributed import DistContext, context
from .heads import RECIPE_HEADS, LogitHead, find_head
from .losses import CosineProximityLoss, sparse_bce_with_logits, sparse_softmax_cross_entropy

__all__ = ["RECIPES", "History", "Recipe", "evaluate", "fit", "predict"]

FORMAT_VERSION = 1
_CKPT = "checkpoint-{:05d}.pt"
_CKPT_RE = re.compile(r"checkpoint-(\d{5,})\.pt$")


# ---------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """How a model is trained and decoded.

    Attributes
    ----------
    name : str
    objective : {"cosine", "bce", "softmax", "hybrid"}
        Cosine proximity to ``EmbeddingTargets``, sigmoid cross-entropy on multi-hot
        targets built per batch, softmax cross-entropy against the label set as a
        uniform distribution (:func:`~labelemb.torch.losses.sparse_softmax_cross_entropy`),
        or the sum of the last two.
    decode : {"nearest", "logits"}
        Rank labels by ``prediction · E_l`` (the top-k decoder) or by the outputs.
    """

    name: str
    objective: str
    decode: str


RECIPES: Dict[str, Recipe] = {
    "paper": Recipe("paper", "cosine", "nearest"),
    "bce": Recipe("bce", "bce", "logits"),
    "lowrank": Recipe("lowrank", "bce", "logits"),
    "softmax": Recipe("softmax", "softmax", "logits"),
    "lowrank-softmax": Recipe("lowrank-softmax", "softmax", "logits"),
    "hybrid": Recipe("hybrid", "hybrid", "logits"),
    "lowrank-hybrid": Recipe("lowrank-hybrid", "hybrid", "logits"),
}
# The recipes a head class can be trained with; the first is the one inferred from it.
_HEAD_RECIPES = {cls: tuple(r for r, c in RECIPE_HEADS.items() if c is cls)
                 for cls in dict.fromkeys(RECIPE_HEADS.values())}
_LOGIT_OBJECTIVES = ("bce", "softmax", "hybrid")


def _resolve_recipe(recipe, head, embedding) -> Recipe:
    inferred = None
    if head is not None:
        # make_model records the recipe it built the head for
        name = getattr(head, "recipe", None)
        inferred = RECIPES[name if name in _HEAD_RECIPES[type(head)]
                           else _HEAD_RECIPES[type(head)][0]]
    if recipe is None:
        if inferred is not None:
            return inferred
        return RECIPES["paper"] if embedding is not None else RECIPES["bce"]
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)} or a Recipe, got "
                             f"{recipe!r}")
        recipe = RECIPES[recipe]
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a str or a Recipe, got {type(recipe).__name__}")
    if recipe.objective not in ("cosine",) + _LOGIT_OBJECTIVES or \
            recipe.decode not in ("nearest", "logits"):
        raise ValueError(f"recipe {recipe.name!r}: objective must be 'cosine', 'bce', "
                         "'softmax' or 'hybrid' and decode 'nearest' or 'logits'")
    # a logit head may be trained with either logit objective; the paper's head with cosine
    fits = inferred is None or (recipe.decode == inferred.decode and (
        recipe.objective == inferred.objective or
        {recipe.objective, inferred.objective} <= set(_LOGIT_OBJECTIVES)))
    if not fits:
        raise ValueError(f"recipe={recipe.name!r} does not fit the model's "
                         f"{type(head).__name__}; use make_model(..., head={recipe.name!r}) or "
                         f"leave recipe=None")
    return recipe


# ---------------------------------------------------------------- history
class History:
    """Per-epoch records of a training run.

    Attributes
    ----------
    epochs : list of dict
        One dict per epoch: ``epoch`` (1-based), ``loss`` (mean train loss), validation
        metrics ``p@1``, ``p@5``, ``ndcg@5``, ``map@100`` (k clipped to the number of
        labels), ``train_time`` and ``eval_time`` (seconds), ``elapsed`` (cumulative
        training seconds), ``lr``, ``steps``.

    Examples
    --------
    >>> h = History([{"epoch": 1, "p@5": 0.2}, {"epoch": 2, "p@5": 0.3}])
    >>> h["p@5"], h.epochs_to_reach("p@5", 0.25)
    ([0.2, 0.3], 2)
    """

    def __init__(self, epochs: Optional[List[dict]] = None, recipe: Optional[str] = None):
        self.epochs: List[dict] = list(epochs or [])
        self.recipe = recipe

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, key: str) -> list:
        return [e.get(key) for e in self.epochs]

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        return f"History(recipe={self.recipe!r}, epochs={len(self)}, last={last})"

    def best(self, key: str) -> float:
        """Largest value of ``key`` over the epochs (NaN when none)."""
        vals = [v for v in self[key] if v is not None and not math.isnan(v)]
        return max(vals) if vals else float("nan")

    def epochs_to_reach(self, key: str, value: float) -> Optional[int]:
        """First epoch (1-based) whose ``key`` is >= ``value``, or None."""
        for e in self.epochs:
            v = e.get(key)
            if v is not None and v >= value:
                return int(e["epoch"])
        return None

    def to_json(self) -> str:
        return json.dumps({"recipe": self.recipe, "epochs": self.epochs})

    @classmethod
    def from_json(cls, text: str) -> History:
        d = json.loads(text)
        return cls(d["epochs"], d.get("recipe"))

    @classmethod
    def load(cls, path) -> History:
        """From a JSON lines log written by ``fit`` (one epoch per line)."""
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return cls(rows, rows[0].get("recipe") if rows else None)


class _JsonlLog:
    """Append-only JSON lines: each record is one ``write`` of a whole line, then flushed."""

    def __init__(self, path: Optional[str], history: History, fresh: bool):
        self.path = path
        if path is None:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # A fresh run starts an empty log; a resumed one rewrites the checkpoint's history
        # (dropping lines of epochs after the checkpoint), atomically.
        lines = "" if fresh else "".join(self._line(e) for e in history.epochs)
        with atomic_write(path) as f:
            f.write(lines.encode())

    @staticmethod
    def _line(record: dict) -> str:
        return json.dumps(record) + "\n"

    def append(self, record: dict) -> None:
        if self.path is None:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, self._line(record).encode())
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- data
def _as_inputs(x, name: str) -> torch.Tensor:
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


class _ArrayData:
    """``(inputs, labels)`` held in memory; batches gathered by index tensors."""

    def __init__(self, inputs: torch.Tensor, csr: sp.csr_matrix):
        self.inputs = inputs
        self.csr = csr
        self.labels = SparseLabels.from_scipy(csr)

    def __len__(self) -> int:
        return len(self.labels)

    def label_counts(self) -> Tuple[np.ndarray, int]:
        return np.bincount(self.csr.indices, minlength=self.csr.shape[1]), self.csr.shape[0]

    def to(self, device: torch.device) -> _ArrayData:
        # Inputs that fit comfortably go to the GPU once; batches are then gathered there.
        if device.type == "cuda" and self.inputs.nbytes < 2 * 1024**3:
            self.inputs = self.inputs.to(device)
            self.labels = self.labels.to(device)
        elif device.type == "cuda":
            self.inputs = self.inputs.pin_memory()
        return self

    def _batch(self, idx: torch.Tensor, device: torch.device):
        dev = self.inputs.device
        x = self.inputs[idx.to(dev)].to(device, non_blocking=True)
        y = self.labels.rows(idx.to(self.labels.device)).to(device, non_blocking=True)
        return x, y

    def train_batches(self, epoch: int, batch_size: int, seed: int, ctx: DistContext,
                      device: torch.device) -> Iterator:
        n = len(self)
        g = torch.Generator().manual_seed(_mix(seed, epoch))
        perm = torch.randperm(n, generator=g)
        if ctx.active and n % ctx.world:
            # As DistributedSampler: wrap around so every rank gets equal batches.
            perm = torch.cat([perm, perm[: ctx.world - n % ctx.world]])
        step = batch_size * ctx.world
        for s in range(0, len(perm), step):
            global_batch = perm[s:s + step]
            m = len(global_batch) // ctx.world
            yield self._batch(global_batch[ctx.rank * m:(ctx.rank + 1) * m], device)

    def eval_batches(self, batch_size: int, ctx: DistContext, device: torch.device) -> Iterator:
        start, stop = ctx.shard(len(self))
        for s in range(start, stop, batch_size):
            e = min(stop, s + batch_size)
            x = self.inputs[s:e].to(device, non_blocking=True)
            yield x, self.labels.slice(s, e).to(device)

    def steps(self, batch_size: int, ctx: DistContext) -> int:
        return _ceil_div(_ceil_div(len(self), ctx.world), batch_size)


class _DatasetData:
    """A map-style ``Dataset`` of ``(input, label_set)`` pairs, through a DataLoader."""

    def __init__(self, dataset, collate: LabelCollate, num_workers: int, name: str):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"{name} must be a map-style Dataset (with __len__ and "
                            "__getitem__) or an (inputs, labels) pair")
        self.dataset = dataset
        self.collate = collate
        self.num_workers = num_workers
        self.name = name

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

    def to(self, device) -> _DatasetData:
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


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _mix(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 1) % (2**63 - 1)


def _prepare(data, name: str, n_labels, label_names, num_workers: int,
             build_vocabulary: bool = True):
    """Validate a data argument; return (data object, label_names)."""
    from torch.utils.data import Dataset, IterableDataset

    if isinstance(data, IterableDataset):
        raise TypeError(f"{name} is an IterableDataset; pass a map-style Dataset or an "
                        "(inputs, labels) pair")
    if isinstance(data, Dataset):
        return _DatasetData(data, LabelCollate(n_labels, label_names), num_workers,
                            name), label_names
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be an (inputs, labels) pair or a Dataset yielding "
                        f"(input, label_set) pairs, got {type(data).__name__}")
    x = _as_inputs(data[0], name)
    csr, label_names = as_label_csr(data[1], f"{name} labels", n_labels=n_labels,
                                    label_names=label_names, n_samples=x.shape[0],
                                    build_vocabulary=build_vocabulary)
    if csr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    return _ArrayData(x, csr), label_names


# ---------------------------------------------------------------- settings
def _resolve_device(device) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got "
                         f"{device!r} ({e})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but CUDA is not available (torch {torch.__version__}, "
                f"torch.cuda.is_available() is False); use device='cpu' or device='auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} but only {torch.cuda.device_count()} CUDA "
                             "device(s) are visible")
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return dev


def _autocast(amp, device: torch.device):
    """bf16 autocast on CUDA for amp=True; on the CPU only when asked (amp='bf16'): without
    native bf16 units it is slower than float32 there (see benchmarks/README.md)."""
    if amp not in (True, False, "bf16", None):
        raise ValueError(f"amp must be True, False or 'bf16', got {amp!r}")
    on = (amp is True and device.type == "cuda") or amp == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(on))


def _check_int(v, name: str, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _check_float(v, name: str, positive: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or \
            (v <= 0 if positive else v < 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, "
                         f"got {v!r}")
    return float(v)


def _make_optimizer(optimizer, model: nn.Module, lr: float, weight_decay: float):
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # No decay on biases (they hold the prior odds), scales and the label vectors.
        (decay if p.dim() >= 2 and not name.endswith("label_vectors") else plain).append(p)
    groups = [g for g in ({"params": decay, "weight_decay": weight_decay},
                          {"params": plain, "weight_decay": 0.0}) if g["params"]]
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


def _make_schedule(schedule, opt, total_steps: int, warmup_steps: int):
    if schedule in (None, "constant") and warmup_steps == 0:
        return None
    if schedule not in (None, "constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "cosine":
            t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


# ---------------------------------------------------------------- checkpoints
def _checkpoints(directory: str) -> List[Tuple[int, str]]:
    found = []
    for path in glob.glob(os.path.join(directory, "checkpoint-*.pt")):
        m = _CKPT_RE.search(os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def _rng_state(ctx: DistContext) -> dict:
    state = {"torch": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    if not ctx.active:
        return {"per_rank": [state]}
    import torch.distributed as dist

    states = [None] * ctx.world
    dist.all_gather_object(states, state)
    return {"per_rank": states}


def _save_checkpoint(directory: str, epoch: int, model, opt, sched, history: History,
                     rng: dict, recipe: Recipe, keep: int) -> None:
    state = {"format_version": FORMAT_VERSION, "epoch": epoch, "recipe": recipe.name,
             "model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict() if sched is not None else None,
             "rng": rng, "history": history.epochs}
    path = os.path.join(directory, _CKPT.format(epoch))
    with atomic_write(path) as f:
        torch.save(state, f)
    for _, old in _checkpoints(directory)[:-keep]:
        os.unlink(old)


def load_checkpoint(path: str) -> dict:
    """Read a checkpoint written by ``fit`` (checks its format version)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    found = state.get("format_version") if isinstance(state, dict) else type(state).__name__
    if found != FORMAT_VERSION:
        raise ValueError(f"{path} is not a labelemb checkpoint of format version "
                         f"{FORMAT_VERSION} (found {found!r})")
    return state


# ---------------------------------------------------------------- evaluation
class _Decoder:
    """Top-k labels of a batch of model outputs, by nearest label vectors or by logits."""

    def __init__(self, recipe: Recipe, vectors: Optional[np.ndarray], device: torch.device):
        self.nearest = recipe.decode == "nearest"
        if self.nearest and vectors is None:
            raise ValueError("decoding by nearest labels needs the embedding; pass embedding=")
        self.vectors = vectors
        self.device = device
        if self.nearest and device.type == "cuda":
            self.vectors = torch.as_tensor(vectors, device=device)

    def __call__(self, out: torch.Tensor, k: int):
        out = out.float()
        if not self.nearest:
            s, i = torch.topk(out, k, dim=1)
            return i, s
        if out.device.type == "cpu":  # the C++ decoder (blocked sgemm + selection)
            i, s = _topk(out.numpy(), self.vectors, k, num_threads=torch.get_num_threads())
            return torch.from_numpy(i.astype(np.int64)), torch.from_numpy(s)
        i, s = _topk(out, self.vectors, k)
        return i.long(), s


def _check_output(out: torch.Tensor, width: int, recipe: Recipe) -> None:
    if out.dim() != 2 or out.shape[1] != width:
        what = "the embedding dimension d" if recipe.objective == "cosine" else \
            "the number of labels L"
        raise ValueError(f"the model outputs shape {tuple(out.shape)}, but recipe "
                         f"{recipe.name!r} needs (batch, {width}) ({what}); check the head")


def _metric_ks(L: int) -> Tuple[int, int, int]:
    return min(1, L), min(5, L), min(100, L)


@torch.no_grad()
def _evaluate(model, data, decoder: _Decoder, batch_size: int, ctx: DistContext,
              device: torch.device, amp, n_labels: int) -> Dict[str, float]:
    from .. import metrics

    k1, k5, K = _metric_ks(n_labels)
    was = model.training
    model.eval()
    parts = []
    with _autocast(amp, device):
        for x, _ in data.eval_batches(batch_size, ctx, device):
            parts.append(decoder(model(x), K)[0].to(torch.int64))
    model.train(was)
    idx = torch.cat(parts) if parts else torch.zeros((0, K), dtype=torch.int64, device=device)
    idx = ctx.gather_rows(idx).cpu().numpy()
    truth = data.csr if isinstance(data, _ArrayData) else None
    if truth is None:
        truth = _gather_truth(data, ctx)
    r = metrics.report(idx, truth, ks=sorted({k1, k5, K}), n_labels=n_labels)
    return {f"p@{k1}": r[f"precision@{k1}"], f"p@{k5}": r[f"precision@{k5}"],
            f"ndcg@{k5}": r[f"ndcg@{k5}"], f"map@{K}": r[f"map@{K}"]}


def _gather_truth(data: _DatasetData, ctx: DistContext) -> sp.csr_matrix:
    if not hasattr(data, "_truth"):
        ys = [y for _, y in data.eval_batches(4096, DistContext(), torch.device("cpu"))]
        data._truth = sp.vstack([y.to_scipy() for y in ys]).tocsr()
    return data._truth


# ---------------------------------------------------------------- fit
def fit(model: nn.Module, train, embedding=None, *, valid=None, epochs: int, lr: float,
        batch_size: int, optimizer="adamw", weight_decay: float = 0.0,
        schedule: str = "constant", warmup_steps: int = 0, device="auto", amp=True,
        seed: int = 0, callbacks: Sequence[Callable] = (), progress: bool = True,
        checkpoint_dir: Optional[str] = None, resume: bool = False,
        log_path: Optional[str] = None, recipe: Union[None, str, Recipe] = None,
        eval_batch_size: int = 2048, keep_checkpoints: int = 2, max_grad_norm=None,
        num_workers: int = 0) -> History:
    """Train ``model`` on ``train`` with the paper's recipe or the sigmoid baseline.

    Parameters
    ----------
    model : nn.Module
        A backbone with a labelemb head (:func:`make_model`), or any module whose output
        is (batch, d) for the embedding objective or (batch, L) for BCE. Trained in place
        and left on ``device``.
    train : (inputs, labels) pair or Dataset
        ``inputs``: array or tensor, one row per sample (features, images...; float64 is
        converted to float32). ``labels``: CSR matrix (n, L), list of label-id lists, or
        list of label-name lists (mapped through the embedding's ``label_names``). A
        map-style ``Dataset`` yields ``(input, label_set)`` pairs
        (see :class:`LabelCollate`).
    embedding : LabelEmbedding, optional
        Required by the paper's recipe (targets and decoding); defaults to the head's.
    valid : same forms as ``train``, optional
        Evaluated after every epoch: P@1, P@5, nDCG@5, MAP@100 of the decoded top-k.
    epochs : int
        Total epochs (a resumed run continues up to this number).
    lr, batch_size : learning rate; samples per step (per process under ``torchrun``).
    optimizer : {"adamw", "adam", "sgd"} or callable (param_groups, lr=) -> Optimizer
        ``"sgd"`` uses momentum 0.9. Biases, scales and label vectors get no weight decay.
    weight_decay : float, default 0
    schedule : {"constant", "cosine"}, default "constant"
        Per-step learning-rate schedule, after ``warmup_steps`` of linear warm-up.
    device : "auto", "cpu", "cuda" or "cuda:N"
        "auto" picks CUDA when available.
    amp : True, False or "bf16"
        True: bf16 autocast on CUDA, float32 on the CPU (bf16 is slower there without
        native support); "bf16" forces it everywhere.
    seed : int
        Seeds the shuffling (per epoch) and torch's RNG (dropout) at a fresh start.
    callbacks : callables ``cb(history, model)``
        Called after each epoch's record; returning True stops training.
    progress : bool
        A tqdm progress bar per epoch (rank 0 only).
    checkpoint_dir : str, optional
        Saves a checkpoint after every epoch (model, optimizer, scheduler, epoch, RNG
        states, history), atomically, keeping the last ``keep_checkpoints``; the history
        log ``history.jsonl`` goes there too unless ``log_path`` is given. A fresh run
        (resume=False) deletes the directory's old checkpoints.
    resume : bool
        Continue from the last checkpoint in ``checkpoint_dir`` (a fresh start if none).
    log_path : str, optional
        JSON lines file, one record per epoch.
    recipe : {"paper", "bce", "lowrank", "softmax", "lowrank-softmax", "hybrid", \
"lowrank-hybrid"} or Recipe, optional
        Inferred from the head (the one ``make_model`` built it for); when given it must
        fit it: a :class:`LogitHead` trains with ``"bce"``, ``"softmax"`` or ``"hybrid"``,
        a :class:`LowRankHead` with ``"lowrank"``, ``"lowrank-softmax"`` or
        ``"lowrank-hybrid"`` (sigmoid, softmax, or the sum of both cross-entropies; all
        decode by the logits).
    eval_batch_size, max_grad_norm, num_workers : evaluation batch size; gradient
        clipping (None: off); DataLoader workers for Dataset inputs (0: in process).

    Returns
    -------
    History

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE`` > 1, or an initialised process group) the model is
    wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on CUDA); each step's global
    batch ``batch_size * world`` is the same set of samples as one process with that batch
    size would draw; validation is sharded and its top-k gathered, so metrics equal a
    one-process run; only rank 0 writes logs and checkpoints.

    Examples
    --------
    >>> import labelemb
    >>> from labelemb.torch import fit, make_model, mlp
    >>> data = labelemb.make_topic_labels(600, 40, n_features=16, seed=0)
    >>> model = make_model(mlp(16, [32]), 32, "bce", n_labels=40)
    >>> h = fit(model, (data.features, data.labels), epochs=1, lr=1e-2, batch_size=64,
    ...         progress=False)
    >>> len(h.epochs)
    1
    """
    epochs = _check_int(epochs, "epochs")
    lr = _check_float(lr, "lr")
    batch_size = _check_int(batch_size, "batch_size")
    eval_batch_size = _check_int(eval_batch_size, "eval_batch_size")
    keep_checkpoints = _check_int(keep_checkpoints, "keep_checkpoints")
    warmup_steps = _check_int(warmup_steps, "warmup_steps", 0)
    num_workers = _check_int(num_workers, "num_workers", 0)
    weight_decay = _check_float(weight_decay, "weight_decay", positive=False)
    if max_grad_norm is not None:
        max_grad_norm = _check_float(max_grad_norm, "max_grad_norm")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir= (where the checkpoints are)")
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables cb(history, model), got {cb!r}")
    _autocast(amp, torch.device("cpu"))  # validates amp

    dev = _resolve_device(device)
    ctx = context(dev)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", ctx.local_rank if ctx.active else torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)

    net = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    head = find_head(net)
    if embedding is None and head is not None and hasattr(head, "embedding"):
        embedding = head.embedding
    recipe = _resolve_recipe(recipe, head, embedding)
    if recipe.objective == "cosine" and embedding is None:
        raise ValueError("the embedding objective needs embedding= (a LabelEmbedding from "
                         "labelemb.fit_embeddings)")
    if isinstance(head, LogitHead) and embedding is not None and \
            _vectors_of(embedding).shape[0] != head.n_labels:
        raise ValueError(f"embedding has {_vectors_of(embedding).shape[0]} labels but the "
                         f"LogitHead has {head.n_labels}")

    # The label space: the embedding's, else the head's, else the training labels'.
    vectors = _vectors_of(embedding) if embedding is not None else None
    label_names = getattr(embedding, "label_names", None) if embedding is not None else None
    n_labels = vectors.shape[0] if vectors is not None else getattr(head, "n_labels", None)
    train_data, label_names = _prepare(train, "train", n_labels, label_names, num_workers)
    if n_labels is None:
        n_labels = train_data.csr.shape[1] if isinstance(train_data, _ArrayData) else None
        if n_labels is None:
            raise ValueError("cannot tell the number of labels: use a LogitHead (make_model("
                             "..., 'bce', n_labels=L)) or (inputs, labels) arrays")
    if label_names is not None and head is not None and embedding is None:
        head.label_names = label_names  # the vocabulary built from the training names
    valid_data = None
    if valid is not None:
        valid_data, _ = _prepare(valid, "valid", n_labels, label_names, num_workers)
    width = vectors.shape[1] if recipe.objective == "cosine" else n_labels

    net.to(dev)
    train_data.to(dev)
    if valid_data is not None:
        valid_data.to(dev)
    targets = EmbeddingTargets(vectors, dev) if recipe.objective == "cosine" else None
    cosine = CosineProximityLoss(reduction="none")
    decoder = _Decoder(recipe, vectors, dev)

    ckpt = None
    if resume:
        found = _checkpoints(checkpoint_dir)
        ckpt = load_checkpoint(found[-1][1]) if found else None
    if ckpt is None and head is not None and hasattr(head, "init_prior") and \
            not head.prior_initialized:
        head.init_prior(*train_data.label_counts())

    ddp = model
    if ctx.active and not isinstance(model, nn.parallel.DistributedDataParallel):
        ddp = nn.parallel.DistributedDataParallel(
            net, device_ids=[dev.index] if dev.type == "cuda" else None)
    opt = _make_optimizer(optimizer, net, lr, weight_decay)
    steps_per_epoch = train_data.steps(batch_size, ctx)
    sched = _make_schedule(schedule, opt, epochs * steps_per_epoch, warmup_steps)

    history = History(recipe=recipe.name)
    start = 0
    if ckpt is not None:
        if ckpt["recipe"] != recipe.name:
            raise ValueError(f"the checkpoint in {checkpoint_dir} was trained with recipe "
                             f"{ckpt['recipe']!r}, not {recipe.name!r}")
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None and ckpt["scheduler"] is not None:
            sched.load_state_dict(ckpt["scheduler"])
        rng = ckpt["rng"]["per_rank"]
        st = rng[ctx.rank % len(rng)]
        torch.set_rng_state(st["torch"])
        if st["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(st["cuda"])
        history.epochs = list(ckpt["history"])
        start = int(ckpt["epoch"])
        if hasattr(head, "prior_initialized"):
            head.prior_initialized = True
    else:
        torch.manual_seed(int(seed) + ctx.rank)
    if ctx.is_main and checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        if ckpt is None:
            for _, old in _checkpoints(checkpoint_dir):
                os.unlink(old)
    if log_path is None and checkpoint_dir is not None:
        log_path = os.path.join(checkpoint_dir, "history.jsonl")
    log = _JsonlLog(log_path if ctx.is_main else None, history, fresh=ckpt is None)
    ctx.barrier()

    bar_cls = _progress_bar() if progress and ctx.is_main else None
    elapsed = history.epochs[-1]["elapsed"] if history.epochs else 0.0
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        ddp.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        count = torch.zeros((), dtype=torch.float64, device=dev)
        bar = bar_cls(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                      leave=True) if bar_cls else None
        for step, (x, y) in enumerate(train_data.train_batches(epoch, batch_size, seed, ctx,
                                                                dev)):
            with _autocast(amp, dev):
                out = ddp(x)
            if step == 0 and epoch == start:
                _check_output(out, width, recipe)
            if targets is not None:
                per_row = cosine(out, targets(y))
                n_rows = (y.lengths > 0).sum()
                loss = per_row.sum() / n_rows.clamp_min(1)
            elif recipe.objective == "softmax":
                loss = sparse_softmax_cross_entropy(out, y)
                n_rows = (y.lengths > 0).sum()
            elif recipe.objective == "hybrid":
                loss = sparse_bce_with_logits(out, y) + sparse_softmax_cross_entropy(out, y)
                n_rows = torch.tensor(len(y), device=dev)
            else:
                loss = sparse_bce_with_logits(out, y)
                n_rows = torch.tensor(len(y), device=dev)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                nn.utils.clip_grad_norm_(net.parameters(), max_grad_norm)
            opt.step()
            if sched is not None:
                sched.step()
            loss_sum += loss.detach().double() * n_rows
            count += n_rows
            if bar is not None:
                bar.update(1)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{loss.item():.4f}")
        ctx.sum(loss_sum)
        ctx.sum(count)
        record = {"epoch": epoch + 1, "recipe": recipe.name,
                  "loss": float(loss_sum / count.clamp_min(1)),
                  "lr": float(opt.param_groups[0]["lr"]), "steps": steps_per_epoch}
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        train_time = time.perf_counter() - t0
        elapsed += train_time
        t1 = time.perf_counter()
        if valid_data is not None:
            record.update(_evaluate(net, valid_data, decoder, eval_batch_size, ctx, dev, amp,
                                    n_labels))
        record.update(train_time=train_time, eval_time=time.perf_counter() - t1,
                      elapsed=elapsed)
        history.epochs.append(record)
        if bar is not None:
            bar.set_postfix({k: (f"{v:.4f}" if isinstance(v, float) else v)
                             for k, v in record.items()
                             if k in ("loss", "p@1", "p@5", "ndcg@5", "map@100")})
            bar.close()
        log.append(record)
        if checkpoint_dir is not None:
            rng = _rng_state(ctx)
            if ctx.is_main:
                _save_checkpoint(checkpoint_dir, epoch + 1, net, opt, sched, history, rng,
                                 recipe, keep_checkpoints)
            ctx.barrier()
        stop = False
        for cb in callbacks:
            stop = bool(cb(history, net)) or stop
        if stop:
            break
    return history


def _progress_bar():
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the torch extra; without it, no bar
        return None
    return tqdm


# ---------------------------------------------------------------- inference
def _inference_data(data, n_labels, label_names):
    """Inputs for prediction: an array/tensor, an (inputs, labels) pair, or a Dataset."""
    from torch.utils.data import Dataset

    if isinstance(data, Dataset) or isinstance(data, (tuple, list)) and len(data) == 2:
        return _prepare(data, "data", n_labels, label_names, 0, build_vocabulary=False)[0]
    x = _as_inputs(data, "data")
    empty = sp.csr_matrix((x.shape[0], n_labels), dtype=np.float32)
    return _ArrayData(x, empty)


def _setup_inference(model, embedding, recipe, device):
    net = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    head = find_head(net)
    if embedding is None and head is not None and hasattr(head, "embedding"):
        embedding = head.embedding
    recipe = _resolve_recipe(recipe, head, embedding)
    vectors = _vectors_of(embedding) if embedding is not None else None
    if device is None:
        p = next(net.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
    else:
        dev = _resolve_device(device)
    if recipe.decode == "nearest" and vectors is None:
        raise ValueError("this model is decoded by nearest labels; pass embedding=")
    n_labels = vectors.shape[0] if vectors is not None else getattr(head, "n_labels", None)
    names = getattr(embedding, "label_names", None)
    if names is None:
        names = getattr(head, "label_names", None)
    return net.to(dev), recipe, vectors, dev, n_labels, names


def predict(model: nn.Module, data, embedding=None, k: int = 10, *, batch_size: int = 2048,
            device=None, amp=True, recipe=None) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k labels of each sample, decoded as the model was trained.

    Parameters
    ----------
    model : nn.Module
    data : array or tensor of inputs, (inputs, labels) pair, or Dataset
    embedding : LabelEmbedding, optional
        For nearest-label decoding (defaults to the head's).
    k : int
    batch_size, device, amp, recipe : as in :func:`fit`; device defaults to the model's.

    Returns
    -------
    indices : ndarray (n, k) int64
    scores : ndarray (n, k) float32
        Inner products with the label vectors (embedding models) or logits (baselines),
        best first.
    """
    net, recipe, vectors, dev, n_labels, names = _setup_inference(model, embedding, recipe,
                                                                   device)
    data = _inference_data(data, n_labels if n_labels is not None else 0, names)
    L = n_labels if n_labels is not None else None
    k = _check_int(k, "k")
    if L is not None and k > L:
        raise ValueError(f"k must be in [1, {L}] (the number of labels), got {k}")
    batch_size = _check_int(batch_size, "batch_size")
    decoder = _Decoder(recipe, vectors, dev)
    was = net.training
    net.eval()
    idx, sc = [], []
    with torch.no_grad(), _autocast(amp, dev):
        for x, _ in data.eval_batches(batch_size, DistContext(), dev):
            i, s = decoder(net(x), k)
            idx.append(i.cpu())
            sc.append(s.float().cpu())
    net.train(was)
    if not idx:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return torch.cat(idx).numpy().astype(np.int64), torch.cat(sc).numpy()


def evaluate(model: nn.Module, data, embedding=None, *, ks: Sequence[int] = (1, 5),
             map_k: int = 100, batch_size: int = 2048, device=None, amp=True,
             recipe=None) -> Dict[str, float]:
    """Ranking metrics of ``model`` on ``data`` (an (inputs, labels) pair or Dataset).

    Returns ``labelemb.metrics.report`` at ``ks`` plus ``map@{map_k}`` (k clipped to L).
    """
    from .. import metrics

    net, recipe, vectors, dev, n_labels, names = _setup_inference(model, embedding, recipe,
                                                                   device)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        from torch.utils.data import Dataset

        if not isinstance(data, Dataset):
            raise TypeError("data must be an (inputs, labels) pair or a Dataset of pairs")
    prepared = _inference_data(data, n_labels, names)
    L = n_labels if n_labels is not None else prepared.csr.shape[1]
    K = min(max(list(ks) + [map_k]), L)
    idx, _ = predict(net, data, embedding, K, batch_size=batch_size, device=dev, amp=amp,
                     recipe=recipe)
    truth = prepared.csr if isinstance(prepared, _ArrayData) else \
        _gather_truth(prepared, DistContext())
    out = metrics.report(idx, truth, ks=sorted({min(k, L) for k in ks} | {min(map_k, L)}),
                         n_labels=L)
    return out
