"""One training loop for every recipe (step 5): :func:`fit` and its steps.

``fit`` orchestrates: it resolves the recipe (:mod:`.recipes`), prepares the data
(:mod:`.sources`), picks the loss once, then runs :func:`train_epoch`, the validation pass
(:func:`.inference.validate`) and :func:`save_epoch` (:mod:`.checkpoint`) per epoch,
recording each in a :class:`~.history.History`.

Under ``torchrun`` (``WORLD_SIZE`` > 1, or an initialised process group) the model is
wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on CUDA); each step's global
batch ``batch_size * world`` is the same set of samples as one process with that batch
size would draw; validation is sharded and its top-k gathered, so metrics equal a
one-process run; only rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from .._validation import check_int, check_path
from .checkpoint import (
    TrainSettings,
    check_resumable,
    clear_checkpoints,
    latest_checkpoint,
    restore,
    rng_state,
    save_checkpoint,
)
from .data import EmbeddingTargets
from .device import autocast, training_device
from .distributed import DistContext
from .heads import LogitHead
from .history import History, JsonlLog
from .inference import Decoder, check_output, validate
from .optim import make_optimizer, make_schedule, optimizer_name
from .recipes import Loss, ModelParts, Recipe, make_loss, model_parts
from .sampling import LabelSampler, check_sampled
from .sources import as_source
from .sparse import (
    SparseAdamW,
    check_source,
    clip_grad_norm_,
    dense_gradients_under_nccl,
    first_sparse_layer,
    sparse_grad_parameters,
)

__all__ = ["fit", "save_epoch", "train_epoch"]

_SHOWN = ("loss", "p@1", "p@5", "ndcg@5", "map@100")


def fit(model: nn.Module, train, embedding=None, *, valid=None, epochs: int, lr: float,
        batch_size: int, optimizer="adamw", weight_decay: float = 0.0,
        schedule: Optional[str] = None, warmup_steps: int = 0, device="auto", amp=True,
        seed: int = 0, callbacks: Sequence[Callable] = (), progress: bool = True,
        checkpoint_dir: Optional[str] = None, resume: bool = False,
        log_path: Optional[str] = None, recipe: Union[None, str, Recipe] = None,
        eval_batch_size: int = 2048, keep_checkpoints: int = 2, max_grad_norm=None,
        num_workers: int = 0, sampled_labels: Optional[int] = None) -> History:
    """Train ``model`` on ``train`` with the paper's recipe or the sigmoid baseline.

    Parameters
    ----------
    model : nn.Module
        A backbone with a labelemb head (:func:`make_model`), or any module whose output
        is (batch, d) for the embedding objective or (batch, L) for BCE. Trained in place
        and left on ``device``.
    train : (inputs, labels) pair or Dataset
        ``inputs``: array or tensor, one row per sample (features, images...; float64 is
        converted to float32), or a scipy sparse matrix (TF-IDF, bags of features; made
        CSR float32 once, sliced into torch sparse batches, never densified) for a model
        with a :class:`~labelemb.torch.SparseLinear` first layer
        (``mlp(n_features, hidden, sparse=True)``). ``labels``: CSR matrix (n, L), list
        of label-id lists, or list of label-name lists (mapped through the embedding's
        ``label_names``). A map-style ``Dataset`` yields ``(input, label_set)`` pairs
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
    schedule : {"constant", "cosine"}, optional
        Per-step learning-rate schedule, after ``warmup_steps`` of linear warm-up. None:
        the recipe's for the backbone's input kind (``RECIPES[recipe].settings(sparse)``,
        ``sparse`` when the model has a :class:`~labelemb.torch.SparseLinear`): cosine
        decay to 0 over ``epochs`` for ``"lowrank-softmax"`` and for the full-rank heads
        over sparse rows, constant otherwise.
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
        states, history and the run's :class:`~labelemb.torch.checkpoint.TrainSettings`),
        atomically, keeping the last ``keep_checkpoints``; the history log
        ``history.jsonl`` goes there too unless ``log_path`` is given. A fresh run
        (resume=False) deletes the directory's old checkpoints.
    resume : bool
        Continue from the last checkpoint in ``checkpoint_dir`` (a fresh start if none).
        A damaged last checkpoint is skipped with a warning and the one before it used.
        The run's settings (recipe, epochs, lr, batch_size, optimizer, weight_decay,
        schedule, warmup_steps, seed, max_grad_norm) must be the checkpoint's: a changed
        one is refused with a ``ValueError`` that names it.
    log_path : str, optional
        JSON lines file, one record per epoch.
    recipe : str (a key of :data:`labelemb.torch.RECIPES`) or Recipe, optional
        Inferred from the head (the one ``make_model`` built it for); when given it must
        fit it: a :class:`LogitHead` or :class:`LowRankHead` trains with any of the
        sigmoid, softmax or hybrid losses of its kind. ``"embedding"``, the former name of
        ``"paper"``, warns (``DeprecationWarning``).
    eval_batch_size, max_grad_norm, num_workers : evaluation batch size; gradient
        clipping (None: off); DataLoader workers for Dataset inputs (0: in process).
    sampled_labels : int, optional
        A sampled softmax for ``"lowrank-softmax"``: each training step scores the
        batch's labels plus uniformly drawn others, about this many in all, instead of
        every label (:mod:`labelemb.torch.sampling`); for label sets where the head's
        ``O(d · L)`` per sample dominates a step. Validation and prediction score every
        label. None (default): every label at every step.

    Returns
    -------
    History
        Also under ``torchrun``: see the module's notes.

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
    parts = model_parts(model, embedding, recipe)
    if schedule is None:  # the recipe's, for this backbone's input kind
        schedule = parts.recipe.settings(first_sparse_layer(model) is not None)[1]
    sampled_labels = check_sampled(sampled_labels, parts.head, parts.recipe)
    settings = TrainSettings(parts.recipe.name, epochs, lr, batch_size, optimizer_name(optimizer),
                             weight_decay, schedule, warmup_steps, seed, max_grad_norm,
                             sampled_labels)
    eval_batch_size, keep_checkpoints, num_workers, checkpoint_dir = _check_run(
        eval_batch_size, keep_checkpoints, num_workers, checkpoint_dir, resume, callbacks, amp)
    dev, ctx = training_device(device)
    train_data, valid_data, n_labels = _prepare_data(parts, train, valid, num_workers, dev)
    net, rec = parts.net, parts.recipe
    width = parts.vectors.shape[1] if rec.objective == "cosine" else n_labels
    loss_fn = make_loss(rec, EmbeddingTargets(parts.vectors, dev)
                        if rec.objective == "cosine" else None)
    decoder = Decoder(rec, parts.vectors, dev)

    ckpt = latest_checkpoint(checkpoint_dir) if resume else None
    if ckpt is not None:
        check_resumable(ckpt, settings, checkpoint_dir)
    elif hasattr(parts.head, "init_prior") and not parts.head.prior_initialized:
        parts.head.init_prior(*train_data.label_counts())
    ddp = model
    if ctx.active and not isinstance(model, nn.parallel.DistributedDataParallel):
        dense_gradients_under_nccl(net, ctx, dev)
        ddp = nn.parallel.DistributedDataParallel(
            net, device_ids=[dev.index] if dev.type == "cuda" else None)
    opt = make_optimizer(optimizer, net, settings.lr, settings.weight_decay)
    steps = train_data.steps(settings.batch_size, ctx)
    sched = make_schedule(settings.schedule, opt, settings.epochs * steps,
                          settings.warmup_steps)
    history, start = History(recipe=rec.name), 0
    if ckpt is not None:
        history.epochs, start = restore(ckpt, net, opt, sched, ctx, checkpoint_dir)
    else:
        torch.manual_seed(settings.seed + ctx.rank)
    log = _open_log(checkpoint_dir, log_path, history, ctx, fresh=ckpt is None)

    # a step's label vectors get row-sparse gradients where the optimizer takes them, and
    # outside DistributedDataParallel (which all-reduces sparse gradients only for the
    # embedding modules it knows)
    sampler = None if sampled_labels is None else \
        (parts.head, LabelSampler(n_labels, sampled_labels, seed=settings.seed + 7919 * ctx.rank),
         isinstance(opt, SparseAdamW) and not ctx.active)
    bar_cls = _progress_bar() if progress and ctx.is_main else None
    elapsed = history.epochs[-1]["elapsed"] if history.epochs else 0.0
    for epoch in range(start, settings.epochs):
        bar = bar_cls(total=steps, desc=f"epoch {epoch + 1}/{settings.epochs}",
                      leave=True) if bar_cls else None
        t0 = time.perf_counter()
        check = (lambda out: check_output(out, width, rec)) if epoch == start else None
        record = {"epoch": epoch + 1, "recipe": rec.name,
                  **train_epoch(ddp, train_data, loss_fn, opt, sched, epoch, settings, ctx,
                                dev, amp, bar, check, sampler), "steps": steps}
        train_time = time.perf_counter() - t0
        elapsed += train_time
        t1 = time.perf_counter()
        if valid_data is not None:
            record.update(validate(net, valid_data, decoder, eval_batch_size, ctx, dev, amp,
                                   n_labels))
        record.update(train_time=train_time, eval_time=time.perf_counter() - t1,
                      elapsed=elapsed)
        history.epochs.append(record)
        _close_bar(bar, record)
        log.append(record)
        if checkpoint_dir is not None:
            save_epoch(checkpoint_dir, epoch + 1, net, opt, sched, history, settings, ctx,
                       keep_checkpoints)
        if any([bool(cb(history, net)) for cb in callbacks]):  # every callback runs
            break
    return history


