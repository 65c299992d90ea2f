"""Training data: colour photos as ``(L, ab)`` pairs, and image + label pairs for the segmenter.

Readers for the official on-disk layouts (:class:`CelebA`, :class:`CUB200`, :class:`Animals10`,
:class:`Places365`) and for any folder (:class:`ImageFolder`); :func:`build_dataset` picks one by
name. All share :class:`~expertcolor.datasets.base.LabDataset`: seeded per-(epoch, index)
augmentation, and skipping + counting of unreadable or grayscale files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .animals10 import ANIMALS10_CLASSES, Animals10
from .base import (
    MIN_CHROMA,
    Augment,
    ImageDataset,
    LabDataset,
    LabelMapError,
    NoUsableImagesError,
    Sample,
    check_usable,
    iter_base_datasets,
    list_images,
    seeded_split,
    set_epoch,
    skip_stats,
)
from .celeba import CelebA
from .cub import CUB200
from .folder import ImageFolder
from .places365 import Places365
from .segmentation import IGNORE_INDEX, SegmentationPairs, find_pairs, segmentation_pairs

__all__ = [
    "DATASETS",
    "build_dataset",
    "Augment",
    "Sample",
    "ImageDataset",
    "LabDataset",
    "LabelMapError",
    "MIN_CHROMA",
    "NoUsableImagesError",
    "check_usable",
    "CelebA",
    "CUB200",
    "Animals10",
    "ANIMALS10_CLASSES",
    "Places365",
    "ImageFolder",
    "SegmentationPairs",
    "find_pairs",
    "segmentation_pairs",
    "IGNORE_INDEX",
    "list_images",
    "seeded_split",
    "set_epoch",
    "skip_stats",
    "iter_base_datasets",
]

DATASETS: tuple[str, ...] = ("celeba", "cub", "animals10", "places365", "folder")


def build_dataset(
    kind: str,
    root: str | os.PathLike,
    split: str = "train",
    resolution: int = 128,
    augment: Augment | None = None,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    min_chroma: float = MIN_CHROMA,
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> LabDataset:
    """Build one of :data:`DATASETS` for ``split``.

    Args:
        kind: ``"celeba"``, ``"cub"``, ``"animals10"``, ``"places365"`` or ``"folder"``.
        root: the dataset root in that layout.
        split: ``"train"`` or ``"val"`` (mapped to each dataset's held-out split: CelebA val,
            CUB test, Places365 val, seeded / explicit val for Animals-10 and folders).
        resolution, augment, seed, min_chroma: see :class:`LabDataset`.
        classes: class filter where the layout has classes (Animals-10 classes, folder
            subfolders, Places365 categories); ignored with a ``ValueError`` for CelebA / CUB.
        val_fraction, split_seed: seeded split (Animals-10, flat folders).

    Raises:
        ValueError: on an unknown ``kind``.
    """
    common = dict(resolution=resolution, augment=augment, seed=seed, min_chroma=min_chroma)
    if kind in ("celeba", "cub") and classes:
        raise ValueError(f"dataset {kind!r} has no class filter")
    if kind == "celeba":
        return CelebA(root, split, **common)
    if kind == "cub":
        return CUB200(root, "train" if split == "train" else "test", **common)
    if kind == "animals10":
        return Animals10(root, split, classes, val_fraction, split_seed, **common)
    if kind == "places365":
        return Places365(root, split, classes, **common)
    if kind == "folder":
        return ImageFolder(root, split, classes, val_fraction, split_seed, **common)
    raise ValueError(f"unknown dataset {kind!r}; choose from {list(DATASETS)}")
