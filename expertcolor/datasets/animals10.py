"""Animals-10 (Kaggle) in its official layout: ``raw-img/<italian class>/``, seeded split."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .base import MIN_CHROMA, Augment, LabDataset, list_images, seeded_split

__all__ = ["Animals10", "ANIMALS10_CLASSES"]

#: Italian folder name -> English name (the dataset's own ``translate.py``).
ANIMALS10_CLASSES: dict[str, str] = {
    "cane": "dog",
    "cavallo": "horse",
    "elefante": "elephant",
    "farfalla": "butterfly",
    "gallina": "chicken",
    "gatto": "cat",
    "mucca": "cow",
    "pecora": "sheep",
    "ragno": "spider",
    "scoiattolo": "squirrel",
}
_FROM_ENGLISH = {v: k for k, v in ANIMALS10_CLASSES.items()}


class Animals10(LabDataset):
    """Animals-10 with a seeded train/val split (the dataset has no official one).

    Args:
        root: folder holding ``raw-img/`` (or ``raw-img`` itself).
        split: ``"train"`` or ``"val"``.
        classes: keep only these classes (Italian folder names or English names), e.g.
            ``["cane", "gatto"]`` or ``["dog", "cat"]``. Default: all ten.
        val_fraction: fraction of each class held out.
        split_seed: seed of the split (not of the augmentation).
        resolution, augment, seed, min_chroma: see :class:`~expertcolor.datasets.base.LabDataset`.

    Raises:
        FileNotFoundError: if ``raw-img/`` or a requested class folder is missing.
        ValueError: on an unknown class name.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        classes: Sequence[str] | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        resolution: int = 128,
        augment: Augment | None = None,
        seed: int = 0,
        min_chroma: float = MIN_CHROMA,
    ) -> None:
        root = Path(root)
        base = root / "raw-img" if (root / "raw-img").is_dir() else root
        if base.name != "raw-img" and not any((base / c).is_dir() for c in ANIMALS10_CLASSES):
            raise FileNotFoundError(
                f"{root} is not an Animals-10 root: missing folder raw-img/ "
                f"(expected raw-img/<class>/ with classes {sorted(ANIMALS10_CLASSES)})"
            )
        if classes is None:
            wanted = sorted(c for c in ANIMALS10_CLASSES if (base / c).is_dir())
        else:
            wanted = []
            for c in classes:
                it = c if c in ANIMALS10_CLASSES else _FROM_ENGLISH.get(c)
                if it is None:
                    raise ValueError(
                        f"unknown Animals-10 class {c!r}; choose from {sorted(ANIMALS10_CLASSES)} "
                        f"or their English names {sorted(_FROM_ENGLISH)}"
                    )
                if not (base / it).is_dir():
                    raise FileNotFoundError(f"Animals-10: missing class folder {base / it}")
                wanted.append(it)
        files = []
        for c in wanted:  # split per class, so every class keeps its share
            files += seeded_split(list_images(base / c), split, val_fraction, split_seed)
        self.classes = tuple(wanted)
        super().__init__(files, resolution, augment, seed, min_chroma, name=f"Animals-10 {split} ({base})")