def _check_run(eval_batch_size, keep_checkpoints, num_workers, checkpoint_dir, resume,
               callbacks, amp):
    """The arguments of ``fit`` that are not training settings, checked."""
    if checkpoint_dir is not None:
        checkpoint_dir = check_path(checkpoint_dir, "checkpoint_dir")
    elif resume:
        raise ValueError("resume=True needs checkpoint_dir= (where the checkpoints are)")
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables cb(history, model), got {cb!r}")
    autocast(amp, torch.device("cpu"))  # validates amp
    return (check_int(eval_batch_size, "eval_batch_size", lo=1),
            check_int(keep_checkpoints, "keep_checkpoints", lo=1),
            check_int(num_workers, "num_workers", lo=0), checkpoint_dir)


def _open_log(checkpoint_dir, log_path, history: History, ctx: DistContext,
              fresh: bool) -> JsonlLog:
    """Prepare the checkpoint folder (a fresh run deletes its old checkpoints) and the
    history log (``history.jsonl`` there unless ``log_path`` is given); rank 0 only."""
    if ctx.is_main and checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        if fresh:
            clear_checkpoints(checkpoint_dir)
    if log_path is None and checkpoint_dir is not None:
        log_path = os.path.join(checkpoint_dir, "history.jsonl")
    log = JsonlLog(log_path if ctx.is_main else None, history, fresh=fresh)
    ctx.barrier()
    return log


