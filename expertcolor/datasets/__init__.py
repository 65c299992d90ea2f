"""Training data: colour photos as ``(L, ab)`` pairs, and image + label pairs for the segmenter.

Readers for the official on-disk layouts (:class:`CelebA`, :class:`CUB200`, :class:`Animals10`,
:class:`Places365`) and for any folder (:class:`ImageFolder`); :func:`build_dataset` picks one by
name. All share :class:`~expertcolor.datasets.base.LabDataset`: seeded per-(epoch, index)
augmentation, and skipping + counting of unreadable or grayscale files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from .._registry import Registry
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
    "DATASET_BUILDERS",
    "build_dataset",
    "list_datasets",
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

#: Builders by dataset name: ``builder(root, split, classes, val_fraction, split_seed, **common)``
#: with ``common`` the :class:`LabDataset` arguments (resolution, augment, seed, min_chroma).
DATASET_BUILDERS: Registry[Callable[..., LabDataset]] = Registry("dataset")
_Root = str | os.PathLike
_Classes = Sequence[str] | None


def _no_classes(kind: str, classes: Sequence[str] | None) -> None:
    if classes:
        raise ValueError(f"dataset {kind!r} has no class filter")


@DATASET_BUILDERS.register("celeba")
def _celeba(
    root: _Root, split: str, classes: _Classes, val_fraction: float, split_seed: int, **common: Any
) -> LabDataset:
    _no_classes("celeba", classes)
    return CelebA(root, split, **common)


@DATASET_BUILDERS.register("cub")
def _cub(
    root: _Root, split: str, classes: _Classes, val_fraction: float, split_seed: int, **common: Any
) -> LabDataset:
    _no_classes("cub", classes)
    return CUB200(root, "train" if split == "train" else "test", **common)


@DATASET_BUILDERS.register("animals10")
def _animals10(
    root: _Root, split: str, classes: _Classes, val_fraction: float, split_seed: int, **common: Any
) -> LabDataset:
    return Animals10(root, split, classes, val_fraction, split_seed, **common)


@DATASET_BUILDERS.register("places365")
def _places365(
    root: _Root, split: str, classes: _Classes, val_fraction: float, split_seed: int, **common: Any
) -> LabDataset:
    return Places365(root, split, classes, **common)


@DATASET_BUILDERS.register("folder")
def _folder(
    root: _Root, split: str, classes: _Classes, val_fraction: float, split_seed: int, **common: Any
) -> LabDataset:
    return ImageFolder(root, split, classes, val_fraction, split_seed, **common)


#: The dataset names in the order the training's ``--dataset`` help lists them.
DATASETS: tuple[str, ...] = ("celeba", "cub", "animals10", "places365", "folder")


def list_datasets() -> list[str]:
    """Names of the dataset layouts :func:`build_dataset` reads, sorted."""
    return DATASET_BUILDERS.names()


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
        UnknownNameError: (a ``KeyError`` and a ``ValueError``) on an unknown ``kind``; the message
            lists the choices.
        ValueError: for a class filter on a layout without classes.
    """
    builder = DATASET_BUILDERS.get(kind)
    common = dict(resolution=resolution, augment=augment, seed=seed, min_chroma=min_chroma)
    return builder(root, split, classes, val_fraction, split_seed, **common)
