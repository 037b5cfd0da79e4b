"""Training checkpoints: the settings of a run, save after an epoch, load, and resume.

A checkpoint is one ``torch.save`` file ``checkpoint-{epoch:05d}.pt`` in the checkpoint
folder, written atomically, read back with ``weights_only=True`` (no pickled code). It
holds a dict: ``format_version`` (1), ``epoch`` (epochs done), ``recipe``, ``settings``
(:class:`TrainSettings` as a dict), ``model``, ``optimizer`` and ``scheduler`` state dicts,
``rng`` (per rank: torch and CUDA generator states) and ``history`` (the epoch records).

Resuming takes the last checkpoint that reads back whole: a damaged last file (a crash
while the disk filled up, a truncated copy) is skipped with a warning that names it, and
the one before it is used. A run resumed with other settings than the checkpoint's is
refused, naming the setting.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from .._io import atomic_write
from .._validation import check_choice, check_float, check_int
from .distributed import DistContext
from .history import History
from .optim import SCHEDULES

__all__ = ["FORMAT_VERSION", "CheckpointWarning", "TrainSettings", "checkpoint_paths",
           "latest_checkpoint", "load_checkpoint", "restore", "save_checkpoint"]

FORMAT_VERSION = 1
_NAME = "checkpoint-{:05d}.pt"
_NAME_RE = re.compile(r"checkpoint-(\d{5,})\.pt$")
_KEYS = ("epoch", "recipe", "model", "optimizer", "scheduler", "rng", "history")


class CheckpointWarning(UserWarning):
    """A damaged checkpoint was skipped when resuming."""


@dataclass(frozen=True)
class TrainSettings:
    """The settings of a training run that decide its result, checked when they are made and
    saved in every checkpoint; a resumed run must use the same ones.

    Attributes
    ----------
    recipe : str
    epochs : int
        Total epochs (>= 1).
    lr : float
        Learning rate (> 0).
    batch_size : int
        Samples per step and process (>= 1).
    optimizer : str
        "adamw", "adam", "sgd", or the qualified name of a callable.
    weight_decay : float
        >= 0.
    schedule : {"constant", "cosine"}
    warmup_steps : int
        >= 0.
    seed : int
    max_grad_norm : float or None
        Gradient clipping (> 0), None for none.
    sampled_labels : int or None
        Labels scored per training step (sampled softmax), None for all.

    Examples
    --------
    >>> saved = TrainSettings("bce", epochs=3, lr=1e-3, batch_size=64)
    >>> now = dataclasses.replace(saved, lr=1e-2)
    >>> now.changed(saved)
    ['lr: 0.001 in the checkpoint, 0.01 now']
    """

    recipe: str
    epochs: int
    lr: float
    batch_size: int
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    seed: int = 0
    max_grad_norm: Optional[float] = None
    sampled_labels: Optional[int] = None

    def __post_init__(self):
        put = object.__setattr__  # frozen: store the checked, converted values
        put(self, "epochs", check_int(self.epochs, "epochs", lo=1))
        put(self, "lr", check_float(self.lr, "lr", lo=0.0, lo_open=True))
        put(self, "batch_size", check_int(self.batch_size, "batch_size", lo=1))
        put(self, "weight_decay", check_float(self.weight_decay, "weight_decay", lo=0.0))
        put(self, "schedule", check_choice("constant" if self.schedule is None
                                           else self.schedule, "schedule", SCHEDULES))
        put(self, "warmup_steps", check_int(self.warmup_steps, "warmup_steps", lo=0))
        put(self, "seed", check_int(self.seed, "seed"))
        if self.max_grad_norm is not None:
            put(self, "max_grad_norm", check_float(self.max_grad_norm, "max_grad_norm",
                                                   lo=0.0, lo_open=True))
        if self.sampled_labels is not None:
            put(self, "sampled_labels", check_int(self.sampled_labels, "sampled_labels",
                                                  lo=1))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def changed(self, saved: TrainSettings) -> List[str]:
        """The settings that differ from ``saved``, as ``"name: saved in the checkpoint,
        now"`` lines (empty when none)."""
        return [f"{f.name}: {getattr(saved, f.name)!r} in the checkpoint, "
                f"{getattr(self, f.name)!r} now" for f in dataclasses.fields(self)
                if getattr(saved, f.name) != getattr(self, f.name)]