def _prepare_data(parts: ModelParts, train, valid, num_workers: int, device: torch.device):
    """The training and validation sources, moved to ``device``, and the number of labels:
    the embedding's, else the head's, else the training labels'."""
    n_labels, head = parts.n_labels, parts.head
    if parts.recipe.objective == "cosine" and parts.vectors is None:
        raise ValueError("the embedding objective needs embedding= (a LabelEmbedding from "
                         "labelemb.fit_embeddings)")
    if isinstance(head, LogitHead) and parts.vectors is not None and \
            parts.vectors.shape[0] != head.n_labels:
        raise ValueError(f"embedding has {parts.vectors.shape[0]} labels but the LogitHead "
                         f"has {head.n_labels}")
    names = getattr(parts.embedding, "label_names", None)
    train_data, names = as_source(train, "train", n_labels=n_labels, label_names=names,
                                  num_workers=num_workers)
    if n_labels is None:
        n_labels = train_data.n_labels
        if n_labels is None:
            raise ValueError("cannot tell the number of labels: use a LogitHead (make_model("
                             "..., 'bce', n_labels=L)) or (inputs, labels) arrays")
    if names is not None and head is not None and parts.embedding is None:
        head.label_names = names  # the vocabulary built from the training names
    check_source(parts.net, train_data, "train")
    valid_data = None
    if valid is not None:
        valid_data = as_source(valid, "valid", n_labels=n_labels, label_names=names,
                               num_workers=num_workers)[0].to(device)
        check_source(parts.net, valid_data, "valid", train_data)
    parts.net.to(device)
    return train_data.to(device), valid_data, n_labels


