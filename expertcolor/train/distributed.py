"""Where a training process runs under ``torchrun`` (rank, device), sums over ranks, each rank's validation share."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist

__all__ = [
    "DistInfo",
    "setup_distributed",
    "cleanup_distributed",
    "all_reduce_sum",
    "reduce_dict",
    "shard_indices",
]


@dataclass
class DistInfo:
    """Where this process runs: rank / world size (1 without ``torchrun``) and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistInfo:
    """Read ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and pick a device.

    Starts the process group (NCCL on CUDA, gloo on CPU) when there are several processes.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Default: CUDA when available. Under
            ``torchrun`` each process uses ``cuda:LOCAL_RANK``.

    Raises:
        ValueError: if CUDA is requested but not available.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device} requested but CUDA is not available")
        if world > 1 or dev.index is None:
            dev = torch.device("cuda", local if world > 1 else 0)
        torch.cuda.set_device(dev)
    if world > 1 and not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev)


def cleanup_distributed(dist: DistInfo) -> None:
    """Destroy the process group if this run created one."""
    if dist.distributed and tdist.is_initialized():
        tdist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, dist: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks (``t`` itself in a single process)."""
    if dist.distributed:
        backend = tdist.get_backend()
        x = t.to(dist.device) if backend == "nccl" else t.cpu()
        tdist.all_reduce(x)
        return x.to(t.device)
    return t


def reduce_dict(values: dict[str, float], dist: DistInfo) -> dict[str, float]:
    """Sum a flat dict of floats over ranks (in float64)."""
    keys = sorted(values)
    t = all_reduce_sum(torch.tensor([values[k] for k in keys], dtype=torch.float64), dist)
    return dict(zip(keys, t.tolist()))


def shard_indices(n: int, dist: DistInfo, limit: int | None = None) -> list[int]:
    """Evaluation indices of this rank: ``limit`` items spread evenly over the set (all by default).

    Evenly spaced, not the first ``limit``: validation sets built from several sources are ordered by
    source, and their first items would all come from one domain.
    """
    m = n if limit is None else min(n, limit)
    picked = [i * n // m for i in range(m)]
    return picked[dist.rank :: dist.world_size]