def checkpoint_paths(directory: str) -> List[Tuple[int, str]]:
    """``(epoch, path)`` of the checkpoints in ``directory``, oldest first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), "checkpoint-*.pt")):
        m = _NAME_RE.search(os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def load_checkpoint(path: str) -> dict:
    """Read a checkpoint written by ``fit``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a whole labelemb checkpoint of this format version (truncated,
        damaged, or another kind of file); the message names ``path``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such checkpoint file: {path!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # whatever torch or zipfile raise for a damaged file
        raise ValueError(f"{path}: cannot read a labelemb checkpoint, the file is truncated "
                         f"or damaged ({type(e).__name__}: {e})") from None
    found = state.get("format_version") if isinstance(state, dict) else type(state).__name__
    if found != FORMAT_VERSION:
        raise ValueError(f"{path} is not a labelemb checkpoint of format version "
                         f"{FORMAT_VERSION} (found {found!r})")
    missing = [k for k in _KEYS if k not in state]
    if missing:
        raise ValueError(f"{path}: damaged labelemb checkpoint (missing {', '.join(missing)})")
    return state


def latest_checkpoint(directory: str) -> Optional[dict]:
    """The newest checkpoint of ``directory`` that reads back whole, or None when there is
    none. Damaged newer ones are skipped with a :class:`CheckpointWarning`; a ``ValueError``
    when every checkpoint there is damaged."""
    found = checkpoint_paths(directory)
    skipped = []
    for _, path in reversed(found):
        try:
            state = load_checkpoint(path)
        except ValueError as e:
            skipped.append(str(e))
            continue
        if skipped:
            warnings.warn(f"skipped {len(skipped)} damaged checkpoint(s), resuming from "
                          f"{path}: " + "; ".join(skipped), CheckpointWarning, stacklevel=3)
        return state
    if skipped:
        raise ValueError(f"no readable checkpoint in {directory}: " + "; ".join(skipped)
                         + "; remove them to start afresh, or resume=False")
    return None


def rng_state(ctx: DistContext) -> dict:
    """Every rank's generator states (gathered to each rank under ``torchrun``)."""
    state = {"torch": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    if not ctx.active:
        return {"per_rank": [state]}
    import torch.distributed as dist

    states = [None] * ctx.world
    dist.all_gather_object(states, state)
    return {"per_rank": states}


def save_checkpoint(directory: str, epoch: int, model, opt, sched, history: History,
                    rng: dict, settings: TrainSettings, keep: int) -> str:
    """Write the checkpoint after ``epoch`` atomically and delete all but the newest
    ``keep``; returns its path."""
    state = {"format_version": FORMAT_VERSION, "epoch": epoch, "recipe": settings.recipe,
             "settings": settings.to_dict(), "model": model.state_dict(),
             "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict() if sched is not None else None,
             "rng": rng, "history": history.epochs}
    path = os.path.join(directory, _NAME.format(epoch))
    with atomic_write(path) as f:
        torch.save(state, f)
    for _, old in checkpoint_paths(directory)[:-keep]:
        os.unlink(old)
    return path


def clear_checkpoints(directory: str) -> None:
    """Delete the checkpoints of an earlier run (a fresh start in the same folder)."""
    for _, old in checkpoint_paths(directory):
        os.unlink(old)


def check_resumable(state: dict, settings: TrainSettings, directory: str) -> None:
    """Refuse to resume ``state`` with other ``settings`` than it was trained with."""
    if state["recipe"] != settings.recipe:
        raise ValueError(f"the checkpoint in {directory} was trained with recipe "
                         f"{state['recipe']!r}, not {settings.recipe!r}")
    saved = state.get("settings")
    if saved is None:  # written before settings were recorded: the recipe is all we know
        return
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    changed = settings.changed(TrainSettings(**{k: v for k, v in saved.items() if k in names}))
    if changed:
        raise ValueError(f"cannot resume from the checkpoint in {directory} with other "
                         "settings (" + "; ".join(changed) + "); resume with the same ones "
                         "or start afresh with resume=False")


def restore(state: dict, net, opt, sched, ctx: DistContext,
            directory: str = "the checkpoint folder") -> Tuple[List[dict], int]:
    """Load ``state`` into the model, optimiser, scheduler and this rank's generators;
    returns the history's records and the number of epochs done."""
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as e:  # another architecture: missing, unexpected or resized weights
        raise ValueError(f"the checkpoint in {directory} holds another model than this one; "
                         f"build the model it was trained with ({e})") from None
    for m in net.modules():  # the output biases come from the checkpoint, not the priors
        if hasattr(m, "prior_initialized"):
            m.prior_initialized = True
    opt.load_state_dict(state["optimizer"])
    if sched is not None and state["scheduler"] is not None:
        sched.load_state_dict(state["scheduler"])
    per_rank = state["rng"]["per_rank"]
    st = per_rank[ctx.rank % len(per_rank)]
    torch.set_rng_state(st["torch"])
    if st["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
    return list(state["history"]), int(state["epoch"])