def train_epoch(ddp: nn.Module, source, loss_fn: Loss, opt, sched, epoch: int,
                settings: TrainSettings, ctx: DistContext, device: torch.device, amp,
                bar=None, check: Optional[Callable] = None, sampler=None) -> dict:
    """One pass over ``source``: a step per batch; returns ``{"loss", "lr"}`` (the mean
    loss over every rank's rows, the learning rate at the end). ``check(outputs)`` runs on
    the first batch's outputs. ``sampler``: ``(head, LabelSampler, sparse gradients)``
    for a sampled softmax (the loss is then over each step's candidates)."""
    ddp.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    params = list(ddp.parameters()) if settings.max_grad_norm is not None else None
    # torch's clipping cannot take the row-sparse gradients of SparseLinear(sparse_grad=True)
    clip = clip_grad_norm_ if sparse_grad_parameters(ddp) else nn.utils.clip_grad_norm_
    batches = source.train_batches(epoch, settings.batch_size, settings.seed, ctx, device)
    if sampler is not None:
        sampler[1].start_epoch(epoch)
    try:
        for step, (x, y) in enumerate(batches):
            if sampler is not None:  # this step's candidate labels; y re-indexed onto them
                ids, offsets, y = sampler[1](y)
                sampler[0].sample = (ids, offsets, sampler[2])
            with autocast(amp, device):
                out = ddp(x)
            if step == 0 and check is not None and sampler is None:
                check(out)
            loss, rows = loss_fn(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if params is not None:
                clip(params, settings.max_grad_norm)
            opt.step()
            if sched is not None:
                sched.step()
            loss_sum += loss.detach().double() * rows
            count += rows
            if bar is not None:
                bar.update(1)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{loss.item():.4f}")
    finally:
        if sampler is not None:
            sampler[0].sample = None
    ctx.sum(loss_sum)
    ctx.sum(count)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"loss": float(loss_sum / count.clamp_min(1)),
            "lr": float(opt.param_groups[0]["lr"])}


def save_epoch(directory: str, epoch: int, net: nn.Module, opt, sched, history: History,
               settings: TrainSettings, ctx: DistContext, keep: int) -> None:
    """The checkpoint after ``epoch``: every rank's RNG state gathered, written by rank 0
    while the others wait."""
    rng = rng_state(ctx)
    if ctx.is_main:
        save_checkpoint(directory, epoch, net, opt, sched, history, rng, settings, keep)
    ctx.barrier()


def _close_bar(bar, record: dict) -> None:
    if bar is not None:
        bar.set_postfix({k: (f"{v:.4f}" if isinstance(v, float) else v)
                         for k, v in record.items() if k in _SHOWN})
        bar.close()


def _progress_bar():
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the torch extra; without it, no bar
        return None
    return tqdm
