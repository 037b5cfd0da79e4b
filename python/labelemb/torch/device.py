"""Where training and inference run: the device, its process group, and autocast."""

from __future__ import annotations

from typing import Tuple

import torch

from .distributed import DistContext, context

__all__ = ["autocast", "resolve_device", "training_device"]


def resolve_device(device) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a
    ``torch.device``; a ``ValueError`` when it is not there."""
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


def training_device(device) -> Tuple[torch.device, DistContext]:
    """The device of this process and its ``torchrun`` context: under ``torchrun`` a bare
    ``"cuda"`` means the process's local GPU."""
    dev = resolve_device(device)
    ctx = context(dev)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", ctx.local_rank if ctx.active else torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev, ctx


def autocast(amp, device: torch.device):
    """bf16 autocast on CUDA for amp=True; on the CPU only when asked (amp='bf16'): without
    native bf16 units it is slower than float32 there (see benchmarks/README.md)."""
    if amp not in (True, False, "bf16", None):
        raise ValueError(f"amp must be True, False or 'bf16', got {amp!r}")
    on = (amp is True and device.type == "cuda") or amp == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(on))
