"""Skipping and counting bad files, seeded augmentation, DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from expertcolor.datasets import Augment, ImageFolder, set_epoch, skip_stats


def _all_batches(ds, workers: int, batch_size: int = 4) -> list[torch.Tensor]:
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, shuffle=False)
    return [torch.cat([L, ab], 1) for L, ab in loader]


def test_grayscale_and_corrupt_files_are_skipped_and_counted_across_workers(flat_folder: Path) -> None:
    ds = ImageFolder(flat_folder, "train", val_fraction=0.0, resolution=16)
    assert len(ds) == 22
    batches = _all_batches(ds, workers=2)
    assert sum(len(b) for b in batches) == 22  # bad items were replaced, nothing crashed
    assert ds.skip_counts() == {"unreadable": 1, "grayscale": 1}
    assert skip_stats(ConcatDataset([ds])) == {"unreadable": 1, "grayscale": 1}
    reasons = dict((Path(p).name, r) for p, r in ds.skipped_paths())
    assert reasons == {"broken.jpg": "unreadable", "gray.jpg": "grayscale"}
    # Every sample handed out is a colour one.
    chroma = torch.cat(batches)[:, 1:].abs().flatten(1).mean(1)
    assert float(chroma.min()) > 1.0


def test_validate_prescans(flat_folder: Path) -> None:
    ds = ImageFolder(flat_folder, "train", val_fraction=0.0, resolution=16)
    assert ds.validate() == {"unreadable": 1, "grayscale": 1}


def test_augmentation_is_a_function_of_seed_epoch_index(split_folder: Path) -> None:
    ds = ImageFolder(split_folder, "train", resolution=16, seed=3)
    a = torch.cat(ds[2])
    assert torch.equal(a, torch.cat(ds[2]))
    set_epoch(ds, 1)
    assert not torch.equal(a, torch.cat(ds[2]))
    set_epoch(ds, 0)
    assert torch.equal(a, torch.cat(ds[2]))
    other = ImageFolder(split_folder, "train", resolution=16, seed=4)
    assert not torch.equal(a, torch.cat(other[2]))


def test_results_do_not_depend_on_worker_count(split_folder: Path) -> None:
    ds = ImageFolder(split_folder, "train", resolution=16, seed=1)
    ds.set_epoch(2)
    a = _all_batches(ds, workers=0)
    b = _all_batches(ds, workers=2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_eval_transform_is_center_crop(split_folder: Path) -> None:
    ds = ImageFolder(split_folder, "val", resolution=16, augment=Augment(enabled=False))
    x = torch.cat(ds[0])
    ds.set_epoch(5)
    assert torch.equal(x, torch.cat(ds[0]))


def test_index_out_of_range(split_folder: Path) -> None:
    ds = ImageFolder(split_folder, "val", resolution=16)
    with pytest.raises(IndexError):
        ds[len(ds)]
