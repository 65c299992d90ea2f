"""Which training items each step sees: seeded per-epoch batches sharded over ranks, and the ``--max-images`` cap."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

__all__ = ["epoch_batches", "cap_dataset"]


def epoch_batches(
    n: int,
    batch_size: int,
    epoch: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    weights: torch.Tensor | None = None,
) -> list[list[int]]:
    """This rank's batches of dataset indices for ``epoch`` (a pure function of its arguments).

    A seeded permutation (or, with ``weights`` ``(n,)``, a seeded draw of ``n`` indices with
    replacement), padded to a multiple of ``world_size`` and dealt round-robin as
    ``DistributedSampler`` does, then cut into full batches (the last partial batch is dropped
    unless it is the only one). Resuming mid-epoch skips the first batches of this same list.
    """
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    if weights is not None:
        order = torch.multinomial(weights.double(), n, replacement=True, generator=g).tolist()
    else:
        order = torch.randperm(n, generator=g).tolist()
    pad = (-len(order)) % world_size
    order = order + order[:pad]
    shard = order[rank::world_size]
    if len(shard) < batch_size:
        return [shard] if shard else []
    return [shard[i : i + batch_size] for i in range(0, len(shard) - batch_size + 1, batch_size)]


def cap_dataset(ds: Dataset, max_images: int | None, seed: int) -> Dataset:
    """A seeded subset of at most ``max_images`` items (``ds`` itself when no cap applies).

    Raises:
        ValueError: if ``max_images`` is below 1.
    """
    if max_images is None or max_images >= len(ds):
        return ds
    if max_images < 1:
        raise ValueError(f"--max-images must be >= 1, got {max_images}")
    idx = sorted(torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed)).tolist()[:max_images])
    return Subset(ds, idx)
