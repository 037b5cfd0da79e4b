"""Running ``fit`` under ``torchrun``: process group, sharding, reductions.

``fit`` calls :func:`context`; with one process (no ``WORLD_SIZE`` > 1, no process
group) every helper is a no-op, so the same loop serves both cases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "context"]


@dataclass
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    created_group: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) of a tensor, in place; returns it."""
        if self.active:
            dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    def shard(self, n: int) -> tuple:
        """Contiguous ``[start, stop)`` of ``n`` items for this rank (sizes differ by <= 1)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra)

    def gather_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's rows (rank order) on every rank; shards may differ in
        length by any amount."""
        if not self.active:
            return x
        n = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        dist.all_gather(sizes, n)
        sizes = [int(s) for s in sizes]
        m = max(sizes)
        pad = torch.zeros((m - x.shape[0],) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
        buf = [torch.empty((m,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
               for _ in range(self.world)]
        dist.all_gather(buf, torch.cat([x, pad]).contiguous())
        return torch.cat([b[:s] for b, s in zip(buf, sizes)])


def context(device: torch.device) -> DistContext:
    """The distributed setting of this process; initialises the default process group
    from the ``torchrun`` environment when ``WORLD_SIZE`` > 1 and none exists (nccl for
    CUDA devices, gloo for the CPU)."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(),
                           int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(),
                       int(os.environ.get("LOCAL_RANK", dist.get_rank())), created_group=True)
